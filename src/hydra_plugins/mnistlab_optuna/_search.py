"""The search loop of the resumable Optuna sweeper: ask trials of the stored study, launch their jobs, and
read how each ended from the storage, where the job itself told it (mnistlab/sweeps/trial.py).

Nothing comes back from a job's process but what it wrote to the database, so the basic launcher, joblib's
workers and SLURM jobs are one case, and a job that dies is seen by its heartbeat. Hydra's own sweeper (1.3)
tells each trial from its job's return value, in one process, and would leave a killed job's trial RUNNING.
"""

import functools
import logging
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.mnistlab_optuna._study import (
    DRAWN,
    FAILED_BECAUSE,
    OWN_ATTRS,
    counted,
    database_error,
    engine_kwargs,
    open_database,
    resume,
    shown,
    storage_url,
)
from mnistlab.core.errors import MnistlabError, describe, is_ctrl_c
from mnistlab.core.results import RunResult
from mnistlab.core.trials import JOB_ATTR, JOB_SETTINGS, TRIAL_KEY
from mnistlab.sweeps.figure import write_history
from mnistlab.sweeps.summary import retrain_command

log = logging.getLogger(__name__)
# Heartbeats and fail_stale_trials are "experimental" in Optuna 2.10: the warning would greet every search.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

RESULTS_FILE = "optimization_results.yaml"
POLL_S = 1.0  # how often the sweeper looks again at trials whose jobs it cannot see end


def quoted(value: str) -> str:
    """A value as a quoted Hydra override value: URLs and paths keep their ``:``, ``/`` and ``=``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def consecutive(numbers: list[int]) -> list[list[int]]:
    """Runs of consecutive trial numbers: a launcher numbers a batch's jobs from its first one, and each job's
    dir is its trial's number, so that no two trials ever share one."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return runs


