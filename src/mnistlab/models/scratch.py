"""The raw-tensor tutorial's net: ``x @ W + b`` and ``clamp(0)``, weights as plain tensors (trained with its
hand-written gradient descent, optimizer=gd)."""

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from mnistlab.core.checks import Positive, checked


def he_weight(n_in: int, n_out: int) -> Tensor:
    return torch.randn(n_in, n_out) * math.sqrt(2 / n_in)


def uniform_weight(n_in: int, n_out: int) -> Tensor:
    return torch.rand(n_in, n_out) * 2 - 1  # the regression tutorial's U[-1, 1)


INITS = {"he": he_weight, "uniform": uniform_weight}


class ScratchMLP(nn.Module):
    @checked
    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_outputs: int,
        init: Literal[tuple(INITS)],
        hidden_sizes: list[Positive],
    ) -> None:
        super().__init__()
        widths = [math.prod(input_shape), *hidden_sizes, num_outputs]
        # Raw tensors with requires_grad, as in the tutorial; wrapping them as Parameters only registers
        # them, so that checkpoints and .to(device) see them. Biases start at zero.
        self.weights = nn.ParameterList(
            INITS[init](n_in, n_out) for n_in, n_out in itertools.pairwise(widths)
        )
        self.biases = nn.ParameterList(torch.zeros(n_out) for n_out in widths[1:])

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = h.clamp(0)
        return h
