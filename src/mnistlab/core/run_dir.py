"""A run's own folder: where it goes (core/resolvers.py hands these to the configs), a check that it does
not already hold another run, and the lock that lets one process at a time write into it."""

import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from mnistlab.core.errors import MnistlabError
from mnistlab.core.ranks import is_rank_zero
from mnistlab.core.repeats import setting_of
from mnistlab.core.results import METRICS_FILE, PREDICTIONS_FILE, RunResult
from mnistlab.core.trackers import new_wandb_run_id, wandb_run_in

LOCK_FILE = ".mnistlab.lock"  # in the run dir: flock'd by the process that writes there, which it names
REQUEUE_WAIT_S = 120  # how long a requeued SLURM job waits for its earlier self to let go of the dir
_held: dict[Path, int] = {}  # the dirs this process holds: their lock files' descriptors


def run_dir_of(ckpt_path: str | None, new_run_dir: str) -> str:
    """The run dir a checkpoint lives in (``<run dir>/checkpoints/x.ckpt``); otherwise a new one."""
    if ckpt_path and ckpt_path != "last" and Path(ckpt_path).parent.name == "checkpoints":
        return str(Path(ckpt_path).parent.parent)
    return new_run_dir


def existing_run_file(run_dir: Path) -> Path | None:
    """A file showing that a run used ``run_dir``: a killed run leaves checkpoints but no metrics.json."""
    taken = [
        run_dir / METRICS_FILE,
        run_dir / PREDICTIONS_FILE,
        *sorted((run_dir / "checkpoints").glob("*.ckpt")),
    ]
    return next((path for path in taken if path.exists()), None)


def requeued_by_slurm() -> bool:
    """Whether SLURM restarted this job (preempted, or at its time limit): it goes on in its run dir."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def check_run_dir_is_new(output_dir: Path, ckpt_path: str | None, resumable: bool = True) -> None:
    """A new run (no ``ckpt_path``) never writes over another's results; a training run may resume it."""
    if ckpt_path is None and (found := existing_run_file(output_dir)):
        fix = f", or resume it with ckpt_path=last hydra.run.dir={output_dir}" if resumable else ""
        raise MnistlabError(
            f"{output_dir} already holds a run ({found.relative_to(output_dir)}): choose another "
            f"hydra.run.dir{fix}"
        )


def claim(run_dir: Path) -> bool:
    """Takes ``run_dir`` for this process unless another holds it: whether this process holds it now.

    An flock, which the kernel drops when its process ends, however it ends: a dir whose run was killed
    (kill -9 included) is free again, for ``ckpt_path=last`` to resume.
    """
    run_dir = run_dir.resolve()
    if run_dir in _held:
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": f"{datetime.now():%Y-%m-%d %H:%M:%S}"}
    if slurm_job := os.environ.get("SLURM_JOB_ID"):
        me["slurm_job"] = slurm_job
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(me).encode())
    _held[run_dir] = fd
    return True


def release(run_dir: Path) -> None:
    if (fd := _held.pop(run_dir.resolve(), None)) is not None:
        os.close(fd)  # closing drops the flock


