"""One training run, top to bottom: config, parts, fit, test the best checkpoint, results."""

import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from mnistlab.callbacks import TrainingDiverged
from mnistlab.callbacks.optuna_trial import pruned_epoch
from mnistlab.core.checks import check_config
from mnistlab.core.results import RunResult, Status, print_test_results
from mnistlab.core.run_dir import check_run_dir_is_new, holding, requeued_by_slurm
from mnistlab.io.disk import check_room_for_checkpoints
from mnistlab.run.best import add_best, add_last_val_loss
from mnistlab.run.build import build_datamodule, build_model, build_trainer, load_data, training_callbacks
from mnistlab.run.interruptions import reporting_stops
from mnistlab.run.resume import check_resumable, resolve_ckpt_path
from mnistlab.sweeps.jobs import is_multirun, run_sweep_job


def main(cfg: DictConfig) -> float | None:
    """train.py: one run, or one job of a sweep (a failing job is recorded in its run dir and scores None:
    the sweep goes on)."""
    if is_multirun():
        return run_sweep_job(train, cfg)
    return train(cfg).best_val_loss


def train(cfg: DictConfig) -> RunResult:
    output_dir = Path(cfg.paths.output_dir)
    with holding(output_dir):  # one writer per run dir
        return train_in(output_dir, cfg)


def train_in(output_dir: Path, cfg: DictConfig) -> RunResult:
    started = time.perf_counter()
    check_config(cfg)
    ckpt_path = checkpoint_to_resume(cfg, output_dir)
    L.seed_everything(cfg.seed, workers=True)

    # Every part checks its settings as it is built: a bad one stops the run before any data is read.
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg, training_callbacks(cfg))
    load_data(datamodule)  # before anything is written
    if cfg.trainer.enable_checkpointing:
        check_room_for_checkpoints(output_dir, model)

    result = RunResult(status=Status.FINISHED, seed=cfg.seed)
    with reporting_stops(trainer, output_dir, cfg.seed, started):
        fit_started = time.perf_counter()
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except TrainingDiverged as error:  # raised before the diverged weights reached any checkpoint
            result.status, diverged = Status.DIVERGED, error
        # A compiled net's compiling, in the fit's first hook, is told apart (model.compile).
        result.compile_seconds = model.compile_seconds
        result.fit_seconds = round(time.perf_counter() - fit_started - (model.compile_seconds or 0), 2)
        add_best(result, trainer)
        add_last_val_loss(result, trainer)
        if pruned_epoch(trainer) is not None:
            result.status = Status.PRUNED  # not tested: a pruned trial is no answer, its test only costs time
        # Without a val/loss checkpoint (callbacks=none) the final weights are tested, unless they diverged.
        if result.status != Status.PRUNED and (result.best_checkpoint or result.status == Status.FINISHED):
            trainer.test(
                model,
                datamodule=datamodule,
                ckpt_path=result.best_checkpoint,
                verbose=False,
                weights_only=True,
            )
            result.add(model.task.test_results(trainer.callback_metrics))

    result.epochs_run = trainer.current_epoch
    result.seconds = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:  # one metrics.json and one table, whatever the number of processes
        result.write(output_dir)
        if result.test_loss is not None:
            print_test_results(result, list(datamodule.class_names))
    if result.status == Status.DIVERGED:
        raise diverged
    return result


def checkpoint_to_resume(cfg: DictConfig, output_dir: Path) -> str | None:
    """The checkpoint this run continues from, checked to be the same run; None for a new run."""
    if cfg.get("ckpt_path") is None and requeued_by_slurm():  # continues from its last finished epoch, if any
        has_last = any((output_dir / "checkpoints").glob("last*.ckpt"))
        ckpt_path = resolve_ckpt_path("last", output_dir) if has_last else None
    else:
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        check_run_dir_is_new(output_dir, ckpt_path)
    if ckpt_path:
        check_resumable(Path(ckpt_path), OmegaConf.to_container(cfg, resolve=True))
    return ckpt_path
