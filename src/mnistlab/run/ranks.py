"""Which process of a DDP run this is, known before Lightning starts (torch-free: the resolvers use it)."""

import os

# What the launchers set in each process they start, before any of our code runs: torchrun (RANK), SLURM's
# tasks (SLURM_PROCID), Lightning's own DDP children (LOCAL_RANK and NODE_RANK).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


def is_rank_zero() -> bool:
    """Whether this is rank zero of a DDP run, or the only process: the one that writes the run's files."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)
