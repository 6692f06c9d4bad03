"""Classes: cross-entropy (or the tutorials' log-softmax and softmax outputs), accuracy overall and per class,
the best validation accuracy so far; a prediction is the class probabilities."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MaxMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

from mnistlab.core.checks import Fraction, checked
from mnistlab.core.errors import MnistlabError
from mnistlab.tasks.base import STAGES, Log, Task

# What the model emits for the net's last layer, and the loss that fits it: log-probabilities with NLL, or
# probabilities with NLL of their log, are the tutorials' pairs; cross-entropy on logits is the same loss.
OUTPUTS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]] = {
    "logits": (lambda z: z, F.cross_entropy),
    "log_softmax": (lambda z: F.log_softmax(z, dim=1), F.nll_loss),
    "softmax": (lambda z: F.softmax(z, dim=1), lambda p, y: F.nll_loss(p.clamp_min(1e-12).log(), y)),
}


class Classification(Task):
    figures = ("confusion_matrix", "predictions", "mistakes")

    @checked
    def __init__(
        self, *, class_names: Sequence[str], output: Literal[tuple(OUTPUTS)], label_smoothing: Fraction
    ) -> None:
        if label_smoothing and output != "logits":
            raise MnistlabError(
                f"model.label_smoothing={label_smoothing} smooths a classifier's cross-entropy on logits: "
                "use it with model.output=logits, or set it to 0"
            )
        super().__init__()
        self.class_names = [str(name) for name in class_names]
        self.activation, self.output_loss = OUTPUTS[output]
        self.label_smoothing = label_smoothing
        # validate_args=False: the checks of the inputs' values would wait for the device at every update.
        unchecked = {"num_classes": len(class_names), "validate_args": False}
        for stage in STAGES:
            setattr(self, f"{stage}_accuracy", MulticlassAccuracy(average="micro", **unchecked))
        self.test_accuracy_per_class = MulticlassAccuracy(average=None, **unchecked)
        self.val_accuracy_best = MaxMetric()
        self.val_accuracy_best.persistent(True)  # survives a resume, so val/acc_best stays the run's best

    @classmethod
    def for_data(cls, datamodule: Any, **options: Any) -> "Classification":
        return cls(class_names=datamodule.class_names, **options)

    def outputs(self, z: Tensor) -> Tensor:
        return self.activation(z)

    def loss(self, z: Tensor, y: Tensor) -> Tensor:
        return self.output_loss(self.activation(z), y)

    def training_loss(self, z: Tensor, y: Tensor) -> Tensor:
        if self.label_smoothing:  # on logits only (checked above)
            return F.cross_entropy(z, y, label_smoothing=self.label_smoothing)
        return self.loss(z, y)

    @staticmethod
    def predict(z: Tensor) -> Tensor:
        return F.softmax(z, dim=1)  # whatever the output: softmax of logits = exp of log-softmax

    def evaluation_outputs(self, z: Tensor) -> dict[str, Tensor]:
        probs = self.predict(z)
        return {"preds": probs.argmax(dim=1), "probs": probs}

    def update(self, stage: str, z: Tensor, y: Tensor, loss: Tensor, weight: Tensor) -> None:
        super().update(stage, z, y, loss, weight)
        preds = z.argmax(dim=1)
        getattr(self, f"{stage}_accuracy").update(preds, y)
        if stage == "test":
            self.test_accuracy_per_class.update(preds, y)

    def metrics(self, stage: str) -> Mapping[str, Metric]:
        return {**super().metrics(stage), f"{stage}/acc": getattr(self, f"{stage}_accuracy")}

    def epoch_end(self, stage: str, log: Log) -> None:
        # compute() reduces over all DDP processes; sync_dist only tells Lightning that the values are global.
        if stage == "val":
            self.val_accuracy_best(self.val_accuracy.compute())
            log("val/acc_best", self.val_accuracy_best.compute(), sync_dist=True)
        elif stage == "test":
            per_class = self.test_accuracy_per_class.compute()
            self.test_accuracy_per_class.reset()
            # Kept out of the loggers (ten one-dot charts would open TensorBoard): the confusion matrix
            # draws them beside the test matrix, and metrics.json reads them from the logged metrics.
            for name, acc in zip(self.class_names, per_class, strict=True):
                log(f"test/acc_per_class/{name}", acc, logger=False, sync_dist=True)
            log("test/acc_worst_class", per_class.min(), sync_dist=True)  # one number for HPARAMS

    def test_results(self, logged: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **super().test_results(logged),
            "test_acc": float(logged["test/acc"]),
            "test_acc_per_class": [float(logged[f"test/acc_per_class/{name}"]) for name in self.class_names],
        }