def trial_overrides(trial: FrozenTrial) -> list[str]:
    """What the trial's job was launched with: its parameters, and the overrides fixed for the search then,
    which Hydra's sweeper keeps as the trial's user attributes."""
    fixed = {key: value for key, value in trial.user_attrs.items() if key not in OWN_ATTRS}
    return [f"{key}={value}" for key, value in {**trial.params, **fixed}.items()]


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Ctrl-C stops the search once the block has run (drawing a batch's parameters: milliseconds), not in
    it: a trial stopped halfway through its draw could not be run again as it was (see _study.resume)."""
    # Only the main thread takes signals, and only a handler set from Python can be set back.
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: pressed.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        signal.raise_signal(signal.SIGINT)  # to the handler there was: a KeyboardInterrupt, as it would have


class StudySearch(OptunaSweeperImpl):
    """Hydra's Optuna sweeper (its search space, sampler and launcher) with this module's loop."""

    def __init__(
        self, *, pruner: Any, heartbeat_interval: int, grace_period: int | None, **settings: Any
    ) -> None:
        super().__init__(**settings)
        self.pruner_settings = pruner
        if not isinstance(heartbeat_interval, int) or heartbeat_interval < 1:
            raise MnistlabError(
                f"hydra.sweeper.heartbeat_interval={heartbeat_interval} is not allowed: it must be a whole "
                "number of seconds, at least 1"
            )
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period or 2 * heartbeat_interval

    def sweep(self, arguments: list[str]) -> None:
        self.url = storage_url(self.storage)
        try:
            self.search(arguments)
        except sqlalchemy.exc.DBAPIError as error:  # the server went away or refuses us now
            raise database_error(self.url, error) from None

    def search(self, arguments: list[str]) -> None:
        space, self.fixed = self.space_and_fixed(arguments)
        self.pruner = self.make_pruner()
        open_database(self.url)
        self.store = optuna.storages.RDBStorage(
            self.url,
            engine_kwargs=engine_kwargs(self.url),
            heartbeat_interval=self.heartbeat_interval,
            grace_period=self.grace_period,
        )
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.store,
            pruner=self.pruner,
            direction=self.direction_name(),
            load_if_exists=True,
        )
        self.study_name = study.study_name
        self.study_id = self.store.get_study_id_from_name(self.study_name)
        # What each job needs besides its trial, kept in the study: the jobs read it from the storage.
        pruner = OmegaConf.to_container(self.pruner_settings, resolve=True)
        study.set_user_attr(JOB_SETTINGS, {"pruner": pruner, "heartbeat_interval": self.heartbeat_interval})
        self.sampler = self.make_sampler(space, drawn_before=len(study.get_trials(deepcopy=False)))
        resume(study, self.store)
        log.info(f"Study {self.study_name} in {shown(self.url)}, pruner {type(self.pruner).__name__}")

        study = self.fresh_study()
        while (left := self.n_trials - len(counted(study.get_trials(deepcopy=False)))) > 0:
            with ctrl_c_deferred():
                trials = [study.ask() for _ in range(min(self.n_jobs, left))]
                configured = self._configure_trials(trials, space, self.fixed)
                for trial in trials:
                    self.store.set_trial_system_attr(trial._trial_id, DRAWN, True)
            overrides = {t.number: o for t, o in zip(trials, configured, strict=True)}
            for run in consecutive(list(overrides)):
                self.launch(run, [overrides[number] for number in run])
            self.check_failure_rate(list(overrides))
            study = self.fresh_study()
        self.answer(study.get_trials(deepcopy=False))

    def fresh_study(self) -> optuna.Study:
        """The study as the storage has it now. A new object each time: Optuna's cache would show a trial this
        process asked for as RUNNING forever, since its job, not this process, tells how it ended."""
        return optuna.load_study(
            study_name=self.study_name, storage=self.store, sampler=self.sampler, pruner=self.pruner
        )

    def direction_name(self) -> str:
        directions = self._get_directions()
        if len(directions) != 1:
            raise MnistlabError(
                f"hydra.sweeper.direction={directions}: a search here has one objective, the best val/loss"
            )
        return directions[0]

    def space_and_fixed(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The distributions searched and the overrides fixed for every trial, as Hydra's sweeper has them."""
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides([*self._parse_sweeper_params_config(), *arguments])
        space = {**(self.search_space_distributions or {}), **space}
        return {name: d for name, d in space.items() if name not in fixed}, fixed

    def make_pruner(self) -> optuna.pruners.BasePruner:
        """The study's pruner, from ``hydra/sweeper/pruner=<option>`` (conf/hydra/sweeper/pruner/)."""
        options = self.hydra_context.config_loader.get_group_options("hydra/sweeper/pruner")
        settings = self.pruner_settings
        if not OmegaConf.is_dict(settings) or "_target_" not in settings:
            raise MnistlabError(
                f"hydra.sweeper.pruner={settings} is not a pruner: choose one with hydra/sweeper/pruner=<one "
                f"of {', '.join(options)}>, its settings with hydra.sweeper.pruner.<setting>=..."
            )
        try:
            return instantiate(settings)
        except Exception as error:
            raise MnistlabError(f"hydra.sweeper.pruner is not allowed: {describe(error)}") from None

    def make_sampler(self, space: dict[str, Any], drawn_before: int) -> optuna.samplers.BaseSampler:
        """The sampler of ``hydra/sweeper/sampler``. Seeded, a new study draws the seed's sequence (a search
        is repeatable); a resumed one draws from the seed plus the trials the study holds: the seed's own
        sequence would give its first trials' parameters again, tried already."""
        settings = self.sampler
        if drawn_before and settings.get("seed") is not None:
            sampler = instantiate(settings, seed=settings.seed + drawn_before)
        else:
            sampler = instantiate(settings)
        if isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in space.items()}
            self.n_trials = min(self.n_trials, math.prod(len(choices) for choices in grid.values()))
            sampler = sampler(grid)
        return sampler

    def job_overrides(self, number: int) -> list[str]:
        """How a job finds its trial: through the storage, whatever process or machine it runs on."""
        where = {"trial_number": number, "study_name": quoted(self.study_name), "storage": quoted(self.url)}
        return [f"+{TRIAL_KEY}.{key}={value}" for key, value in where.items()]

    def launch(self, numbers: list[int], overrides: list[Sequence[str]]) -> None:
        taken = [number for number in numbers if (Path(self.sweep_dir) / str(number)).exists()]
        if taken:
            for number in numbers:
                self.fail(number, "its job dir was taken")
            raise MnistlabError(
                f"trial {taken[0]}'s job dir {Path(self.sweep_dir) / str(taken[0])} exists already, from "
                "another study or sweep: give this study its own hydra.sweep.dir"
            )
        jobs = [[*trial, *self.job_overrides(n)] for n, trial in zip(numbers, overrides, strict=True)]
        try:
            self.launcher.launch(jobs, initial_job_idx=numbers[0])
        except Exception as error:  # a joblib worker died (it takes its batch with it), a SLURM job failed
            if is_ctrl_c(error):  # Hydra's composing a job's config, stopped by Ctrl-C, says it failed
                raise KeyboardInterrupt from error
            log.warning(
                f"trials {numbers}: not every job came back ({describe(error)}); each trial ends when its "
                f"job tells the study, or {self.grace_period} s after its last heartbeat"
            )
            self.settle(numbers, returned=False)
        else:
            self.settle(numbers, returned=True)

    def settle(self, numbers: list[int], returned: bool) -> None:
        """Waits until each trial has ended. A trial still running once its job has returned never told the
        study (its job failed before it could); one whose heartbeat stopped had its job killed; one with no
        job at all a grace period after the launch its job never started."""
        ended = time.monotonic()
        while True:
            for trial_id in self.store.fail_stale_trials(self.study_id):
                log.warning(
                    f"trial {self.store.get_trial_number_from_id(trial_id)}: no heartbeat from its job for "
                    f"{self.grace_period} s (killed, or its machine is gone): FAIL"
                )
            running = [trial for trial in self.running() if trial.number in numbers]
            if returned:
                for trial in running:
                    self.fail(trial.number, "its job ended without telling the study how: see its train.log")
                return
            overdue = time.monotonic() - ended > self.grace_period
            started = [trial for trial in running if JOB_ATTR in trial.user_attrs]  # with a heartbeat
            for trial in running:
                if trial not in started and overdue:
                    self.fail(trial.number, "its job never started")
            if not started and (overdue or not running):
                return
            time.sleep(POLL_S)

    def running(self) -> list[FrozenTrial]:
        return self.store.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.RUNNING,))

    def fail(self, number: int, reason: str) -> None:
        log.warning(f"trial {number}: {reason}: FAIL")
        trial_id = self.trial_id(number)
        try:
            self.store.set_trial_user_attr(trial_id, FAILED_BECAUSE, reason)
            self.store.set_trial_state(trial_id, TrialState.FAIL)
        except RuntimeError:  # it ended meanwhile
            pass

    def check_failure_rate(self, numbers: list[int]) -> None:
        trials = [self.store.get_trial(self.trial_id(number)) for number in numbers]
        failed = sum(trial.state == TrialState.FAIL for trial in trials)
        if failed / len(trials) > self.max_failure_rate:
            raise MnistlabError(
                f"{failed} of the {len(trials)} trials of a batch failed, more than "
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate}: see their job dirs' train.log"
            )

    def trial_id(self, number: int) -> int:
        return self.store.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def answer(self, trials: list[FrozenTrial]) -> None:
        """The best trial, how many trials ended how, and the command that trains the best one again from
        scratch, in optimization_results.yaml and the log; the history figure beside summary.png."""
        sweep_dir = Path(self.sweep_dir)
        ended = counted(trials)
        counts = {
            state.name.lower(): sum(t.state == state for t in ended)
            for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        results: dict[str, Any] = {
            "name": "optuna",
            "study_name": self.study_name,
            "storage": shown(self.url),
            "trials": counts,
        }
        complete = [t for t in ended if t.state == TrialState.COMPLETE]
        if complete:
            best = (min if self.direction_name() == "minimize" else max)(complete, key=lambda t: t.value)
            results |= {
                "best_trial": best.number,
                "best_params": best.params,
                "best_value": best.value,
                "retrain": retrain_command(trial_overrides(best)),
            }
            tested = RunResult.read(sweep_dir / str(best.number))
            if tested is not None and tested.test_loss is not None:
                results["best_test"] = {"test_loss": tested.test_loss, "test_acc": tested.test_acc}
            log.info(f"Best trial {best.number}: val/loss {best.value:.4g}, parameters {best.params}")
            log.info(f"Train it again from scratch: {results['retrain']}")
        log.info(
            f"{len(ended)} trials: {counts['complete']} complete, {counts['pruned']} pruned, "
            f"{counts['fail']} failed; {sweep_dir / RESULTS_FILE}"
        )
        OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
        write_history(
            [{"number": t.number, "state": t.state.name.lower(), "value": t.value} for t in ended], sweep_dir
        )
