from collections.abc import Mapping
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor

from mnistlab.core.errors import MnistlabError


class TrainingDiverged(MnistlabError):
    """The training loss became NaN or infinite; the run stops and tests its best checkpoint from before."""

    def __init__(self, loss: float, epoch: int, step: int, lr: float | None) -> None:
        lr_then = f", learning rate {lr:g}" if lr is not None else ""
        super().__init__(
            f"training diverged: the training loss became {loss} at epoch {epoch}, step {step}{lr_then}; "
            "try a lower optimizer.lr"
        )
        self.epoch = epoch
        self.step = step


class StopOnDivergence(Callback):
    """Stops the run when the training loss becomes NaN or infinite, before validation or checkpointing.

    Losses are gathered on their device and checked every ``check_every`` steps and before each validation,
    so a training step does not wait on the device to say whether its loss is finite.
    """

    check_every = 100

    def __init__(self) -> None:
        self.losses: list[Tensor] = []
        self.steps: list[tuple[int, int, float | None]] = []  # (epoch, steps taken, learning rate) per loss

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, Tensor):
            self.losses.append(loss.detach())
            lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
            self.steps.append((trainer.current_epoch, trainer.global_step, lr))
        if len(self.losses) >= self.check_every:
            self.check(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: Trainer | None = None) -> None:
        if not self.losses:
            return
        losses = torch.stack(self.losses)
        if trainer is not None and trainer.world_size > 1:
            # Every DDP process checks at the same step; all stop if any process's loss went bad, or the
            # others would wait for it in the next gradient exchange. Rows: processes; columns: steps.
            losses = trainer.strategy.all_gather(losses).view(trainer.world_size, -1)
        else:
            losses = losses.view(1, -1)
        bad_steps = (~torch.isfinite(losses)).any(dim=0).nonzero()
        self.losses.clear()
        steps, self.steps = self.steps, []
        if len(bad_steps):
            first = int(bad_steps[0])
            column = losses[:, first]
            raise TrainingDiverged(float(column[~torch.isfinite(column)][0]), *steps[first])
