"""Seed 003's network from raw tensors: ``x @ W + b``, ``clamp(0)``, gradient descent written by hand."""

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mnistlab.errors import MnistlabError
from mnistlab.models.base import ImageClassifier


def he_weight(n_in: int, n_out: int) -> Tensor:
    return torch.randn(n_in, n_out) * math.sqrt(2 / n_in)


def uniform_weight(n_in: int, n_out: int) -> Tensor:
    return torch.rand(n_in, n_out) * 2 - 1  # the regression tutorial's U[-1, 1)


INITS = {"he": he_weight, "uniform": uniform_weight}


class ScratchMLP(ImageClassifier):
    def __init__(self, hidden_sizes: Sequence[int] = (100, 100), init: str = "he", **base) -> None:
        super().__init__(**base)
        if init not in INITS:
            raise MnistlabError(f"model.init={init!r} is unknown: choose one of {', '.join(INITS)}")
        self.automatic_optimization = False
        widths = [math.prod(self.hparams.input_shape), *hidden_sizes, self.num_outputs]
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
        return self.output_activation(h)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        optimizer = self.optimizers()
        loss = super().training_step(batch, batch_idx)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        if (scheduler := self.lr_schedulers()) is not None:
            scheduler.step()  # manual optimization: Lightning leaves the scheduler to us
        return loss
