"""A small convolutional net: one conv block per entry of ``channels`` (three by default), then a fully
connected head (or, with ``hidden_size=None``, a single linear layer from the features to the classes)."""

import itertools
import math
from collections.abc import Sequence

from torch import nn

from mnistlab.errors import MnistlabError
from mnistlab.models.base import ImageClassifier


def conv_block(n_in: int, n_out: int) -> nn.Sequential:
    # bias=False: BatchNorm's shift does the bias's job.
    return nn.Sequential(
        nn.Conv2d(n_in, n_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(n_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class CNN(ImageClassifier):
    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        hidden_size: int | None = 128,
        dropout: float = 0.25,
        **base,
    ) -> None:
        super().__init__(**base)
        if len(self.hparams.input_shape) != 3:
            raise MnistlabError(
                f"model=cnn needs images (channels, height, width), and the data's inputs have shape "
                f"{tuple(self.hparams.input_shape)}: use model=mlp or model=scratch"
            )
        in_channels, height, width = self.hparams.input_shape
        widths = [in_channels, *channels]
        blocks = [conv_block(n_in, n_out) for n_in, n_out in itertools.pairwise(widths)]
        shrink = 2 ** len(channels)
        features = widths[-1] * math.prod((height // shrink, width // shrink))
        if hidden_size is None:  # the speedrun's head: features straight to the classes
            head = [nn.Dropout(dropout)] if dropout else []
        else:  # layer for layer as before, so that earlier checkpoints keep their weights' names
            head = [nn.Dropout(dropout), nn.Linear(features, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            features = hidden_size
        self.net = nn.Sequential(*blocks, nn.Flatten(), *head, nn.Linear(features, self.num_outputs))
