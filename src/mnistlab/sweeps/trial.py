"""A sweep job that is an Optuna trial (``hparams_search=mnist_optuna``): while the job runs, a heartbeat in
the study's storage says it is alive; when it ends, the job tells the study how (COMPLETE with its best
val/loss, PRUNED or FAIL). The sweeper reads that from the storage, so it needs nothing back from the job's
process, and a trial whose heartbeat stops (a killed job) is failed by the sweeper (resumable_sweeper.py).

Rank zero alone speaks for the trial. Torch-free; Optuna is imported only in a trial's job.
"""

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig

from mnistlab.core.ranks import is_rank_zero
from mnistlab.core.results import RunResult, Status
from mnistlab.core.trials import JOB_ATTR, TRIAL_KEY, stored_trial

log = logging.getLogger(__name__)


class JobTrial:
    """The trial a job is, in its study's storage."""

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        import optuna

        self.number = trial_number
        self.store, self.trial_id, settings = stored_trial(storage, study_name, trial_number)
        self.study = optuna.load_study(study_name=study_name, storage=self.store)
        self.interval = settings.get("heartbeat_interval")
        self.stopped = threading.Event()

    def start(self, job_dir: str) -> None:
        if self.interval:  # the first beat before the job is named: a named job has a heartbeat to watch
            self.store.record_heartbeat(self.trial_id)
        self.store.set_trial_user_attr(
            self.trial_id, JOB_ATTR, {"host": socket.gethostname(), "pid": os.getpid(), "dir": job_dir}
        )
        if self.interval:
            threading.Thread(target=self.beat, name=f"trial {self.number} heartbeat", daemon=True).start()

    def beat(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.store.record_heartbeat(self.trial_id)
            except Exception as error:  # a database that blinks: the next beat may reach it
                log.warning(f"trial {self.number}: heartbeat not recorded ({error})")

    def end(self, result: RunResult | None, value: float | None) -> None:
        """COMPLETE with ``value`` (the run's objective), PRUNED, or FAIL (no result, or none usable)."""
        from optuna.trial import TrialState

        self.stopped.set()
        try:
            if value is not None:
                self.study.tell(self.number, value)
            elif result is not None and result.status == Status.PRUNED:
                self.study.tell(self.number, state=TrialState.PRUNED)
            else:
                self.study.tell(self.number, state=TrialState.FAIL)
        except RuntimeError as error:  # the sweeper gave the trial up (it resumed after a crash)
            log.warning(f"trial {self.number} was not updated: {error}; its run's results are in its job dir")


@contextmanager
def trial_of_job(cfg: DictConfig) -> Iterator[JobTrial | None]:
    """The job's trial, its heartbeat running until the job ends; None for a job that is no trial and on
    every DDP process but rank zero. An interrupted job (Ctrl-C, SIGTERM) tells nothing: the sweeper will."""
    where: Any = cfg.get(TRIAL_KEY)
    if where is None or not is_rank_zero():
        yield None
        return
    trial = JobTrial(str(where.storage), str(where.study_name), int(where.trial_number))
    trial.start(str(cfg.paths.output_dir))
    try:
        yield trial
    finally:
        trial.stopped.set()
