"""What a trainer knows of a run's best checkpoint and its last validation, for its results."""

from pathlib import Path

from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from mnistlab.core.results import RunResult
from mnistlab.io.checkpoints import saved_epoch


def best_checkpoint_callback(trainer: Trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that keeps the best val/loss; Lightning's own default monitors nothing."""
    monitoring = [callback for callback in trainer.checkpoint_callbacks if callback.monitor == "val/loss"]
    return monitoring[0] if monitoring else None


def add_best(result: RunResult, trainer: Trainer) -> None:
    """The best checkpoint by val/loss, if the run keeps one (``callbacks=none`` does not)."""
    callback = best_checkpoint_callback(trainer)
    if callback is None or not callback.best_model_path:
        return
    result.best_checkpoint = callback.best_model_path
    result.best_val_loss = float(callback.best_model_score)
    result.best_epoch = saved_epoch(Path(callback.best_model_path))


def add_last_val_loss(result: RunResult, trainer: Trainer) -> None:
    """val/loss of the last validation: what a pruner judged a pruned trial by."""
    loss = trainer.callback_metrics.get("val/loss")
    result.last_val_loss = None if loss is None else float(loss)
