"""Batches as index tensors: under DDP each process serves its own share of the one order every rank draws."""

import pytest
import torch

from mnistlab.data.batches import IndexBatches, SequentialIndexBatches


@pytest.mark.parametrize("size", [11, 12, 13])
def test_training_shares_are_equal_disjoint_but_for_padding_and_cover_the_one_order(size):
    whole = torch.cat(list(IndexBatches(size, 2, shuffle=True, seed=3)))
    shares = [torch.cat(list(IndexBatches(size, 2, True, 3, rank=r, world_size=3))) for r in range(3)]
    assert len({len(share) for share in shares}) == 1  # every rank steps the same number of times
    assert len({len(IndexBatches(size, 2, True, 3, rank=r, world_size=3)) for r in range(3)}) == 1
    served = torch.cat(shares)
    assert set(served.tolist()) == set(range(size))
    assert len(served) - size == (-size) % 3  # padded with at most world_size - 1 repeats
    # Rank r takes every third index of the order all ranks draw, padded from its start.
    padded = torch.cat([whole, whole[: (-size) % 3]])
    for rank, share in enumerate(shares):
        assert torch.equal(share, padded[rank::3])


def test_evaluation_shares_are_contiguous_blocks_that_count_each_example_once():
    shares = [list(SequentialIndexBatches(10, 3, rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat([torch.cat(share) for share in shares]), torch.arange(10))
    assert [len(SequentialIndexBatches(10, 3, rank=r, world_size=3)) for r in range(3)] == [2, 1, 1]
