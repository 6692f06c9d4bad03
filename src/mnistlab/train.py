"""One training run, top to bottom: config -> datamodule -> model -> trainer -> fit -> test best -> results."""

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
from mnistlab.errors import MnistlabError
from mnistlab.results import print_test_results, write_json

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
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values()]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    if ckpt_path == "last":
        ckpt_path = str(output_dir / "checkpoints" / "last.ckpt")
    if ckpt_path and not Path(ckpt_path).is_file():
        raise MnistlabError(f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a last.ckpt")
    return ckpt_path


def check_run_dir_is_new(output_dir: Path, ckpt_path: str | None) -> None:
    if ckpt_path is None and (output_dir / "metrics.json").exists():
        raise MnistlabError(
            f"{output_dir} already holds a finished run: choose another hydra.run.dir, "
            "or resume it with ckpt_path=last"
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    check_run_dir_is_new(output_dir, ckpt_path)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg)

    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if checkpoint else ""
    [test] = trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, verbose=False,
                          weights_only=True)

    metrics = {
        "status": "finished",
        "best_val_loss": float(checkpoint.best_model_score) if best_path else None,
        "best_epoch": best_epoch(best_path),
        "test_loss": test["test/loss"],
        "test_acc": test["test/acc"],
        "test_acc_per_class": model.test_per_class,
        "best_checkpoint": best_path or None,
        "seed": cfg.seed,
        "epochs_run": trainer.current_epoch,
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(output_dir / "metrics.json", metrics)
    print_test_results(metrics, model.class_names)
    return metrics


def best_epoch(best_path: str) -> int | None:
    if not best_path:
        return None
    return torch.load(best_path, map_location="cpu", weights_only=True)["epoch"]
