"""Seed 003's network from raw tensors: ``x @ W + b``, ``clamp(0)``, gradient descent written by hand."""

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mnistlab.models.base import ImageClassifier


class ScratchMLP(ImageClassifier):
    def __init__(self, hidden_sizes: Sequence[int] = (100, 100), **base) -> None:
        super().__init__(**base)
        self.automatic_optimization = False
        widths = [math.prod(self.hparams.input_shape), *hidden_sizes, self.hparams.num_classes]
        # Raw tensors with requires_grad, as in the tutorial; wrapping them as Parameters only registers
        # them, so that checkpoints and .to(device) see them.
        self.weights = nn.ParameterList(
            torch.randn(n_in, n_out) * math.sqrt(2 / n_in) for n_in, n_out in itertools.pairwise(widths)
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
