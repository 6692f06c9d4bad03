"""Batches cut from tensors held in memory: one index tensor per batch, no per-sample Python."""

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, SequentialSampler


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
    so a resumed run sees exactly the batches the uninterrupted run would have seen. The indices live on
    ``device``, the data's: indexing a GPU tensor with CPU indices copies them over and waits for the GPU
    at every step; one copy of the epoch's order waits once.
    """

    def __init__(
        self, size: int, batch_size: int, shuffle: bool, seed: int, device: torch.device | str = "cpu"
    ) -> None:
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        # A generator: the order is drawn at the first batch, not at iter(), because a resuming Lightning
        # makes the first epoch's iterator before it calls set_epoch.
        if not self.shuffle:
            yield from torch.arange(self.size, device=self.device).split(self.batch_size)
            return
        # SeedSequence mixes (seed, epoch) so that no two pairs share a stream (seed + epoch would).
        state = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        # Drawn on the CPU whatever the device, so that a seed gives the same order on any machine.
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(state))
        yield from order.to(self.device).split(self.batch_size)


class SequentialIndexBatches(IndexBatches, SequentialSampler):
    """IndexBatches in order. Lightning's ``overfit_batches`` swaps every sampler that is not a
    SequentialSampler for a one-sample-at-a-time one, which would break these whole-batch loaders."""

    def __init__(self, size: int, batch_size: int, device: torch.device | str = "cpu") -> None:
        super().__init__(size, batch_size, shuffle=False, seed=0, device=device)
