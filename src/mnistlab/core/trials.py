"""What a sweep job that is an Optuna trial is given, and what the sweeper and its jobs keep in the study for
each other: read by the sweeper, the sweep's summary and the job, so torch-free, and Optuna is imported only
when a job opens its trial."""

from typing import Any

TRIAL_KEY = "optuna"  # cfg.optuna: {trial_number, study_name, storage} in a trial's job, absent otherwise
# The study's user attribute the sweeper writes and its jobs read: what a job needs that is not its trial's.
JOB_SETTINGS = "job_settings"  # {"pruner": {_target_: optuna.pruners...., ...}, "heartbeat_interval": s}
JOB_ATTR = "job"  # a trial's user attribute naming its job, {host, pid, dir}: set as its heartbeat starts


def stored_trial(storage: str, study_name: str, trial_number: int) -> tuple[Any, int, dict[str, Any]]:
    """Trial ``trial_number`` of the stored study, as a job reaches it: the storage, the trial's id there and
    the JOB_SETTINGS the sweeper left in the study."""
    import optuna

    store = optuna.storages.RDBStorage(storage)
    study_id = store.get_study_id_from_name(study_name)
    trial_id = store.get_trial_id_from_study_id_trial_number(study_id, trial_number)
    return store, trial_id, store.get_study_user_attrs(study_id).get(JOB_SETTINGS, {})
