"""What a task is to the model (models/module.py): its loss, its metrics and what a prediction is, on the
net's raw outputs. A new task (say, multi-label) is a subclass in a file of its own and a name in TASKS."""

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric

STAGES = ("train", "val", "test")
Log = Callable[..., None]  # LightningModule.log


class WeightedMean(MeanMetric):
    """torchmetrics' weighted mean without its NaN check, which would wait for the device at every update
    (a NaN loss stops the run anyway). Not ``MeanMetric(nan_strategy="disable")``: that drops the weights
    (torchmetrics#3434, open in 1.9), so a last, smaller batch counted as much as a full one."""

    def __init__(self) -> None:
        super().__init__(nan_strategy="disable")

    def update(self, value: Tensor, weight: Tensor) -> None:
        self.mean_value += (value * weight).sum()
        self.weight += weight.sum()


class Task(nn.Module):
    """A module for its metrics only (they move with the model, and some are kept in checkpoints)."""

    # The figures (dashboards/) that show this task's results, by their names.
    figures: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        # Losses as metrics too: under DDP they reduce sum and count over all processes, the mean of one
        # process over the whole set; Lightning's sync_dist would average the processes' means.
        for stage in STAGES:
            setattr(self, f"{stage}_loss", WeightedMean())

    @classmethod
    def for_data(cls, datamodule: Any, **options: Any) -> "Task":
        """The task for a datamodule's data, with the model's options for it (``model.output``, ...)."""
        return cls(**options)

    def outputs(self, z: Tensor) -> Tensor:
        """What the model gives for the net's raw outputs ``z`` (its ``forward``)."""
        return z

    def loss(self, z: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def training_loss(self, z: Tensor, y: Tensor) -> Tensor:
        """The loss that trains the net; validation and test report ``loss``, comparable across runs."""
        return self.loss(z, y)

    @staticmethod
    def predict(z: Tensor) -> Tensor:
        """A prediction (``predict_step``, export, serve): a function of ``z`` alone, no state."""
        return z

    def evaluation_outputs(self, z: Tensor) -> dict[str, Tensor]:
        """What a validation or test step hands the figure callbacks."""
        return {"preds": z}

    def update(self, stage: str, z: Tensor, y: Tensor, loss: Tensor, weight: Tensor) -> None:
        """Adds examples to the stage's metrics; ``loss`` may be one value or one per step (``weight``: the
        number of examples behind each, on the device)."""
        getattr(self, f"{stage}_loss").update(loss, weight=weight)

    def metrics(self, stage: str) -> Mapping[str, Metric]:
        """The stage's metrics by the names they are logged under, for Lightning to compute and reset."""
        return {f"{stage}/loss": getattr(self, f"{stage}_loss")}

    def epoch_end(self, stage: str, log: Log) -> None:
        """What follows from a whole evaluation (a best-so-far, per-class values), logged with ``log``."""

    def test_results(self, logged: Mapping[str, Any]) -> dict[str, Any]:
        """The test's numbers from the logged metrics, by their keys in metrics.json (core/results.py)."""
        return {"test_loss": float(logged["test/loss"])}
