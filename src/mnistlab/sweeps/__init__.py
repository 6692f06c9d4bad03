"""Multirun sweeps: each job's result or error in its run dir, and a summary of all of them at the end."""

from mnistlab.sweeps.summary import HydraConfigAtSweepStart, SweepSummary

__all__ = ["HydraConfigAtSweepStart", "SweepSummary"]
