"""Hydra's Optuna sweeper with a search loop of its own (_search.py), for studies kept in a database (SQLite
in the sweep dir by default, or PostgreSQL shared by many workers):

- each trial's job reaches its trial through the storage, so it can report val/loss and be pruned
  (``hydra/sweeper/pruner=median``), whether it runs in this process, a joblib worker or a SLURM job;
- a job that dies leaves its trial FAIL (its heartbeat stops), never RUNNING forever;
- rerun in the same sweep dir, a study continues where it stopped, and the search ends at ``n_trials``
  finished trials in all, not ``n_trials`` more; job dirs are trial numbers, so no two trials share one.

A Hydra plugin must live in the ``hydra_plugins`` package: Hydra instantiates no sweeper from elsewhere. Hydra
imports this module at every start to find its plugins, so Optuna itself is imported only in ``setup``.
"""

import logging
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ResumableOptunaSweeper(Sweeper):
    """conf/hydra/sweeper/resumable_optuna.yaml: Hydra's Optuna settings, and the pruner and heartbeat."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        search_space: DictConfig | None,
        custom_search_space: str | None,
        params: DictConfig | None,
        pruner: Any,
        heartbeat_interval: int,
        grace_period: int | None,
    ) -> None:
        self.settings = {name: value for name, value in locals().items() if name not in ("self", "__class__")}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its "setup plugin ..." lines as it loads
        from hydra_plugins.mnistlab_optuna._search import StudySearch

        self.search = StudySearch(**self.settings)
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.search.sweep(arguments)
