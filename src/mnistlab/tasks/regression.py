"""Values: the mean squared error of the raw outputs; a prediction is the output itself."""

import torch.nn.functional as F
from torch import Tensor

from mnistlab.core.checks import checked
from mnistlab.core.errors import MnistlabError
from mnistlab.tasks.base import Task


class Regression(Task):
    figures = ("fit",)

    @checked
    def __init__(self, *, output: str, label_smoothing: float) -> None:
        # model.* holds a classifier's settings too; a regression can only take them as they come.
        if output != "logits":
            raise MnistlabError(
                f"model.output={output!r} is for classification: a regression net's outputs are its "
                "predictions, so keep model.output=logits (the last layer as it is)"
            )
        if label_smoothing:
            raise MnistlabError(
                f"model.label_smoothing={label_smoothing} smooths a classifier's targets: "
                "a regression has none to smooth, so set it to 0"
            )
        super().__init__()

    def loss(self, z: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(z, y)
