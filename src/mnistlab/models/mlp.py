"""Fully connected nets: every MLP of the tutorials (seeds 000, 001, 002, 004) is a config of this class."""

import math
from collections.abc import Sequence

from torch import nn

from mnistlab.errors import MnistlabError
from mnistlab.models.base import ImageClassifier

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(ImageClassifier):
    def __init__(
        self,
        hidden_sizes: Sequence[int] = (256, 128),
        activations: str | Sequence[str] = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init_std: float | None = None,
        **base,
    ) -> None:
        super().__init__(**base)
        if isinstance(activations, str):
            activations = [activations] * len(hidden_sizes)
        if len(activations) != len(hidden_sizes):
            raise MnistlabError(
                f"model.activations has {len(activations)} entries for {len(hidden_sizes)} hidden layers: "
                "give one name, or one per hidden layer"
            )
        if unknown := sorted(set(activations) - ACTIVATIONS.keys()):
            raise MnistlabError(f"model.activations: unknown {unknown}; choose from {', '.join(ACTIVATIONS)}")
        if not 0 <= dropout < 1:
            raise MnistlabError(f"model.dropout={dropout} must lie in [0, 1)")

        widths = [math.prod(self.hparams.input_shape), *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out, activation in zip(widths, widths[1:], activations, strict=False):
            layers.append(nn.Linear(n_in, n_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], self.num_outputs))
        self.net = nn.Sequential(*layers)
        if init_std is not None:  # seed 002's init: weights N(0, init_std), biases 0
            for layer in self.net.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=init_std)
                    nn.init.zeros_(layer.bias)
