"""One training run, top to bottom: config, datamodule, model, trainer, fit, test best, results."""

import time
import warnings
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from omegaconf import DictConfig, OmegaConf

from mnistlab.callbacks import (
    EndOnDeadProcess,
    RunConfigInCheckpoint,
    SeedEachEpoch,
    StopOnDivergence,
    StopTogetherOnSigterm,
    TrainingDiverged,
)
from mnistlab.callbacks.dispatch import skip_empty_batch_hooks
from mnistlab.io.checkpoint_io import AtomicCheckpointIO
from mnistlab.io.disk import check_room_for_checkpoints
from mnistlab.run.interruptions import reporting_interruptions
from mnistlab.run.result import RunResult, print_test_results
from mnistlab.run.resume import check_resumable, resolve_ckpt_path
from mnistlab.run.run_dir import check_run_dir_is_new, requeued_by_slurm
from mnistlab.run.schema import validate_config

# The data is in memory and batches are cut by indexing: worker processes would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning's own all_gather (DDP: divergence checks, the mistakes figure) calls a torch function that warns
# of its successor, once per process and call site; nothing here can change that.
warnings.filterwarnings("ignore", "torch.distributed.nn.functional.all_gather is deprecated")


def build_datamodule(cfg: DictConfig) -> LightningDataModule:
    datamodule = instantiate(cfg.data)
    # Load now, so that missing or broken data fails before a model, logger or run dir is made.
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig, datamodule: LightningDataModule) -> LightningModule:
    return instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        input_shape=list(datamodule.input_shape),
        class_names=list(datamodule.class_names),
        task=datamodule.task,
        num_outputs=datamodule.num_outputs,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        _convert_="all",  # plain lists, not ListConfig: checkpoints must load with weights_only=True
    )


def build_trainer(cfg: DictConfig) -> Trainer:
    callbacks: list[Callback] = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks.append(RunConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)))
    # Not options: a resume must be exact, and a NaN loss must stop before it reaches a checkpoint.
    callbacks += [
        SeedEachEpoch(cfg.seed),
        StopOnDivergence(),
        StopTogetherOnSigterm(),
        EndOnDeadProcess(cfg.paths.output_dir, cfg.seed),
    ]
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values()]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    skip_empty_batch_hooks(trainer)  # also the callbacks the Trainer adds itself (bar, model summary)
    return trainer


def train(cfg: DictConfig) -> RunResult:
    started = time.perf_counter()
    validate_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("ckpt_path") is None and requeued_by_slurm():  # continues from its last finished epoch, if any
        has_last = any((output_dir / "checkpoints").glob("last*.ckpt"))
        ckpt_path = resolve_ckpt_path("last", output_dir) if has_last else None
    else:
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        check_run_dir_is_new(output_dir, ckpt_path)
    if ckpt_path:
        check_resumable(Path(ckpt_path), OmegaConf.to_container(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    check_room_for_checkpoints(output_dir, model)
    trainer = build_trainer(cfg)

    result = RunResult(status="finished", seed=cfg.seed)
    with reporting_interruptions(trainer, output_dir, cfg.seed, started):
        fit_started = time.perf_counter()
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except TrainingDiverged as error:  # raised before the diverged weights reached any checkpoint
            result.status, diverged = "diverged", error
        result.fit_seconds = round(time.perf_counter() - fit_started, 2)
        result.add_best(trainer)
        # Without a val/loss checkpoint (callbacks=none) the final weights are tested, unless they diverged.
        if result.best_checkpoint or result.status == "finished":
            trainer.test(
                model,
                datamodule=datamodule,
                ckpt_path=result.best_checkpoint,
                verbose=False,
                weights_only=True,
            )
            result.add_test(trainer.callback_metrics, list(datamodule.class_names))

    result.epochs_run = trainer.current_epoch
    result.seconds = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:  # one metrics.json and one table, whatever the number of processes
        result.write(output_dir)
        if result.test_loss is not None:
            print_test_results(result, list(datamodule.class_names))
    if result.status == "diverged":
        raise diverged
    return result
