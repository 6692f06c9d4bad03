"""A run that is an Optuna trial (a job of ``hparams_search=mnist_optuna``) reports its val/loss to the trial
after every validation and stops when the study's pruner says so.

The job reaches its trial through the study's storage, never through the sweeper's memory: the sweeper
passes the trial's number, study and storage URL as ``+optuna.*`` overrides, and keeps the pruner's settings
in the study itself. So a trial runs the same in the sweeper's own process, a joblib worker or a SLURM job.
Optuna is imported when a trial's run starts, not by every run.
"""

import logging
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn

from mnistlab.core.trials import TRIAL_KEY, stored_trial

log = logging.getLogger(__name__)

NO_PRUNER = {"_target_": "optuna.pruners.NopPruner"}
MONITOR = "val/loss"  # what each trial reports, and what the sweeper minimises (its best value)


def open_trial(storage: str, study_name: str, trial_number: int) -> Any:
    """Trial ``trial_number`` of the stored study, as an ``optuna.trial.Trial`` with the study's pruner."""
    import optuna
    from hydra.utils import instantiate

    store, trial_id, settings = stored_trial(storage, study_name, trial_number)
    pruner = instantiate(settings.get("pruner") or NO_PRUNER)
    # A sampler that costs nothing: the sweeper has sampled this trial's parameters already.
    study = optuna.load_study(
        study_name=study_name, storage=store, pruner=pruner, sampler=optuna.samplers.RandomSampler()
    )
    return optuna.trial.Trial(study, trial_id)


class ReportToTrial(Callback):
    """After each validation, rank zero reports val/loss at step = the epoch (from 0) and asks the study's
    pruner; every process stops at the end of that epoch if it says so (``pruned`` holds the epoch)."""

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        self.where = (storage, study_name, trial_number)
        self.trial: Any = None
        self.pruned: int | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self.trial is None:
            self.trial = open_trial(*self.where)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        prune = False
        if self.trial is not None and MONITOR in trainer.callback_metrics:  # rank zero's
            value = float(trainer.callback_metrics[MONITOR])
            self.trial.report(value, step=trainer.current_epoch)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):  # one decision for every DDP process
            trainer.should_stop = True
            self.pruned = trainer.current_epoch
            if trainer.is_global_zero:
                log.info(
                    f"trial {self.where[2]} pruned after epoch {self.pruned}: val/loss {value:.4g} "
                    "(hydra.sweeper.pruner)"
                )


def pruned_epoch(trainer: Trainer) -> int | None:
    """The epoch after which the study's pruner stopped this run; None if it did not (or it is no trial)."""
    return next((c.pruned for c in trainer.callbacks if isinstance(c, ReportToTrial)), None)


def trial_callbacks(cfg: Any) -> list[Callback]:
    """[ReportToTrial] for a run that is an Optuna trial (``cfg.optuna``), none for any other run."""
    where = cfg.get(TRIAL_KEY)
    if where is None:
        return []
    return [ReportToTrial(str(where.storage), str(where.study_name), int(where.trial_number))]
