"""One training run, top to bottom: config, datamodule, model, trainer, fit, test best, results."""

import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from omegaconf import DictConfig, OmegaConf

from mnistlab.callbacks import RunConfigInCheckpoint
from mnistlab.callbacks.divergence import StopOnDivergence, TrainingDiverged
from mnistlab.callbacks.seeding import SeedEachEpoch
from mnistlab.checkpoints import AtomicCheckpointIO, check_resumable, check_room_for_checkpoints
from mnistlab.config import existing_run_file
from mnistlab.distributed import EndOnDeadProcess
from mnistlab.errors import MnistlabError
from mnistlab.interruptions import reporting_interruptions
from mnistlab.results import print_test_results, write_json
from mnistlab.schema import validate_config

# The data is in memory and batches are cut by indexing: worker processes would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


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
        EndOnDeadProcess(cfg.paths.output_dir, cfg.seed),
    ]
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values()]
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    if ckpt_path == "last":
        lasts = sorted((output_dir / "checkpoints").glob("last*.ckpt"), key=lambda path: path.stat().st_mtime)
        if not lasts:
            raise MnistlabError(
                f"ckpt_path=last: {output_dir / 'checkpoints'} holds no last.ckpt; "
                "add hydra.run.dir=<the run dir to resume>"
            )
        ckpt_path = str(lasts[-1])  # the newest, should Lightning have versioned it (last-v1.ckpt)
    if ckpt_path and not Path(ckpt_path).is_file():
        raise MnistlabError(f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a last.ckpt")
    return ckpt_path


def check_run_dir_is_new(output_dir: Path, ckpt_path: str | None) -> None:
    if ckpt_path is None and (found := existing_run_file(output_dir)):
        raise MnistlabError(
            f"{output_dir} already holds a run ({found.relative_to(output_dir)}): choose another "
            f"hydra.run.dir, or resume it with ckpt_path=last hydra.run.dir={output_dir}"
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    validate_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    check_run_dir_is_new(output_dir, ckpt_path)
    if ckpt_path:
        check_resumable(Path(ckpt_path), OmegaConf.to_container(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    check_room_for_checkpoints(output_dir, model)
    trainer = build_trainer(cfg)

    diverged = None
    with reporting_interruptions(trainer, output_dir, cfg.seed, started):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except TrainingDiverged as error:  # raised before the diverged weights reached any checkpoint
            diverged = error
        checkpoint = trainer.checkpoint_callback
        best_path = checkpoint.best_model_path if checkpoint else ""
        test = {}
        if best_path or not diverged:  # a run that diverged before its first validation has nothing to test
            [test] = trainer.test(
                model, datamodule=datamodule, ckpt_path=best_path or None, verbose=False, weights_only=True
            )

    metrics = {
        "status": "diverged" if diverged else "finished",
        "best_val_loss": float(checkpoint.best_model_score) if best_path else None,
        "best_epoch": best_epoch(best_path) if trainer.is_global_zero else None,
        "test_loss": test.get("test/loss"),
        "test_acc": test.get("test/acc"),
        "test_acc_per_class": model.test_per_class if test else None,
        "best_checkpoint": best_path or None,
        "seed": cfg.seed,
        "epochs_run": trainer.current_epoch,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if trainer.is_global_zero:  # one metrics.json and one table, whatever the number of processes
        write_json(output_dir / "metrics.json", metrics)
        if test:
            print_test_results(metrics, model.class_names)
    if diverged:
        raise diverged
    return metrics


def best_epoch(best_path: str) -> int | None:
    if not best_path:
        return None
    return torch.load(best_path, map_location="cpu", weights_only=True)["epoch"]
