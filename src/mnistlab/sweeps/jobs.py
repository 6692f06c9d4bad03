"""One job of a sweep: a failing job is recorded in its run dir and scores None, and the sweep goes on."""

import logging
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mnistlab.errors import describe, user_error
from mnistlab.io.atomic import write_json

if TYPE_CHECKING:  # the training stack loads only once a job runs
    from mnistlab.run.result import RunResult

log = logging.getLogger(__name__)

ERROR_FILE = "error.json"  # written by run_sweep_job when the job raised


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def objective(result: "RunResult") -> float | None:
    """What a sweeper minimises: the best val/loss of a finished run; None (a failed trial) otherwise.

    None, not nan: the Optuna sweeper (1.3.0) hands a nan on to the study, which rejects it, and the sweeper
    then crashes while recording the trial as failed. None it records as failed directly.
    """
    loss = result.best_val_loss
    if result.status != "finished" or loss is None or not math.isfinite(loss):
        return None
    return float(loss)


def run_sweep_job(task: Callable[[DictConfig], "RunResult"], cfg: DictConfig) -> float | None:
    """An exception is logged and recorded in the job's run dir, and the job scores None: Hydra's basic
    sweeper would re-raise it and end the sweep; Optuna's marks the trial failed."""
    started = time.perf_counter()
    try:
        return objective(task(cfg))
    except Exception as error:
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
        return None
