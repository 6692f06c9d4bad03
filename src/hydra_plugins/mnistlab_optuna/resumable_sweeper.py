"""Hydra's Optuna sweeper, resumable: rerun in the same sweep dir, a study kept in a database continues where
it stopped, and the search ends at ``n_trials`` trials in all, not ``n_trials`` more.

A Hydra plugin must live in the ``hydra_plugins`` package: Hydra instantiates no sweeper from elsewhere. Hydra
imports this module at every start to find its plugins, so Optuna itself is imported only in ``sweep``.
"""

from pathlib import Path
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

SQLITE = "sqlite:///"


class ResumableOptunaSweeper(OptunaSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        from hydra_plugins.mnistlab_optuna._study import record_schema_version, resume

        impl = self.sweeper
        if impl.storage:
            if str(impl.storage).startswith(SQLITE):  # SQLite makes the file, not its folder
                Path(str(impl.storage).removeprefix(SQLITE)).parent.mkdir(parents=True, exist_ok=True)
            record_schema_version(str(impl.storage))
            done, first_number = resume(impl.study_name, impl.storage)
            impl.n_trials = max(impl.n_trials - done, 0)
            impl.job_idx = first_number  # job dirs are trial numbers: a resumed trial never meets an old dir
        return super().sweep(arguments)
