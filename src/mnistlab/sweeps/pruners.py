"""Pruners of ``hydra/sweeper/pruner`` that Optuna 2.10 (all Hydra's Optuna sweeper takes) does not get right
when each trial runs in a process of its own, as a search's jobs do (conf/hydra/sweeper/pruner/)."""

import zlib

import optuna
from optuna.trial import FrozenTrial


class HyperbandPruner(optuna.pruners.HyperbandPruner):
    """Optuna's HyperbandPruner, each trial in the same bracket whatever process asks.

    Optuna 2.10 picks a trial's bracket by ``hash()`` of the study's name and the trial's number, which Python
    salts anew in every process (optuna issue #3083): each joblib worker, SLURM job or resumed sweeper would
    put the study's trials in brackets of its own, and judge a trial against a random set of others. Here it
    is crc32 of the same text, the same everywhere.
    """

    def _get_bracket_id(self, study: optuna.Study, trial: FrozenTrial) -> int:
        if not self._pruners:  # not started yet (no max_resource): one bracket, as Optuna's
            return 0
        n = zlib.crc32(f"{study.study_name}_{trial.number}".encode()) % self._total_trial_allocation_budget
        for bracket_id, budget in enumerate(self._trial_allocation_budgets):
            n -= budget
            if n < 0:
                return bracket_id
        raise AssertionError("the budgets add up to the total: a bracket is always found")
