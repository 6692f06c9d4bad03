"""The learning rate per step, as Lightning's ``LearningRateMonitor`` logs it, in runs that have a logger."""

from typing import Any

from lightning import Trainer
from lightning.pytorch.callbacks import LearningRateMonitor


class LearningRateChart(LearningRateMonitor):
    """Lightning's, except that a run without a logger (``logger=none``, ``debug=fast``) simply has no chart:
    Lightning's stops such a run with an error."""

    enabled = True

    def on_train_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        self.enabled = bool(trainer.loggers)
        if self.enabled:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().on_train_epoch_start(trainer, *args, **kwargs)
