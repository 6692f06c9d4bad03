"""Test a checkpoint: the data and model are rebuilt from the config stored inside it."""

import time
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf

from mnistlab.checkpoints import load_checkpoint
from mnistlab.errors import MnistlabError
from mnistlab.results import print_test_results, write_json


def load_run_config(ckpt_path: Path) -> DictConfig:
    checkpoint = load_checkpoint(ckpt_path)  # weights_only=True; a broken or unsafe file is one clear line
    if "run_config" not in checkpoint:
        raise MnistlabError(f"{ckpt_path} was not written by mnistlab's train.py (it has no run_config)")
    return OmegaConf.create(checkpoint["run_config"])


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    ckpt_path = Path(cfg.ckpt_path)
    run_cfg = load_run_config(ckpt_path)
    overrides = {key: value for key, value in cfg.data.items() if value is not None}
    datamodule = instantiate(OmegaConf.merge(run_cfg.data, overrides))
    datamodule.prepare_data()

    model_class: type[LightningModule] = get_class(run_cfg.model._target_)
    model = model_class.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    [test] = trainer.test(model, datamodule=datamodule, verbose=False)

    metrics = {
        "checkpoint": str(ckpt_path.resolve()),
        "test_loss": test["test/loss"],
        "test_acc": test["test/acc"],
        "test_acc_per_class": model.test_per_class,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if trainer.is_global_zero:  # under DDP the results are already reduced over all processes
        write_json(Path(cfg.paths.output_dir) / "metrics.json", metrics)
        print_test_results(metrics, model.class_names)
    return metrics
