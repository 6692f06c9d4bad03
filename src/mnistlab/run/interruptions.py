"""A run that stops before its end says where it got to in metrics.json, and exits non-zero with one line.

Ctrl-C and SIGTERM: the run stops, status interrupted.

Inside ``fit`` and ``test`` Ctrl-C ends with Lightning's ``sys.exit(1)``, SIGTERM with a ``SIGTERMException``
(exit status 0) raised by ``callbacks/sigterm.py`` at the end of the current training batch, in every process
at once. Here both become a ``RunInterrupted``.
``last.ckpt`` is the state at the end of the last finished epoch: resuming from there is exact, while a
checkpoint from the middle of an epoch would replay that epoch's first batches.
Any other error: status failed, with the error's line; a full disk is named as the file it could not take.
"""

import contextlib
import inspect
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning import Trainer
from lightning.pytorch.loggers import Logger, MLFlowLogger
from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnistlab.core.errors import RunInterrupted, chain, describe, user_error
from mnistlab.core.files import DiskFull, disk_full, is_disk_full
from mnistlab.core.results import RunResult, Status
from mnistlab.io.checkpoints import saved_epoch
from mnistlab.run.best import add_best


@contextmanager
def reporting_stops(trainer: Trainer, output_dir: Path, seed: int, started: float) -> Iterator[None]:
    try:
        yield
    except SystemExit as stop:
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        cause = "SIGTERM" if isinstance(stop, SIGTERMException) else "Ctrl-C"
        raise interrupted(trainer, output_dir, cause, seed, started) from None
    except Exception as error:
        reported = full_disk_error(error, trainer, output_dir) if is_disk_full(error) else error
        failed(trainer, output_dir, seed, started, describe(reported))
        if reported is error:
            raise
        raise reported from error


def failed(trainer: Trainer, output_dir: Path, seed: int, started: float, error: str) -> None:
    """metrics.json of a run that an error ended, if it can still be written (the disk may be full)."""
    if not trainer.is_global_zero:
        return
    result = RunResult(status=Status.FAILED, error=error, seed=seed, epochs_run=trainer.current_epoch)
    add_best(result, trainer)
    result.seconds = round(time.perf_counter() - started, 2)
    with contextlib.suppress(DiskFull):
        result.write(output_dir)


def full_disk_error(error: BaseException, trainer: Trainer, output_dir: Path) -> DiskFull:
    """The full disk as the file it could not take: the one the error names, else the writer's own."""
    if isinstance(known := user_error(error), DiskFull):
        return known
    named = next((e.filename for e in chain(error) if isinstance(e, OSError) and e.filename), None)
    if named:
        return disk_full(Path(named))
    # A logger's write (TensorBoard's thread, CSV's file, MLflow's database) names no file: its own place.
    frames = {frame.filename for e in chain(error) for frame in traceback.extract_tb(e.__traceback__)}
    for logger in trainer.loggers:
        lightnings = [cls for cls in type(logger).__mro__ if cls.__module__.startswith("lightning.")]
        if {inspect.getfile(cls) for cls in lightnings} & frames:
            return disk_full(place_of(logger))
    return disk_full(output_dir)


def place_of(logger: Logger) -> Path:
    """Where a logger writes: its folder, or for MLflow its SQLite database."""
    if isinstance(logger, MLFlowLogger):
        uri = logger.experiment.tracking_uri
        if uri.startswith("sqlite:///"):
            return Path(uri.removeprefix("sqlite:///"))
        return Path(logger.save_dir or ".")
    return Path(logger.log_dir)


def interrupted(trainer: Trainer, output_dir: Path, cause: str, seed: int, started: float) -> RunInterrupted:
    last = output_dir / "checkpoints" / "last.ckpt"  # conf/callbacks/default.yaml's last_checkpoint
    last_epoch = saved_epoch(last)
    result = RunResult(
        status=Status.INTERRUPTED,
        interrupted_by=cause,
        seed=seed,
        epochs_run=trainer.current_epoch,
        last_checkpoint=str(last) if last_epoch is not None else None,
        last_checkpoint_epoch=last_epoch,
    )
    add_best(result, trainer)
    result.seconds = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:
        result.write(output_dir)
    testing = trainer.state.fn == TrainerFn.TESTING
    where = "in the test after training" if testing else f"in epoch {trainer.current_epoch}"
    if last_epoch is None:
        return RunInterrupted(
            f"interrupted by {cause} {where}, before any epoch finished: "
            "there is nothing to resume, start the run again"
        )
    return RunInterrupted(
        f"interrupted by {cause} {where}; {last} holds the run up to the end of epoch {last_epoch}: "
        f"resume with ckpt_path={last}"
    )
