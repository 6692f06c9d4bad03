"""Fully connected nets: every MLP of the tutorials is a config of this class."""

import math
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from mnistlab.core.checks import Fraction, Positive, checked
from mnistlab.core.errors import MnistlabError
from mnistlab.models.sequential import SequentialNet

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}
Activation = Literal[tuple(ACTIVATIONS)]


class MLP(SequentialNet):
    """Flatten, then per hidden layer Linear, [BatchNorm], activation, [Dropout]; a Linear to the outputs."""

    @checked
    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden_sizes: list[Positive],
        activations: Activation | list[Activation],  # one name for all hidden layers, or one per layer
        dropout: Fraction,
        batch_norm: bool,
        init_std: Annotated[float, Field(gt=0)] | None,
    ) -> None:
        if isinstance(activations, str):
            activations = [activations] * len(hidden_sizes)
        if len(activations) != len(hidden_sizes):
            raise MnistlabError(
                f"model.activations has {len(activations)} entries for {len(hidden_sizes)} hidden layers: "
                "give one name, or one per hidden layer"
            )
        widths = [math.prod(input_shape), *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out, activation in zip(widths, widths[1:], activations, strict=False):
            layers.append(nn.Linear(n_in, n_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_outputs))
        super().__init__(*layers)
        if init_std is not None:  # the softmax tutorial's init: weights N(0, init_std), biases 0
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=init_std)
                    nn.init.zeros_(layer.bias)
