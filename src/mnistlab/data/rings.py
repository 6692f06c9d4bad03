"""Seed 003's toy problem: 2-D points in [-1, 1]^2, three classes by radius. Generated, no files."""

import torch
from torch import Tensor

from mnistlab.core.checks import Positive, Seed, checked
from mnistlab.data.base import SplitDataModule


def make_rings(size: int, seed: int) -> tuple[Tensor, Tensor]:
    points = torch.rand(size, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    radius2 = points.pow(2).sum(dim=1)
    labels = torch.full((size,), 2)  # between the rings
    labels[radius2 >= 1] = 0
    labels[radius2 < 0.25] = 1
    return points, labels


class RingsDataModule(SplitDataModule):
    class_names = ("outer", "inner", "middle")
    input_shape = (2,)

    @checked
    def __init__(self, *, train_size: Positive, test_size: Positive, data_seed: Seed, **split_and_batching):
        super().__init__(**split_and_batching)
        self.train_size = train_size
        self.test_size = test_size
        self.data_seed = data_seed

    def load_official_split(self, train: bool) -> tuple[Tensor, Tensor]:
        # Distinct seeds for the two sets, so that test points are fresh samples.
        if train:
            return make_rings(self.train_size, self.data_seed)
        return make_rings(self.test_size, self.data_seed + 1)
