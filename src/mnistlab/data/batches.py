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

    Under DDP each of ``world_size`` processes serves its own share (``shard``) of the one order every rank
    draws; ``batch_size`` is per process. Training shares are equal, as DDP's gradient averaging needs the
    same number of steps on every rank: the order is padded with its own first indices up to a multiple of
    ``world_size`` (as ``DistributedSampler`` pads), so every example is seen in each epoch and at most
    ``world_size - 1`` of them twice. Rank r takes positions r, r + world_size, ...
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = torch.device(device)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard_size(self) -> int:
        return -(-self.size // self.world_size)

    def __len__(self) -> int:
        return -(-self.shard_size() // self.batch_size)

    def order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        # SeedSequence mixes (seed, epoch) so that no two pairs share a stream (seed + epoch would).
        state = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        # Drawn on the CPU whatever the device, so that a seed gives the same order on any machine.
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(state))

    def shard(self, order: Tensor) -> Tensor:
        if self.world_size == 1:
            return order
        padding = self.shard_size() * self.world_size - self.size
        return torch.cat([order, order[:padding]])[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[Tensor]:
        # A generator: the order is drawn at the first batch, not at iter(), because a resuming Lightning
        # makes the first epoch's iterator before it calls set_epoch.
        yield from self.shard(self.order()).to(self.device).split(self.batch_size)


class SequentialIndexBatches(IndexBatches, SequentialSampler):
    """IndexBatches in order. Lightning's ``overfit_batches`` swaps every sampler that is not a
    SequentialSampler for a one-sample-at-a-time one, which would break these whole-batch loaders.

    Under DDP, for evaluation (``equal_shares=False``), each rank takes one contiguous block without padding:
    evaluation needs no equal step counts, and each example must count once in the metrics reduced over all
    ranks. Rank zero's block starts the set, so figures of "the first test images" show the same images with
    any number of processes. Training in order (``overfit_batches``) shares as IndexBatches does.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        equal_shares: bool = False,
    ) -> None:
        super().__init__(size, batch_size, False, 0, device, rank, world_size)
        self.equal_shares = equal_shares

    def shard_size(self) -> int:
        return super().shard_size() if self.equal_shares else len(self.shard(self.order()))

    def shard(self, order: Tensor) -> Tensor:
        return super().shard(order) if self.equal_shares else order.tensor_split(self.world_size)[self.rank]
