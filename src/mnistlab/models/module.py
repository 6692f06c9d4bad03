"""The one LightningModule: a net (any ``nn.Module``) trained for a task (mnistlab.tasks), which owns the
loss, the metrics and what a prediction is. The module only runs the steps."""

import inspect
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Literal

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
# torch.compile's modes (model.compile=true is "default"); reduce-overhead replays the net's kernels as CUDA
# graphs, fewer launches a step.
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]


class NetModule(LightningModule):
    @checked
    def __init__(
        self,
        net: nn.Module,
        task: Task,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        compile: bool | CompileMode = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.task = task
        # Factories, not hyperparameters: a checkpoint holds nothing but tensors and plain values, and the
        # run's config (callbacks/run_config.py) is what rebuilds the model.
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.compile_mode: CompileMode | None = "default" if compile is True else compile or None
        self.compiled = False
        self.compile_seconds: float | None = None  # how long compiling took, before the first step
        self._kept_steps: list[tuple[Tensor, Tensor, Tensor]] = []  # training steps not yet in the metrics

    def on_fit_start(self) -> None:
        # After the callbacks' on_fit_start: the model graph for TensorBoard is traced from the plain net.
        if not self.compile_mode or self.compiled:
            return
        started = time.perf_counter()
        self.compile_net()
        # Under DDP the fit compiles it: DDP's hooks on the weights expect its own backward.
        if self.trainer.world_size == 1:
            datamodule = self.trainer.datamodule
            examples = torch.arange(min(datamodule.batch_size, len(datamodule.train_set)), device=self.device)
            self.warm_up(datamodule.train_set[examples], self.trainer.precision_plugin.forward_context())
            self.compile_seconds = round(time.perf_counter() - started, 2)

    def compile_net(self) -> None:
        # nn.Module.compile, not torch.compile(net): the weights keep their names (no `_orig_mod.`), so
        # checkpoints of a compiled run load into a plain model, eval.py's, predict.py's and export.py's.
        self.net.compile(mode=self.compile_mode)
        self.compiled = True

    def warm_up(self, batch: tuple[Tensor, Tensor], forward_context: AbstractContextManager) -> None:
        """Compiles the net by one training step's forward and backward on ``batch``, and leaves the weights,
        their gradients and the net's buffers (batch norm's statistics) as they were: the compiling's time
        can then be told apart from the training's (train.py reports it apart)."""
        buffers = {name: buffer.clone() for name, buffer in self.net.named_buffers()}
        self.train()
        with forward_context:
            loss = self.task.training_loss(self.net(batch[0]), batch[1])
        loss.backward()
        for weight in self.parameters():
            weight.grad = None
        with torch.no_grad():
            for name, buffer in self.net.named_buffers():
                buffer.copy_(buffers[name])

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
        # Made on the device: a tensor of host numbers would wait for it.
        batch_sizes = torch.stack([torch.full_like(loss[0], len(y)) for y in labels])
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
        loss = self.task.loss(z, y)
        self.task.update(stage, z, y, loss, torch.full_like(loss, len(y)))
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
        optimizer = self.optimizer_factory(
            params=self.parameters(), **fastest_update(self.optimizer_factory, self.device)
        )
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


def fastest_update(factory: OptimizerFactory, device: torch.device) -> dict[str, bool]:
    """What the config leaves to us (``foreach`` and ``fused`` null): one fused kernel for every weight on
    CUDA, the multi-tensor (foreach) update on a CPU, where torch's own default loops over the weights."""
    accepted = inspect.signature(factory).parameters
    given = getattr(factory, "keywords", {})
    if "fused" not in accepted or given.get("fused") is not None or given.get("foreach") is not None:
        return {}
    return {"fused": True} if device.type == "cuda" else {"foreach": True}
