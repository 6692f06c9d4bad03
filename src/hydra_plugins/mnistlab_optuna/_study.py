"""The study behind a resumable Optuna sweep: its database (SQLite or PostgreSQL) opened with one-line errors
and made usable by Optuna 2.x, and what an interrupted sweep left in it.

Apart from the plugin's module (underscored, so Hydra's plugin scan skips it): optuna, SQLAlchemy and alembic
load only when a sweep runs, not at every `train.py` start.
"""

import logging
import re
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

from mnistlab.core.errors import MnistlabError
from mnistlab.core.trials import JOB_ATTR

log = logging.getLogger(__name__)

RDB_SCHEMES = ("sqlite:", "postgresql", "mysql", "oracle", "mssql")  # Optuna's RDBStorage; not redis://
SQLITE = "sqlite:///"
POSTGRESQL = "postgresql://"
DRIVER = "postgresql+psycopg://"  # psycopg 3, a dependency; SQLAlchemy's default would be psycopg2
CONNECT_TIMEOUT_S = 10  # an unreachable server is one line after this long, not a hang
INTERRUPTED = "interrupted"  # user attribute of a trial that Ctrl-C or a crash of the sweep left running
FAILED_BECAUSE = "error"  # user attribute of a trial the sweeper failed: why
# System attribute of a trial whose parameters are all drawn (set before its job is launched); a trial left
# running without it was stopped while they were drawn. Optuna's own: a queued trial's parameters.
DRAWN, QUEUED = "mnistlab:drawn", "fixed_params"
# A trial's other user attributes are the overrides fixed for its search (Hydra's sweeper puts them there).
OWN_ATTRS = (INTERRUPTED, FAILED_BECAUSE, JOB_ATTR)


def storage_url(storage: Any) -> str:
    """``hydra.sweeper.storage`` as the URL every process opens: an SQL database, its driver named."""
    if storage is None:
        raise MnistlabError(
            "hydra.sweeper.storage=null: each trial's job reaches its study through the study's database: "
            "keep the default (sqlite:///<sweep dir>/optuna.db) or give one, e.g. postgresql://user@host/db"
        )
    url = str(storage)
    if not url.startswith(RDB_SCHEMES):
        raise MnistlabError(
            f"hydra.sweeper.storage={url} is not an SQL database URL: use sqlite:///<file> or "
            "postgresql://user:password@host:port/database"
        )
    if url.startswith(POSTGRESQL):
        url = DRIVER + url.removeprefix(POSTGRESQL)
    if url.startswith(SQLITE):  # SQLite makes the file, not its folder
        Path(url.removeprefix(SQLITE)).parent.mkdir(parents=True, exist_ok=True)
    return url


def shown(url: str) -> str:
    """The URL without its password, for messages and files."""
    return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)


def engine_kwargs(url: str) -> dict[str, Any]:
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}} if url.startswith("postgresql") else {}


def database_error(url: str, error: sqlalchemy.exc.DBAPIError) -> MnistlabError:
    """A database that cannot be reached or refuses us, as one line naming the fix."""
    text = str(error.orig or error).strip().splitlines()[0]
    reason = re.sub(r"^.*failed: (FATAL: +)?", "", text)  # libpq's "connection to server at ... failed: "
    where = f"the study's database {shown(url)}"
    if "password authentication failed" in reason or "no password supplied" in reason:
        return MnistlabError(
            f"{where} refused the login ({reason}): fix the user or password in hydra.sweeper.storage "
            "(or keep the password in ~/.pgpass)"
        )
    if "refused" in reason or "resolve host" in reason or "timeout" in reason:
        return MnistlabError(
            f"cannot reach {where} ({reason}): start the database server, or fix the host and port in "
            "hydra.sweeper.storage"
        )
    return MnistlabError(f"cannot use {where} ({reason}): fix hydra.sweeper.storage")


def open_database(url: str) -> None:
    """Connects once (a bad URL, server or password is one line here) and prepares a new database."""
    try:
        record_schema_version(url)
    except sqlalchemy.exc.DBAPIError as error:
        raise database_error(url, error) from None


def record_schema_version(url: str) -> None:
    """Optuna 2.x (all the sweeper takes) stamps a new database's schema version in a transaction that
    SQLAlchemy 2 never commits, then refuses the database it made: the tables and the stamp made here,
    committed, leave it nothing to stamp."""
    if not url.startswith(RDB_SCHEMES):
        return
    engine = sqlalchemy.create_engine(url, **engine_kwargs(url))
    models.BaseModel.metadata.create_all(engine)
    script = ScriptDirectory(str(Path(models.__file__).parent / "alembic"))
    with engine.begin() as connection:
        context = MigrationContext.configure(connection)
        if context.get_current_revision() is None:
            context.stamp(script, script.get_current_head())
    engine.dispose()


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count towards ``n_trials``: finished (complete, pruned or failed), not those that an
    interruption of the sweep stopped (their parameters are tried again)."""
    return [t for t in trials if t.state.is_finished() and not t.user_attrs.get(INTERRUPTED)]


def resume(study: optuna.Study, store: optuna.storages.RDBStorage) -> None:
    """Trials left running by an interrupted sweep are marked failed and their parameters queued again, so the
    search goes on as if they had not started; they do not count towards ``n_trials``.

    One sweeper per study at a time: a trial running now is one that the last sweeper left.
    """
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return
    study_id = store.get_study_id_from_name(study.study_name)
    for trial in trials:
        if trial.state == TrialState.RUNNING:
            trial_id = store.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            store.set_trial_user_attr(trial_id, INTERRUPTED, True)
            store.set_trial_state(trial_id, TrialState.FAIL)
            params = parameters_to_run_again(trial)
            if params is None:
                log.info(f"trial {trial.number} was stopped while its parameters were drawn: drawn afresh")
            else:
                study.enqueue_trial(params)
    trials = study.get_trials(deepcopy=False)
    waiting = [t.number for t in trials if t.state == TrialState.WAITING]
    first_number = min(waiting) if waiting else len(trials)
    done = len(counted(trials))
    log.info(f"Resuming study {study.study_name}: {done} trials finished, next is trial {first_number}")


def parameters_to_run_again(trial: FrozenTrial) -> dict[str, Any] | None:
    """What a trial left running was to run: its parameters once all were drawn (its job may have started),
    else those it was queued with (a stopped trial's, run again). None for a trial stopped (killed, or its
    database gone) while the sampler drew them: it had no job, and half a draw queued again would be a
    trial that neither the sampler nor anyone else chose."""
    if trial.system_attrs.get(DRAWN):
        return trial.params
    return trial.system_attrs.get(QUEUED)
