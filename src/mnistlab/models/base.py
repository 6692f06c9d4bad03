"""The steps, loss and metrics every architecture shares; subclasses only build ``self.net``."""

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from mnistlab.errors import MnistlabError

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]

# What the last layer emits, and the loss that fits it. Log-probabilities with NLL is the tutorials' pair.
OUTPUTS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]] = {
    "logits": (lambda z: z, F.cross_entropy),
    "log_softmax": (lambda z: F.log_softmax(z, dim=1), F.nll_loss),
    "softmax": (lambda z: F.softmax(z, dim=1), lambda p, y: F.nll_loss(p.clamp_min(1e-12).log(), y)),
}
# Schedulers whose length is the whole run: filled in from the trainer, which alone knows the step count.
RUN_LENGTH_ARGS = ("total_steps", "T_max")


class ImageClassifier(LightningModule):
    def __init__(
        self,
        num_classes: int,
        input_shape: Sequence[int],
        class_names: Sequence[str] | None = None,
        output: str = "logits",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise MnistlabError(f"model.output={output!r} is unknown: choose one of {', '.join(OUTPUTS)}")
        # Factories stay out of the checkpoint: it must hold nothing but tensors and plain values.
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.class_names = list(class_names or range(num_classes))
        self.output_activation, self.loss_fn = OUTPUTS[output]

        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc_per_class = MulticlassAccuracy(num_classes, average=None)
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives a resume, so val/acc_best stays the run's best
        self.test_per_class: list[float] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.output_activation(self.net(x))

    def _shared_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        out = self(x)
        return self.loss_fn(out, y), out.argmax(dim=1), y

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, preds, y = self._shared_step(batch)
        self.train_acc(preds, y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, y = self._shared_step(batch)
        self.val_acc(preds, y)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # the sanity pass sees two batches of an untrained model
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, y = self._shared_step(batch)
        self.test_acc(preds, y)
        self.test_acc_per_class.update(preds, y)
        self.log("test/loss", loss, on_epoch=True)
        self.log("test/acc", self.test_acc, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        self.test_per_class = self.test_acc_per_class.compute().tolist()
        self.test_acc_per_class.reset()
        for name, acc in zip(self.class_names, self.test_per_class, strict=True):
            self.log(f"test/acc_per_class/{name}", acc)

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise MnistlabError("this model was built without an optimizer: instantiate it with optimizer=...")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        accepted = inspect.signature(self.scheduler_factory).parameters
        length = {arg: int(self.trainer.estimated_stepping_batches) for arg in RUN_LENGTH_ARGS if arg in accepted}
        scheduler = self.scheduler_factory(optimizer, **length)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
