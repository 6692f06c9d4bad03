"""A SIGTERM stops the run at the next point where every process can decide together; metrics.json says so.

The signal is real (os.kill of the test's own process, from inside the run); what two processes do with it
is tests/run/test_ddp.py's.
"""

import json
import os
import signal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from lightning import Callback, LightningModule, Trainer

from mnistlab.commands.train import train
from mnistlab.core.errors import RunInterrupted


class SigtermAt(Callback):
    """Sends this process a SIGTERM at the start of the training batch of global step ``step``, or at the
    start of the last validation (``step: null``); records the global step at which the run stopped."""

    stopped_at_step: ClassVar[list[int]] = []

    def __init__(self, step: int | None) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: Trainer, module: LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.step is None and trainer.current_epoch == trainer.max_epochs - 1:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        SigtermAt.stopped_at_step.append(trainer.global_step)


def sigterm_at(step: int | None) -> list[str]:
    SigtermAt.stopped_at_step.clear()
    step_value = "null" if step is None else step
    return [f"+callbacks.sigterm._target_={__name__}.SigtermAt", f"+callbacks.sigterm.step={step_value}"]


def metrics_of(cfg) -> dict:
    return json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())


def test_a_sigterm_in_a_training_batch_stops_the_run_at_the_end_of_that_batch(compose_cfg):
    cfg = compose_cfg("model=mlp", *sigterm_at(step=20))  # epoch 1: SHRINK's 540 images make 17 steps each
    with pytest.raises(RunInterrupted, match=r"interrupted by SIGTERM in epoch 1; .* resume with ckpt_path="):
        train(cfg)
    assert SigtermAt.stopped_at_step == [21]
    metrics = metrics_of(cfg)
    assert metrics["status"] == "interrupted" and metrics["interrupted_by"] == "SIGTERM"
    assert metrics["last_checkpoint_epoch"] == 0 and metrics["test_loss"] is None


def test_a_sigterm_in_the_last_validation_keeps_its_checkpoint_and_stops_before_the_test(compose_cfg):
    cfg = compose_cfg("model=mlp", *sigterm_at(step=None))
    with pytest.raises(RunInterrupted, match=r"by SIGTERM in the test after training; .* end of epoch 1"):
        train(cfg)
    metrics = metrics_of(cfg)
    assert metrics["status"] == "interrupted" and metrics["last_checkpoint_epoch"] == 1
    assert metrics["best_checkpoint"] is not None and metrics["test_loss"] is None
    resumed = train(compose_cfg("model=mlp", f"ckpt_path={metrics['last_checkpoint']}"))
    assert resumed.status == "finished" and resumed.test_loss is not None and resumed.epochs_run == 2
