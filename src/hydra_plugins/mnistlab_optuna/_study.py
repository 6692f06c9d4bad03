"""The study behind a resumable Optuna sweep: its database made usable by Optuna 2.x, and what is done.

Apart from the plugin's module (underscored, so Hydra's plugin scan skips it): optuna, SQLAlchemy and alembic
load only when a sweep runs, not at every `train.py` start.
"""

import logging
from pathlib import Path

import optuna
import sqlalchemy
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from optuna.storages._rdb import models
from optuna.trial import TrialState

log = logging.getLogger(__name__)

RDB_SCHEMES = ("sqlite:", "postgresql", "mysql", "oracle", "mssql")  # Optuna's RDBStorage; not redis://
INTERRUPTED = "interrupted"  # user attribute of a trial that Ctrl-C or a crash of the sweep left running


def record_schema_version(url: str) -> None:
    """Optuna 2.x (all the sweeper takes) stamps a new database's schema version in a transaction that
    SQLAlchemy 2 never commits, then refuses the database it made: the tables and the stamp made here,
    committed, leave it nothing to stamp."""
    if not url.startswith(RDB_SCHEMES):
        return
    engine = sqlalchemy.create_engine(url)
    models.BaseModel.metadata.create_all(engine)
    script = ScriptDirectory(str(Path(models.__file__).parent / "alembic"))
    with engine.begin() as connection:
        context = MigrationContext.configure(connection)
        if context.get_current_revision() is None:
            context.stamp(script, script.get_current_head())
    engine.dispose()


def resume(study_name: str | None, storage: str) -> tuple[int, int]:
    """How many trials the stored study has finished, and the number its next trial gets.

    Trials left running by an interrupted sweep are marked failed and their parameters queued again, so the
    search goes on as if they had not started; they do not count towards ``n_trials``.
    """
    store = optuna.storages.get_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:  # no such study yet: a new search
        return 0, 0
    study_id = store.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = store.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        store.set_trial_user_attr(trial_id, INTERRUPTED, True)
        store.set_trial_state(trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished() and not t.user_attrs.get(INTERRUPTED)]
    waiting = [t.number for t in trials if t.state == TrialState.WAITING]
    first_number = min(waiting) if waiting else len(trials)
    log.info(f"Resuming study {study_name}: {len(finished)} trials finished, next is trial {first_number}")
    return len(finished), first_number
