"""Seed 003's regression: y = f(x) for x drawn from U[-1, 1), as (N, 1) float tensors. Generated, no files.

Unlike the image sets, there is no official training set to cut validation from: like the tutorial, the
training, validation and test sets are each drawn on their own, of their own sizes.
"""

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from mnistlab.core.checks import Positive, Seed, checked
from mnistlab.data.base import InMemoryDataModule
from mnistlab.data.batches import TensorPairs

# Named targets rather than expressions to evaluate: a config can only pick one of these.
FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "square": torch.square,  # the tutorial's x²
    "cubic": lambda x: x**3,
    "sine": lambda x: torch.sin(math.pi * x),
}
# Each set draws from its own stream of (data_seed, set).
STREAMS = {"train": 0, "val": 1, "test": 2}


def draw_function(function: str, size: int, seed: int, stream: int) -> tuple[Tensor, Tensor]:
    """``size`` inputs from U[-1, 1) and their targets, both (size, 1) float32."""
    # SeedSequence mixes (seed, stream) so that no two pairs share a stream (seed + stream would).
    state = int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])
    x = torch.rand(size, 1, generator=torch.Generator().manual_seed(state)) * 2 - 1
    return x, FUNCTIONS[function](x)


class FunctionDataModule(InMemoryDataModule):
    task = "regression"
    class_names = ()
    input_shape = (1,)

    @checked
    def __init__(
        self,
        *,
        function: Literal[tuple(FUNCTIONS)],
        train_size: Positive,
        val_size: Positive,
        test_size: Positive,
        data_seed: Seed,
        **batching,
    ) -> None:
        super().__init__(**batching)
        self.function = function
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.data_seed = data_seed

    @property
    def num_outputs(self) -> int:
        return 1  # one predicted value per input

    def draw(self, name: str) -> tuple[Tensor, Tensor]:
        return draw_function(self.function, self.sizes[name], self.data_seed, STREAMS[name])

    def load_train_and_val(self) -> tuple[TensorPairs, TensorPairs]:
        return TensorPairs(*self.draw("train")), TensorPairs(*self.draw("val"))

    def load_test(self) -> TensorPairs:
        return TensorPairs(*self.draw("test"))
