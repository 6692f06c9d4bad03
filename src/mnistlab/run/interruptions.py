"""Ctrl-C and SIGTERM: the run stops, says where it got to in metrics.json, and exits non-zero.

Inside ``fit`` and ``test`` Ctrl-C ends with Lightning's ``sys.exit(1)``, SIGTERM with a ``SIGTERMException``
(exit status 0) raised by ``callbacks/sigterm.py`` at the end of the current training batch, in every process
at once. Here both become a ``RunInterrupted``.
``last.ckpt`` is the state at the end of the last finished epoch: resuming from there is exact, while a
checkpoint from the middle of an epoch would replay that epoch's first batches.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning import Trainer
from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnistlab.core.errors import RunInterrupted
from mnistlab.core.results import RunResult, Status
from mnistlab.io.checkpoints import saved_epoch
from mnistlab.run.best import add_best


@contextmanager
def reporting_interruptions(trainer: Trainer, output_dir: Path, seed: int, started: float) -> Iterator[None]:
    try:
        yield
    except SystemExit as stop:
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        cause = "SIGTERM" if isinstance(stop, SIGTERMException) else "Ctrl-C"
        raise interrupted(trainer, output_dir, cause, seed, started) from None


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
