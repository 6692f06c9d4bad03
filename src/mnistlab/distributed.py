"""Runs of several processes (DDP) that stay one run: which process this is before Lightning knows, a dead
process ending the run in one line, and Lightning's child processes inside a Hydra sweep (docs/scale.md)."""

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from lightning import Callback, LightningModule, Trainer
from omegaconf import open_dict, read_write

from mnistlab.errors import MnistlabError
from mnistlab.results import write_json

# What the launchers set in each process they start, before any of our code runs: torchrun (RANK), SLURM's
# tasks (SLURM_PROCID), Lightning's own DDP children (LOCAL_RANK and NODE_RANK).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")
# What a collective raises when a process on the other end is gone (gloo, NCCL) or never answers.
PEER_GONE = re.compile(r"Connection (closed|reset) by peer|Broken pipe|Timed out|timeout|NCCL error", re.I)
# What Lightning's launcher sets in the main process for its children; a sweep's next job must not inherit it.
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def is_rank_zero() -> bool:
    """Whether this is rank zero of a DDP run, or the only process: the one that writes the run's files."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)


class ProcessDied(MnistlabError):
    """Another process of the run is gone: every survivor says so (rank zero may be the one that died)."""


class EndOnDeadProcess(Callback):
    """When a DDP process dies (kill -9, out of memory, a lost node), the others' next collective fails:
    gloo and NCCL notice a closed connection at once, and the strategy's timeout bounds the rest. This turns
    that failure into one line and ``status: failed`` in metrics.json, written at once: Lightning's launcher
    SIGKILLs its main process within seconds of a child's death, before any slower clean-up could run."""

    def __init__(self, output_dir: str, seed: int) -> None:
        self.output_dir = Path(output_dir)
        self.seed = seed
        self.started = time.perf_counter()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if trainer.world_size == 1 or not is_peer_failure(exception):
            return
        # gloo's messages start with its source file and line ("[.../pair.cc:545] Read error ..."); the first
        # sentence after that says what happened.
        text = re.sub(r"^\[[^\]]*\]\s*", "", str(exception).strip()) or type(exception).__name__
        first_line = text.splitlines()[0].split(". ")[0]
        message = (
            f"a DDP process of this run stopped, so the run ended (process {trainer.global_rank} of "
            f"{trainer.world_size} saw: {first_line[:160]}); resume from the last finished epoch with "
            f"ckpt_path=last hydra.run.dir={self.output_dir}"
        )
        result = {
            "status": "failed",
            "error": message,
            "epochs_run": trainer.current_epoch,
            "seed": self.seed,
            "seconds": round(time.perf_counter() - self.started, 2),
        }
        write_json(self.output_dir / "metrics.json", result)
        raise ProcessDied(message) from exception


def is_peer_failure(exception: BaseException) -> bool:
    if isinstance(exception, torch.distributed.DistError):
        return True
    return isinstance(exception, RuntimeError) and bool(PEER_GONE.search(str(exception)))


@contextmanager
def one_job_of_a_sweep() -> Iterator[None]:
    """Lets Lightning's DDP launcher start its children for this sweep job only.

    The launcher re-runs ``sys.argv`` with ``hydra.run.dir=<HydraConfig run.dir>`` added: inside ``-m`` each
    child would run the whole sweep again, in the wrong dir (Hydra issue #2070, Lightning PR #18175). Here the
    children get this job's own overrides, without ``-m``, and this job's dir: each child runs this one job.
    After the job, the process group and the launcher's variables go, so that the next job starts its own.
    """
    hydra = HydraConfig.get()
    saved_argv, saved_run_dir = sys.argv, hydra.run.dir
    saved_env = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    sys.argv = [sys.argv[0], *config_flags(sys.argv[1:]), *hydra.overrides.task]
    with read_write(hydra), open_dict(hydra):
        hydra.run.dir = hydra.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = saved_argv
        with read_write(hydra), open_dict(hydra):
            hydra.run.dir = saved_run_dir
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def config_flags(argv: list[str]) -> list[str]:
    """The command line's choice of config (--config-name, -cp, ...), which a child needs as much as the
    overrides; not -m and not the sweep's overrides."""
    kept, args = [], iter(argv)
    for arg in args:
        if re.match(r"(--config-(name|path|dir)|-c[npd])(=|$)", arg):
            kept.append(arg)
            if "=" not in arg:
                kept.append(next(args, ""))
    return kept
