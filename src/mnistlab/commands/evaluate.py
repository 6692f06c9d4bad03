"""Test a checkpoint: the data and model are rebuilt from the config stored inside it."""

import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnistlab.core.ranks import check_launched_processes
from mnistlab.core.results import RunResult, Status, print_test_results
from mnistlab.core.run_dir import check_run_dir_is_new, holding
from mnistlab.run.build import build_callbacks, build_trainer
from mnistlab.run.trained import load_trained


def evaluate(cfg: DictConfig) -> RunResult:
    output_dir = Path(cfg.paths.output_dir)
    with holding(output_dir):
        check_run_dir_is_new(output_dir, None, resumable=False)
        return evaluate_in(output_dir, cfg)


def evaluate_in(output_dir: Path, cfg: DictConfig) -> RunResult:
    started = time.perf_counter()
    check_launched_processes(cfg.trainer.get("devices"), cfg.trainer.get("num_nodes", 1))
    ckpt_path = Path(cfg.ckpt_path)
    trained = load_trained(ckpt_path, data=cfg.data)
    datamodule, model = trained.datamodule, trained.model
    datamodule.prepare_data()
    # In the precision it was trained and tested in (bf16-mixed, say): eval.py repeats the run's own test.
    precision = OmegaConf.select(trained.config, "trainer.precision", default=cfg.trainer.precision)
    trainer = build_trainer(cfg, build_callbacks(cfg), precision=precision)
    trainer.test(model, datamodule=datamodule, verbose=False)

    result = RunResult(status=Status.FINISHED, seed=trained.config.seed, checkpoint=str(ckpt_path.resolve()))
    result.add(model.task.test_results(trainer.callback_metrics))
    result.seconds = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:  # under DDP the results are already reduced over all processes
        result.write(output_dir)
        print_test_results(result, list(datamodule.class_names))
    return result
