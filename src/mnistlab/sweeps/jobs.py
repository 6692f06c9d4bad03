"""One job of a sweep: a failing job is recorded in its run dir and scores None, and the sweep goes on."""

import logging
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from mnistlab.core.cli import close_progress_bars
from mnistlab.core.errors import ProcessDied, describe, is_ctrl_c, user_error
from mnistlab.core.files import write_json
from mnistlab.core.ranks import is_rank_zero
from mnistlab.core.results import RunResult, Status
from mnistlab.sweeps.trial import trial_of_job

log = logging.getLogger(__name__)

ERROR_FILE = "error.json"  # written by run_sweep_job when the job raised
# What Lightning's launcher sets in the main process for its children; a sweep's next job must not inherit it.
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def objective(result: RunResult) -> float | None:
    """What a sweeper minimises: the best val/loss of a finished run; None (a failed trial) otherwise.

    None, not nan: the Optuna sweeper (1.3.0) hands a nan on to the study, which rejects it, and the sweeper
    then crashes while recording the trial as failed. None it records as failed directly.
    """
    loss = result.best_val_loss
    if result.status != Status.FINISHED or loss is None or not math.isfinite(loss):
        return None
    return float(loss)


def run_sweep_job(task: Callable[[DictConfig], RunResult], cfg: DictConfig) -> float | None:
    """An exception is logged and recorded in the job's run dir, and the job scores None: Hydra's basic
    sweeper would re-raise it and end the sweep. A job that is an Optuna trial tells its study itself."""
    started = time.perf_counter()
    with trial_of_job(cfg) as trial:  # an Optuna trial's job tells its study how it ended
        try:
            with one_job_of_a_sweep():
                result = task(cfg)
        except Exception as error:
            if is_ctrl_c(error):  # not a failed job: the end of the sweep, as Ctrl-C is
                raise KeyboardInterrupt from error
            record_failure(cfg, error, started)
            if trial is not None:
                trial.end(None, None)
            return None
        value = objective(result)
        if trial is not None:
            trial.end(result, value)
        return value


def record_failure(cfg: DictConfig, error: Exception, started: float) -> None:
    """The job's error in its train.log and its run dir's error.json (by rank zero, or a survivor of a
    dead DDP process)."""
    if not is_rank_zero() and not isinstance(user_error(error), ProcessDied):  # rank zero records it
        return
    close_progress_bars()  # the job's line starts a line of its own
    if (mistake := user_error(error)) is not None:
        log.error(f"error: {mistake}")
    else:
        log.exception("this job failed; the sweep goes on")
    record = {
        "error": describe(error),
        "seconds": round(time.perf_counter() - started, 2),
        "traceback": traceback.format_exc(),
    }
    write_json(Path(cfg.paths.output_dir) / ERROR_FILE, record)


@contextmanager
def one_job_of_a_sweep() -> Iterator[None]:
    """Lets Lightning's DDP launcher start its children for this sweep job only.

    The launcher re-runs ``sys.argv`` with ``hydra.run.dir=<HydraConfig run.dir>`` added: inside ``-m`` each
    child would run the whole sweep again, in the wrong dir (Hydra issue #2070, Lightning PR #18175). Here the
    children get this job's own overrides, without ``-m``, and this job's dir: each child runs this one job.
    After the job, the process group, the launcher's variables and the W&B run go, so that the next job
    starts its own.
    """
    hydra = HydraConfig.get()
    saved_argv, saved_run_dir = sys.argv, hydra.run.dir
    saved_env = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    sys.argv = [sys.argv[0], *config_flags(sys.argv[1:]), *hydra.overrides.task]
    with read_write(hydra), open_dict(hydra):
        hydra.run.dir = hydra.runtime.output_dir
    failed = True
    try:
        yield
        failed = False
    finally:
        if "wandb" in sys.modules:  # the next job of this process gets a W&B run of its own
            from mnistlab.dashboards.weights_and_biases import finish_wandb_run  # torch-free until here

            finish_wandb_run(failed)
        sys.argv = saved_argv
        with read_write(hydra), open_dict(hydra):
            hydra.run.dir = saved_run_dir
        import torch  # loaded by the job by now; this module stays torch-free for the entry points

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
