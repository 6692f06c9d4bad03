"""Batches cut from tensors held in memory: one index tensor per batch, no per-sample Python."""

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


class TensorPairs(Dataset):
    """Inputs and labels indexed together by a whole tensor of indices at once."""

    def __init__(self, inputs: Tensor, labels: Tensor) -> None:
        self.inputs = inputs
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.labels[index]


class IndexBatches:
    """Yields one index tensor per batch; shuffled order depends only on (seed, epoch).

    Lightning calls ``set_epoch`` on a dataloader's sampler before every epoch, also after a resume,
    so a resumed run sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int) -> None:
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        if not self.shuffle:
            return iter(torch.arange(self.size).split(self.batch_size))
        # SeedSequence mixes (seed, epoch) so that no two pairs share a stream (seed + epoch would).
        state = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(state))
        return iter(order.split(self.batch_size))
