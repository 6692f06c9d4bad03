"""The steps, loss and metrics every architecture shares; subclasses only build ``self.net``."""

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric
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
# Class probabilities from each kind of output, for the figures that show them.
PROBABILITIES: dict[str, Callable[[Tensor], Tensor]] = {
    "logits": lambda z: F.softmax(z, dim=1),
    "log_softmax": torch.exp,
    "softmax": lambda p: p,
}
# The tasks a datamodule can pose (its ``task``). A regression net outputs its predictions as they are.
TASKS = ("classification", "regression")
# Schedulers whose length is the whole run: filled in from the trainer, which alone knows the step count.
RUN_LENGTH_ARGS = ("total_steps", "T_max")


class ImageClassifier(LightningModule):
    """A classifier, or a regression when the datamodule's ``task`` says so (MSE, no accuracy metrics)."""

    def __init__(
        self,
        num_classes: int,
        input_shape: Sequence[int],
        class_names: Sequence[str] | None = None,
        output: str = "logits",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        compile: bool = False,
        task: str = "classification",
        num_outputs: int | None = None,  # the last layer's width; a score per class if None
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise MnistlabError(f"model.output={output!r} is unknown: choose one of {', '.join(OUTPUTS)}")
        if task not in TASKS:
            raise MnistlabError(f"the data's task {task!r} is unknown: it must be one of {', '.join(TASKS)}")
        if task == "regression" and output != "logits":
            raise MnistlabError(
                f"model.output={output!r} is for classification: a regression net's outputs are its "
                "predictions, so keep model.output=logits (the last layer as it is)"
            )
        if not 0 <= label_smoothing < 1:
            raise MnistlabError(f"model.label_smoothing={label_smoothing} must lie in [0, 1)")
        if label_smoothing and (task != "classification" or output != "logits"):
            raise MnistlabError(
                f"model.label_smoothing={label_smoothing} smooths a classifier's cross-entropy on logits: "
                "use it with model.output=logits on classification data, or set it to 0"
            )
        # Factories stay out of the checkpoint: it must hold nothing but tensors and plain values.
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.class_names = list(class_names or range(num_classes))
        self.classifies = task == "classification"
        self.num_outputs = num_classes if num_outputs is None else num_outputs
        self.output_activation, loss_fn = OUTPUTS[output]
        # A regression's loss is the mean squared error of the raw outputs (model.output=logits).
        self.loss_fn = loss_fn if self.classifies else F.mse_loss
        # Smoothing shapes training only: val/loss and test/loss stay the plain loss, comparable across runs.
        self.train_loss_fn = self.loss_fn
        if label_smoothing:
            self.train_loss_fn = functools.partial(F.cross_entropy, label_smoothing=label_smoothing)

        self.train_loss = MeanMetric()
        # Evaluation losses as metrics too: under DDP they reduce sum and count over all processes, the mean
        # of one process over the whole set; Lightning's sync_dist would average the processes' means.
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        if self.classifies:  # accuracy means nothing for a regression
            self.train_acc = MulticlassAccuracy(num_classes, average="micro")
            self.val_acc = MulticlassAccuracy(num_classes, average="micro")
            self.test_acc = MulticlassAccuracy(num_classes, average="micro")
            self.test_acc_per_class = MulticlassAccuracy(num_classes, average=None)
            self.val_acc_best = MaxMetric()
            self.val_acc_best.persistent(True)  # survives a resume, so val/acc_best stays the run's best
        self._kept_steps: list[tuple[Tensor, Tensor, Tensor]] = []  # training steps not yet in the metrics

    def on_fit_start(self) -> None:
        # nn.Module.compile, not torch.compile(module): the weights keep their names (no `_orig_mod.`), so
        # checkpoints of a compiled run load into a plain model, eval.py's included. Here, after the
        # callbacks' on_fit_start: the model graph for TensorBoard is traced from the plain module.
        if self.hparams.compile:
            self.compile()

    def forward(self, x: Tensor) -> Tensor:
        return self.output_activation(self.net(x))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        out = self(x)
        loss = self.train_loss_fn(out, y)
        # A step only keeps its tensors: a self.log and a metric update per step cost more than a small net's
        # whole step (docs/benchmarks.md). They are reduced on the device every log interval, which is also
        # when Lightning writes step metrics to the logger.
        self._kept_steps.append((loss.detach(), out.detach(), y))
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", self._reduce_kept_steps())
        return loss

    def _reduce_kept_steps(self) -> Tensor:
        """Adds the kept steps to the epoch's train metrics; returns their mean loss."""
        losses, outputs, labels = zip(*self._kept_steps, strict=False)
        self._kept_steps.clear()
        loss = torch.stack(losses)
        batch_sizes = torch.tensor([len(y) for y in labels], dtype=loss.dtype, device=loss.device)
        self.train_loss.update(loss, weight=batch_sizes)
        if self.classifies:
            self.train_acc.update(torch.cat(outputs).argmax(dim=1), torch.cat(labels))
        return (loss * batch_sizes).sum() / batch_sizes.sum()

    def on_train_epoch_end(self) -> None:
        if self._kept_steps:
            self._reduce_kept_steps()
        # Per epoch, like val/loss and val/acc, so that the two pairs compare on one chart. compute() reduces
        # over all DDP processes; sync_dist only tells Lightning that the values are global.
        self.log("train/loss", self.train_loss.compute(), sync_dist=True)
        self.train_loss.reset()
        if self.classifies:
            self.log("train/acc", self.train_acc.compute(), sync_dist=True)
            self.train_acc.reset()

    def _evaluation_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        x, y = batch
        out = self(x)
        # Returned to callbacks (confusion matrix, prediction figures): evaluation only, never in training.
        if not self.classifies:
            return self.loss_fn(out, y), {"preds": out}, y
        probs = PROBABILITIES[self.hparams.output](out)
        return self.loss_fn(out, y), {"preds": probs.argmax(dim=1), "probs": probs}, y

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        loss, outputs, y = self._evaluation_step(batch)
        self.val_loss.update(loss, weight=len(y))
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        if self.classifies:
            self.val_acc(outputs["preds"], y)
            self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)
        return outputs

    def on_validation_epoch_end(self) -> None:
        # The sanity pass sees two batches of an untrained model.
        if self.trainer.sanity_checking or not self.classifies:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        loss, outputs, y = self._evaluation_step(batch)
        self.test_loss.update(loss, weight=len(y))
        self.log("test/loss", self.test_loss, on_epoch=True)
        if self.classifies:
            self.test_acc(outputs["preds"], y)
            self.test_acc_per_class.update(outputs["preds"], y)
            self.log("test/acc", self.test_acc, on_epoch=True)
        return outputs

    def on_test_epoch_end(self) -> None:
        if not self.classifies:
            return
        per_class = self.test_acc_per_class.compute()
        self.test_acc_per_class.reset()
        # Kept out of the loggers (ten one-dot charts would open TensorBoard): the confusion-matrix callback
        # draws them beside the test matrix, and metrics.json reads them from the trainer's callback metrics.
        for name, acc in zip(self.class_names, per_class, strict=True):
            self.log(f"test/acc_per_class/{name}", acc, logger=False, sync_dist=True)
        self.log("test/acc_worst_class", per_class.min(), sync_dist=True)  # one number for the HPARAMS table

    def predict_step(self, batch: Tensor, batch_idx: int = 0) -> Tensor:
        """Class probabilities of a batch, whatever the model's output (logits, log-softmax); a regression's
        predictions as they are."""
        outputs = self(batch)
        return PROBABILITIES[self.hparams.output](outputs) if self.classifies else outputs

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise MnistlabError(
                "this model was built without an optimizer: instantiate it with optimizer=..."
            )
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        accepted = inspect.signature(self.scheduler_factory).parameters
        length = {
            arg: int(self.trainer.estimated_stepping_batches) for arg in RUN_LENGTH_ARGS if arg in accepted
        }
        try:
            scheduler = self.scheduler_factory(optimizer, **length)
        except ValueError as error:  # e.g. onecycle cycles a momentum that optimizer=gd does not have
            raise MnistlabError(
                f"the scheduler cannot drive this optimizer ({error}): "
                "choose another scheduler=... or optimizer=..."
            ) from error
        # Named so that LearningRateMonitor's chart sits with the other train/ charts.
        lr_scheduler = {"scheduler": scheduler, "interval": "step", "name": "train/lr"}
        return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}
