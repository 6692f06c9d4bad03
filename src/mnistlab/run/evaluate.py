"""Test a checkpoint: the data and model are rebuilt from the config stored inside it."""

import time
from pathlib import Path

from hydra.utils import get_class, instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf

from mnistlab.errors import MnistlabError
from mnistlab.io.checkpoints import load_checkpoint
from mnistlab.run.result import RunResult, print_test_results


def load_run_config(ckpt_path: Path) -> DictConfig:
    checkpoint = load_checkpoint(ckpt_path)  # weights_only=True; a broken or unsafe file is one clear line
    if "run_config" not in checkpoint:
        raise MnistlabError(f"{ckpt_path} was not written by mnistlab's train.py (it has no run_config)")
    return OmegaConf.create(checkpoint["run_config"])


def evaluate(cfg: DictConfig) -> RunResult:
    started = time.perf_counter()
    ckpt_path = Path(cfg.ckpt_path)
    run_cfg = load_run_config(ckpt_path)
    # Only keys the run's data has: generated data (rings, function) has no data_dir to point elsewhere.
    overrides = {key: value for key, value in cfg.data.items() if value is not None and key in run_cfg.data}
    datamodule = instantiate(OmegaConf.merge(run_cfg.data, overrides))
    datamodule.prepare_data()

    model_class: type[LightningModule] = get_class(run_cfg.model._target_)
    model = model_class.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    # In the precision it was trained and tested in (bf16-mixed, say): eval.py repeats the run's own test.
    precision = run_cfg.get("trainer", {}).get("precision", cfg.trainer.precision)
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, precision=precision)
    trainer.test(model, datamodule=datamodule, verbose=False)

    result = RunResult(status="finished", seed=run_cfg.get("seed"), checkpoint=str(ckpt_path.resolve()))
    result.add_test(trainer.callback_metrics, list(datamodule.class_names))
    result.seconds = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:  # under DDP the results are already reduced over all processes
        result.write(Path(cfg.paths.output_dir))
        print_test_results(result, list(datamodule.class_names))
    return result
