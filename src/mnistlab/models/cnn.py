"""A small convolutional net: one conv block per entry of ``channels`` (each of ``convs_per_block``
convolutions, then a max-pool), then a fully connected head (or, with ``hidden_size=None``, a single linear
layer from the features to the outputs)."""

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mnistlab.core.checks import Fraction, Positive, checked
from mnistlab.core.errors import MnistlabError
from mnistlab.models.sequential import SequentialNet


def conv_block(n_in: int, n_out: int, convs: int = 1) -> nn.Sequential:
    """``convs`` 3x3 convolutions, each with BatchNorm and ReLU, then a 2x2 max-pool."""
    layers: list[nn.Module] = []
    for width_in in [n_in] + [n_out] * (convs - 1):
        # bias=False: BatchNorm's shift does the bias's job.
        layers += [
            nn.Conv2d(width_in, n_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class CNN(SequentialNet):
    @checked
    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: list[Positive],
        hidden_size: Positive | None,
        dropout: Fraction,
        convs_per_block: Positive,
        channels_last: bool,
    ) -> None:
        if len(input_shape) != 3:
            raise MnistlabError(
                f"model=cnn needs images (channels, height, width), and the data's inputs have shape "
                f"{tuple(input_shape)}: use model=mlp or model=scratch"
            )
        in_channels, height, width = input_shape
        widths = [in_channels, *channels]
        blocks = [conv_block(n_in, n_out, convs_per_block) for n_in, n_out in itertools.pairwise(widths)]
        shrink = 2 ** len(channels)
        features = widths[-1] * math.prod((height // shrink, width // shrink))
        if hidden_size is None:  # features straight to the outputs
            head = [nn.Dropout(dropout)] if dropout else []
        else:
            head = [nn.Dropout(dropout), nn.Linear(features, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            features = hidden_size
        super().__init__(*blocks, nn.Flatten(), *head, nn.Linear(features, num_outputs))
        # NHWC, weights and inputs alike: oneDNN's convolutions on a CPU run much faster so, bf16 most of all
        # (docs/benchmarks.md). Only the layout changes: the weights keep their names and values.
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)
