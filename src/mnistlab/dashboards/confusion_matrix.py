"""``val/confusion_matrix`` every few validation epochs; ``test/confusion_matrix``, with each class's accuracy
beside it, at every test."""

import warnings
from typing import Any

from lightning import LightningModule, Trainer
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from mnistlab.core.checks import Positive, checked
from mnistlab.dashboards.evaluation_figure import EvaluationFigure
from mnistlab.dashboards.tensorboard import log_figure, short_labels


class ConfusionMatrixFigure(EvaluationFigure):
    """Counts (true class, predicted class) pairs on the device during evaluation, then draws them once.

    Drawing with matplotlib (a hundred numbers to render) costs a sizeable part of a small MLP's epoch
    (docs/benchmarks.md): during training the validation matrix is drawn every ``every_n_epochs`` epochs.
    The test matrix, of the best checkpoint, is drawn at the end of every run.
    """

    name = "confusion_matrix"

    @checked
    def __init__(self, *, every_n_epochs: Positive) -> None:
        super().__init__(every_n_epochs)
        self.matrix: MulticlassConfusionMatrix | None = None

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Each DDP process counts its share, and compute() sums them all.
        classes = len(trainer.datamodule.class_names)
        self.matrix = MulticlassConfusionMatrix(classes).to(pl_module.device)

    def add(self, outputs: Any, batch: Any) -> None:
        self.matrix.update(outputs["preds"], batch[1])

    def draw(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        matrix = self.matrix.compute()  # on every process: under DDP it is a collective
        # The test matrix gets each class's accuracy beside it: one card instead of ten one-dot charts.
        labels = short_labels(trainer.datamodule.class_names)
        figure = draw_confusion_matrix(self.matrix, matrix, labels, stage, per_class=stage == "test")
        log_figure(trainer, f"{stage}/confusion_matrix", figure)  # rank zero alone writes


def draw_confusion_matrix(
    metric: MulticlassConfusionMatrix,
    matrix: Tensor,
    labels: list[str],
    stage: str,
    per_class: bool = False,
) -> Figure:
    """Rows are true classes, columns predicted ones (``metric``'s computed ``matrix``), drawn by torchmetrics
    on a figure of our own; with ``per_class``, each row's accuracy as a bar beside it."""
    size = max(5.0, 0.6 * len(labels))
    width = 1.0 + 0.6 * per_class  # the bars take 0.6 of the matrix's width
    figure = Figure(figsize=(size * width, size))
    # Fixed margins, wider for long names (Fashion-MNIST's): a layout engine costs more than the drawing.
    margin = 0.13 if max(len(label) for label in labels) <= 3 else 0.22
    height = 0.92 - margin
    ax = figure.add_axes((margin / width, margin, (0.97 - margin) / width, height))
    with warnings.catch_warnings():  # torchmetrics hands matplotlib a tensor, which numpy 2 warns about
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept", DeprecationWarning)
        metric.plot(val=matrix, ax=ax, labels=labels, cmap="Blues")
    for text in ax.texts:  # torchmetrics writes counts at size 15: four digits would overflow a cell
        text.set_fontsize(8 if len(labels) > 5 else 12)
    accuracy = (matrix.trace() / matrix.sum().clamp_min(1)).item()
    ax.set_title(f"{stage}: {int(matrix.sum())} examples, accuracy {accuracy:.2%}")
    if per_class:
        bars = figure.add_axes((1.04 / width, margin, 0.5 / width, height))
        draw_accuracy_bars(bars, matrix.cpu(), accuracy)
    return figure


def draw_accuracy_bars(ax: Axes, matrix: Tensor, accuracy: float) -> None:
    """Each class's accuracy (the share of its examples predicted right), a bar level with its matrix row;
    the overall accuracy as a line, the worst class in red."""
    per_class = (matrix.diag() / matrix.sum(dim=1).clamp_min(1)).tolist()
    rows = range(len(per_class))
    worst = min(rows, key=per_class.__getitem__)
    colors = ["tab:red" if row == worst else "tab:blue" for row in rows]
    bars = ax.barh(rows, [100 * acc for acc in per_class], height=0.7, color=colors)
    ax.bar_label(bars, [f"{100 * acc:.1f}" for acc in per_class], fontsize=7, padding=2)
    ax.axvline(100 * accuracy, color="black", linestyle="--", linewidth=1)
    ax.set_ylim(len(per_class) - 0.5, -0.5)  # row 0 on top, as in the matrix
    ax.set_yticks([])
    low = min(100 * min(per_class), 100 * accuracy)
    ax.set_xlim(max(0.0, low - 0.3 * (100 - low) - 1), 100.0 + 0.25 * (100 - low) + 0.5)  # room for labels
    ax.set_xticks([tick for tick in ax.get_xticks() if tick <= 100])
    ax.set_xlabel("accuracy per class (%)")
    ax.set_title("dashed: overall", fontsize=9)
