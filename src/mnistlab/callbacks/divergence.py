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

    A training step never waits for the device to say whether its loss is finite: every ``check_every``
    steps the losses so far are asked on the device, and the answer is read once it has arrived (a later
    step). Before each validation and at each epoch's end every process waits for the answer, together: a
    diverged weight never reaches a checkpoint. (Under DDP only then: the processes must stop at one step.)
    """

    check_every = 100

    def __init__(self) -> None:
        self.losses: list[Tensor] = []
        self.steps: list[tuple[int, int, float | None]] = []  # (epoch, steps taken, learning rate) per loss
        self.asked: list[tuple[Tensor, Any, Tensor, list[tuple[int, int, float | None]]]] = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, Tensor):
            self.losses.append(loss.detach())
            lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
            self.steps.append((trainer.current_epoch, trainer.global_step, lr))
        if trainer.world_size == 1 and len(self.losses) >= self.check_every:
            self.read_answers(wait=False)
            self.ask(self.kept(trainer))

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: Trainer | None = None) -> None:
        """Every process, waiting for the answers: before validation and at each epoch's end."""
        if self.losses:
            self.ask(self.kept(trainer))
        self.read_answers(wait=True)

    def kept(self, trainer: Trainer | None) -> tuple[Tensor, list[tuple[int, int, float | None]]]:
        """The losses since the last question (rows: DDP processes; columns: steps) and their steps."""
        losses = torch.stack(self.losses)
        self.losses.clear()
        steps, self.steps = self.steps, []
        if trainer is not None and trainer.world_size > 1:
            # All processes stop if any process's loss went bad, or the others would wait for it in the next
            # gradient exchange.
            return trainer.strategy.all_gather(losses).view(trainer.world_size, -1), steps
        return losses.view(1, -1), steps

    def ask(self, kept: tuple[Tensor, list[tuple[int, int, float | None]]]) -> None:
        losses, steps = kept
        bad = (~torch.isfinite(losses)).any()
        answer = torch.empty((), dtype=torch.bool, pin_memory=bad.is_cuda)
        answer.copy_(bad, non_blocking=True)  # to the host; it arrives while the next steps run
        arrived = None
        if bad.is_cuda:
            arrived = torch.cuda.Event()
            arrived.record()
        self.asked.append((answer, arrived, losses, steps))

    def read_answers(self, wait: bool) -> None:
        waiting = []
        for answer, arrived, losses, steps in self.asked:
            if arrived is not None and not wait and not arrived.query():
                waiting.append((answer, arrived, losses, steps))
                continue
            if arrived is not None:
                arrived.synchronize()
            if answer.item():  # a host tensor by now: no wait
                self.asked = []
                raise diverged(losses, steps)
        self.asked = waiting


def diverged(losses: Tensor, steps: list[tuple[int, int, float | None]]) -> TrainingDiverged:
    """The first step whose loss went bad (on any process), as the user's line tells it."""
    first = int((~torch.isfinite(losses)).any(dim=0).nonzero()[0])
    column = losses[:, first]
    return TrainingDiverged(float(column[~torch.isfinite(column)][0]), *steps[first])
