"""What the figures of an evaluation share: collected on the device batch by batch, drawn once at the end."""

from typing import Any

from lightning import Callback, LightningModule, Trainer

from mnistlab.core.checks import Positive, checked
from mnistlab.dashboards.tensorboard import draws_this_validation, has_images, takes_figures


class EvaluationFigure(Callback):
    """A figure of what a validation (every ``every_n_epochs`` validations) or a test (every test) saw.

    A figure is drawn for the tasks that list its ``name`` (``Task.figures``, mnistlab.tasks), in the stages
    it names, when a logger takes figures. Subclasses say how they start and grow their collection
    (``reset``, ``add``) and how they draw it (``draw``); ``shows`` may narrow where they apply. The sanity
    pass (an untrained model) draws nothing.
    """

    name: str
    stages: tuple[str, ...] = ("val", "test")

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs
        self.collecting = False

    def shows(self, trainer: Trainer, pl_module: LightningModule) -> bool:
        """The same answer on every DDP process, so that all of them take part in a figure's collectives."""
        return self.name in pl_module.task.figures and takes_figures(trainer)

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        raise NotImplementedError

    def add(self, outputs: Any, batch: Any) -> None:
        raise NotImplementedError

    def draw(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        raise NotImplementedError

    def _start(self, trainer: Trainer, pl_module: LightningModule, stage: str, draws: bool = True) -> None:
        self.collecting = (
            stage in self.stages and draws and not trainer.sanity_checking and self.shows(trainer, pl_module)
        )
        if self.collecting:
            self.reset(trainer, pl_module)

    def _end(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.collecting:
            self.collecting = False
            self.draw(trainer, pl_module, stage)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, pl_module, "val", draws=draws_this_validation(trainer, self.every_n_epochs))

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.collecting:
            self.add(outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, pl_module, "test")

    on_test_batch_end = on_validation_batch_end  # collecting is the same in both stages

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end(trainer, pl_module, "test")


class TestImagesFigure(EvaluationFigure):
    """A figure of ``num_images`` of the test's images, for data that are images."""

    stages = ("test",)

    @checked
    def __init__(self, *, num_images: Positive) -> None:
        super().__init__()
        self.num_images = num_images

    def shows(self, trainer: Trainer, pl_module: LightningModule) -> bool:
        return super().shows(trainer, pl_module) and has_images(trainer)
