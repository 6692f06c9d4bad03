"""``val/fit`` every few validation epochs, ``test/fit`` at every test: a regression's predictions against the
target curve, as seed 003's tutorial plots them, with their error below."""

from typing import Any

import torch
from lightning import LightningModule, Trainer
from matplotlib.figure import Figure
from torch import Tensor

from mnistlab.core.checks import Positive, checked
from mnistlab.dashboards.evaluation_figure import EvaluationFigure
from mnistlab.dashboards.tensorboard import log_figure


class RegressionFitFigure(EvaluationFigure):
    """Keeps each evaluation batch's inputs, predictions and targets on the device, then draws them once.

    Only regressions of one input on one target (``data=function``) have a curve to draw; classification
    runs and other shapes get no figure. Like the confusion matrix, the validation figure is drawn every
    ``every_n_epochs`` epochs, the test one at the end of every run.
    """

    name = "fit"

    @checked
    def __init__(self, *, every_n_epochs: Positive) -> None:
        super().__init__(every_n_epochs)
        self.kept: list[tuple[Tensor, Tensor, Tensor]] = []

    def shows(self, trainer: Trainer, pl_module: LightningModule) -> bool:
        # Under DDP each process keeps its share; rank zero draws its own (the curve's shape, not a count).
        return super().shows(trainer, pl_module) and trainer.is_global_zero

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.kept = []

    def add(self, outputs: Any, batch: Any) -> None:
        inputs, targets = batch
        preds = outputs["preds"]
        if inputs.shape[1:] == preds.shape[1:] == targets.shape[1:] == (1,):
            self.kept.append((inputs, preds.detach(), targets))

    def draw(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not self.kept:
            return
        x, preds, targets = (
            torch.cat(parts).flatten().float().cpu() for parts in zip(*self.kept, strict=True)
        )
        self.kept = []
        log_figure(trainer, f"{stage}/fit", draw_fit(x, preds, targets, stage))


def draw_fit(x: Tensor, preds: Tensor, targets: Tensor, stage: str) -> Figure:
    """The target and the prediction as curves over x; below, their difference on its own scale."""
    order = x.argsort()
    x, preds, targets = x[order].numpy(), preds[order].numpy(), targets[order].numpy()
    mse = float(((preds - targets) ** 2).mean())
    figure = Figure(figsize=(7, 6))
    # Fixed axes: a layout engine would take longer than the drawing.
    curves = figure.add_axes((0.12, 0.36, 0.84, 0.56))
    curves.plot(x, targets, color="black", linewidth=2.5, label="target")
    curves.plot(x, preds, color="tab:orange", linewidth=1.2, label="prediction")
    curves.set_ylabel("y")
    curves.tick_params(labelbottom=False)
    curves.legend(loc="upper center")
    curves.set_title(f"{stage}: {len(x)} points, MSE {mse:.3g}")
    errors = figure.add_axes((0.12, 0.08, 0.84, 0.22), sharex=curves)
    errors.axhline(0, color="black", linewidth=0.8)
    errors.plot(x, preds - targets, color="tab:red", linewidth=1)
    errors.set_xlabel("x")
    errors.set_ylabel("prediction - target")
    return figure
