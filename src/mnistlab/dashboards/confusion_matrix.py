"""``val/confusion_matrix`` every few validation epochs; ``test/confusion_matrix`` and, beside it,
``test/acc_per_class`` (a bar chart of the same counts) at every test."""

import warnings
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from matplotlib.figure import Figure
from torchmetrics.classification import MulticlassConfusionMatrix

from mnistlab.dashboards.tensorboard import log_figure, short_labels, takes_figures


class ConfusionMatrixFigure(Callback):
    """Counts (true class, predicted class) pairs on the device during evaluation, then draws them once.

    Drawing with matplotlib (a hundred numbers to render) costs a sizeable part of a small MLP's epoch
    (docs/benchmarks.md): during training the validation matrix is drawn every ``every_n_epochs`` epochs.
    The test matrix, of the best checkpoint, is drawn at the end of every run.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs
        self.matrix: MulticlassConfusionMatrix | None = None

    def _draws_this_validation(self, trainer: Trainer) -> bool:
        if trainer.state.fn != TrainerFn.FITTING:  # trainer.validate(): the one validation there is
            return True
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _start(self, trainer: Trainer, pl_module: LightningModule, draws: bool = True) -> None:
        self.matrix = None
        if draws and takes_figures(trainer) and not trainer.sanity_checking:
            num_classes = pl_module.hparams.num_classes
            self.matrix = MulticlassConfusionMatrix(num_classes).to(pl_module.device)

    def _log(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.matrix is None or not takes_figures(trainer):
            return
        figure = draw_confusion_matrix(self.matrix, short_labels(pl_module.class_names), stage)
        log_figure(trainer, f"{stage}/confusion_matrix", figure)
        if stage == "test":
            log_figure(
                trainer, "test/acc_per_class", draw_accuracy_per_class(self.matrix, pl_module.class_names)
            )

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, pl_module, draws=self._draws_this_validation(trainer))

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.matrix is not None:
            self.matrix.update(outputs["preds"], batch[1])

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, pl_module)

    on_test_batch_end = on_validation_batch_end  # counting is the same in both stages

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer, pl_module, "test")


def draw_confusion_matrix(metric: MulticlassConfusionMatrix, labels: list[str], stage: str) -> Figure:
    """Rows are true classes, columns predicted ones, drawn by torchmetrics on a figure of our own."""
    matrix = metric.compute()
    size = max(5.0, 0.6 * len(labels))
    figure = Figure(figsize=(size, size))
    # Fixed margins, wider for long names (Fashion-MNIST's): a layout engine costs more than the drawing.
    margin = 0.13 if max(len(label) for label in labels) <= 3 else 0.22
    ax = figure.add_axes((margin, margin, 0.97 - margin, 0.92 - margin))
    with warnings.catch_warnings():  # torchmetrics hands matplotlib a tensor, which numpy 2 warns about
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept", DeprecationWarning)
        metric.plot(val=matrix, ax=ax, labels=labels, cmap="Blues")
    for text in ax.texts:  # torchmetrics writes counts at size 15: four digits would overflow a cell
        text.set_fontsize(8 if len(labels) > 5 else 12)
    accuracy = (matrix.trace() / matrix.sum().clamp_min(1)).item()
    ax.set_title(f"{stage}: {int(matrix.sum())} examples, accuracy {accuracy:.2%}")
    return figure


def draw_accuracy_per_class(metric: MulticlassConfusionMatrix, class_names: list[str]) -> Figure:
    """Each class's accuracy (recall: the share of its examples predicted right) as a bar, the overall
    accuracy as a line, the worst class in red: what ten one-dot charts would say, on one card."""
    matrix = metric.compute().cpu()
    per_class = (matrix.diag() / matrix.sum(dim=1).clamp_min(1)).tolist()
    overall = (matrix.trace() / matrix.sum().clamp_min(1)).item()
    figure = Figure(figsize=(max(7.0, 0.6 * len(class_names)), 5.0), layout="constrained")
    ax = figure.add_subplot()
    worst = min(range(len(per_class)), key=per_class.__getitem__)
    colors = ["tab:red" if i == worst else "tab:blue" for i in range(len(per_class))]
    bars = ax.bar(range(len(per_class)), [100 * acc for acc in per_class], color=colors)
    ax.bar_label(bars, [f"{100 * acc:.1f}" for acc in per_class], fontsize=7, padding=2)
    ax.axhline(100 * overall, color="black", linestyle="--", linewidth=1, label=f"overall {overall:.2%}")
    long_names = max(len(str(name)) for name in class_names) > 3
    ax.set_xticks(
        range(len(per_class)),
        [str(name) for name in class_names],
        fontsize=8,
        rotation=45 if long_names else 0,
        ha="right" if long_names else "center",
    )
    low = min(100 * min(per_class), 100 * overall)
    ax.set_ylim(max(0.0, low - 0.15 * (100 - low) - 1), 100.5)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"test accuracy per class (worst: {class_names[worst]}, {per_class[worst]:.2%})")
    ax.legend(loc="lower right", fontsize=8)
    return figure
