"""Callbacks that keep a run correct: exact reseeding, a stop on divergence, the run's config in checkpoints,
one line when a DDP process dies, every process stopping together on SIGTERM, an average of the weights that
the test after training scores.

What a user looks at (figures, HPARAMS, graph, LR chart) is in ``mnistlab.dashboards``.
"""

from mnistlab.callbacks.dead_process import EndOnDeadProcess
from mnistlab.callbacks.divergence import StopOnDivergence, TrainingDiverged
from mnistlab.callbacks.ema import ExponentialMovingAverage
from mnistlab.callbacks.run_config import RunConfigInCheckpoint
from mnistlab.callbacks.seeding import SeedEachEpoch
from mnistlab.callbacks.sigterm import StopTogetherOnSigterm

__all__ = [
    "EndOnDeadProcess",
    "ExponentialMovingAverage",
    "RunConfigInCheckpoint",
    "SeedEachEpoch",
    "StopOnDivergence",
    "StopTogetherOnSigterm",
    "TrainingDiverged",
]
