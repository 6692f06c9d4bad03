"""What a sweep job that is an Optuna trial is given, and what the sweeper and its jobs keep in the study for
each other: read by the sweeper, the sweep's summary and the job, so torch- and Optuna-free."""

TRIAL_KEY = "optuna"  # cfg.optuna: {trial_number, study_name, storage} in a trial's job, absent otherwise
# The study's user attribute the sweeper writes and its jobs read: what a job needs that is not its trial's.
JOB_SETTINGS = "job_settings"  # {"pruner": {_target_: optuna.pruners...., ...}, "heartbeat_interval": s}
JOB_ATTR = "job"  # a trial's user attribute naming its job, {host, pid, dir}: set as its heartbeat starts