def holder(run_dir: Path) -> dict[str, str]:
    """Who holds ``run_dir``, as its lock file says."""
    try:
        return json.loads((run_dir / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return {}


def claim_or_refuse(run_dir: Path, key: str = "hydra.run.dir") -> None:
    """Takes ``run_dir`` for this run (rank zero of a DDP run alone), or stops in one line naming who has it.

    A job that SLURM requeued takes its dir over from its earlier self, which may still be on its way out.
    """
    if not is_rank_zero():
        return
    deadline = time.monotonic() + REQUEUE_WAIT_S
    while not claim(run_dir):
        other = holder(run_dir)
        same_job = requeued_by_slurm() and other.get("slurm_job") == os.environ.get("SLURM_JOB_ID")
        if not same_job or time.monotonic() > deadline:
            raise MnistlabError(
                f"{run_dir} is in use by another run (process {other.get('pid', '?')} on "
                f"{other.get('host', '?')}, since {other.get('since', '?')}): wait for it to end, or choose "
                f"another {key}"
            )
        time.sleep(1)


@contextmanager
def holding(run_dir: Path, key: str = "hydra.run.dir") -> Iterator[None]:
    """The command's dir held for the command's whole time (claim_or_refuse), then let go."""
    claim_or_refuse(run_dir, key)
    try:
        yield
    finally:
        release(run_dir)


def config_subdir_for(ckpt_path: str | None, output_dir: str) -> str | None:
    """Where Hydra saves the composed config: beside, never over, the config of a run already in the dir.

    Hydra saves it before the run starts: a resume, a command that will be refused because the dir holds a
    run, or one started while another run writes there must leave that run's own config intact. This is also
    where a run first takes its dir (claim), before it writes anything there. Under DDP only rank zero saves
    it (None: nowhere).
    """
    if not is_rank_zero():
        return None
    if not claim(Path(output_dir)):  # another run writes there: the command will stop, naming it
        return f".hydra/refused_{datetime.now():%Y-%m-%d_%H-%M-%S_%f}"
    if requeued_by_slurm():
        return f".hydra/requeued_{datetime.now():%Y-%m-%d_%H-%M-%S_%f}"
    if ckpt_path or existing_run_file(Path(output_dir)):
        return f".hydra/{'resume' if ckpt_path else 'refused'}_{datetime.now():%Y-%m-%d_%H-%M-%S_%f}"
    return ".hydra"


def run_tags(task_name: str, output_dir: str) -> dict[str, str]:
    """What a tracker (conf/logger/mlflow.yaml) files a run under: its task and experiment and, in a sweep,
    its sweep dir and job number; its name is its run dir's (``<sweep dir name>/<job number>`` in a sweep)."""
    hydra = HydraConfig.get()
    run_dir = Path(output_dir)
    tags = {"task": task_name, "experiment": str(hydra.runtime.choices.get("experiment") or "none")}
    if in_a_sweep():
        tags |= {"sweep_dir": str(run_dir.parent), "job": str(hydra.job.num)}
    tags["mlflow.runName"] = run_name(output_dir)
    return tags


def in_a_sweep() -> bool:
    """Whether this run is a job of a sweep: its run dir is then <sweep dir>/<job number> (conf/hydra)."""
    return HydraConfig.get().mode == RunMode.MULTIRUN


def run_name(output_dir: str) -> str:
    """A run's name in a tracker: its run dir's, ``<sweep dir name>/<job number>`` in a sweep."""
    run_dir = Path(output_dir)
    return f"{run_dir.parent.name}/{run_dir.name}" if in_a_sweep() else run_dir.name


def sweep_name(output_dir: str) -> str | None:
    """What a tracker groups a sweep's jobs under (W&B's group): the sweep dir's name; None for a run."""
    return within(Path(output_dir).parent.name, GROUP_LENGTH) if in_a_sweep() else None


def sweep_setting() -> str | None:
    """The setting a sweep's job repeats (W&B's job_type): its overrides without seed and data.fold, the
    same for every job of its group of seeds and folds (sweeps/groups.py); None for a run."""
    if not in_a_sweep():
        return None
    setting = " ".join(setting_of(list(HydraConfig.get().overrides.task)))
    return within(setting or "all jobs", JOB_TYPE_LENGTH)


# W&B's server refuses a job type over 64 characters, and an offline run with one does not sync
# (wandb/wandb#6402); a group is kept to 128, as W&B keeps a project's name.
JOB_TYPE_LENGTH, GROUP_LENGTH = 64, 128


def within(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in a hash of the whole: no two texts become one."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 10]}..{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def wandb_run_of(output_dir: str) -> str:
    """The W&B run a run logs to: the one its run dir already holds (metrics.json's ``wandb_run_id``, or, for
    a run killed before it wrote metrics.json, the id of its W&B files), so that a resume continues it; a new
    id for a new run dir."""
    run_dir = Path(output_dir)
    result = RunResult.read(run_dir)
    return (result and result.wandb_run_id) or wandb_run_in(run_dir) or new_wandb_run_id()
