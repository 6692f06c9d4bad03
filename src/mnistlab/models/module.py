"""The one LightningModule: a net (any ``nn.Module``) trained for a task (mnistlab.tasks), which owns the
loss, the metrics and what a prediction is. The module only runs the steps."""

import inspect
from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn

from mnistlab.core.checks import checked
from mnistlab.core.errors import MnistlabError
from mnistlab.tasks import Task

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
# Schedulers whose length is the whole run: filled in from the trainer, which alone knows the step count.
RUN_LENGTH_ARGS = ("total_steps", "T_max")


class NetModule(LightningModule):
    @checked
    def __init__(
        self,
        net: nn.Module,
        task: Task,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.task = task
        # Factories, not hyperparameters: a checkpoint holds nothing but tensors and plain values, and the
        # run's config (callbacks/run_config.py) is what rebuilds the model.
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.compile_net = compile
        self._kept_steps: list[tuple[Tensor, Tensor, Tensor]] = []  # training steps not yet in the metrics

    def on_fit_start(self) -> None:
        # nn.Module.compile, not torch.compile(net): the weights keep their names (no `_orig_mod.`), so
        # checkpoints of a compiled run load into a plain model. Here, after the callbacks' on_fit_start:
        # the model graph for TensorBoard is traced from the plain net.
        if self.compile_net:
            self.net.compile()

    def forward(self, x: Tensor) -> Tensor:
        return self.task.outputs(self.net(x))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        z = self.net(x)
        loss = self.task.training_loss(z, y)
        # A step only keeps its tensors: a self.log and a metric update per step cost more than a small net's
        # whole step (docs/benchmarks.md). They are reduced on the device every log interval, which is also
        # when Lightning writes step metrics to the logger.
        self._kept_steps.append((loss.detach(), z.detach(), y))
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", self._count_kept_steps())
        return loss

    def _count_kept_steps(self) -> Tensor:
        """Adds the kept steps to the epoch's training metrics; returns their mean loss."""
        losses, outputs, labels = zip(*self._kept_steps, strict=True)
        self._kept_steps.clear()
        loss = torch.stack(losses)
        batch_sizes = torch.tensor([len(y) for y in labels], dtype=loss.dtype, device=loss.device)
        self.task.update("train", torch.cat(outputs), torch.cat(labels), loss, batch_sizes)
        return (loss * batch_sizes).sum() / batch_sizes.sum()

    def on_train_epoch_end(self) -> None:
        if self._kept_steps:
            self._count_kept_steps()
        # Per epoch, like the validation metrics, so that the two compare on one chart. compute() reduces
        # over all DDP processes; sync_dist only tells Lightning that the values are global.
        for name, metric in self.task.metrics("train").items():
            self.log(name, metric.compute(), sync_dist=True)
            metric.reset()

    def _evaluation_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        z = self.net(x)
        self.task.update(stage, z, y, self.task.loss(z, y), len(y))
        # The metric objects themselves: Lightning computes them at the epoch's end, then resets them.
        self.log_dict(self.task.metrics(stage), on_epoch=True, prog_bar=stage == "val")
        return self.task.evaluation_outputs(z)  # to the figure callbacks; never in training

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluation_step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluation_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity pass sees two batches of an untrained model
            self.task.epoch_end("val", self.log)

    def on_test_epoch_end(self) -> None:
        self.task.epoch_end("test", self.log)

    def predict_step(self, batch: Tensor, batch_idx: int = 0) -> Tensor:
        return self.task.predict(self.net(batch))

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise MnistlabError("this model was built without an optimizer: build it with optimizer=...")
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
        # Named so that the learning-rate chart sits with the other train/ charts.
        lr_scheduler = {"scheduler": scheduler, "interval": "step", "name": "train/lr"}
        return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}
