"""callbacks=ema: the checkpoints hold the averaged weights (what is tested and used afterwards) beside the
live ones, and a run resumed from its last.ckpt ends where the run never stopped does, bit for bit."""

import json
from pathlib import Path

import pytest
import torch

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.train import train

# scheduler=none: a one-cycle schedule is planned for the run's length, which the resume grows.
EMA = ["callbacks=ema", "model=mlp", "scheduler=none", "callbacks.ema.decay=0.9"]


def last_of(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.slow  # three trainings and an evaluation; test_conf.py runs callbacks=ema by default
def test_checkpoints_hold_the_average_and_a_resume_is_exact(compose_cfg, tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    result = train(compose_cfg(*EMA, output_dir=whole))
    checkpoint = last_of(whole)
    averaged, live = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert averaged.keys() == live.keys()
    assert not all(torch.equal(averaged[name], live[name]) for name in averaged)
    # The test after training scored the average, as eval.py does from best.ckpt alone.
    evaluated = evaluate(compose_cfg(f"ckpt_path={result.best_checkpoint}", config_name="eval"))
    assert (evaluated.test_loss, evaluated.test_acc) == (result.test_loss, result.test_acc)

    train(compose_cfg(*EMA, "trainer.max_epochs=1", output_dir=stopped))
    last = stopped / "checkpoints" / "last.ckpt"
    resumed = train(compose_cfg(*EMA, f"ckpt_path={last}", output_dir=stopped))
    assert (resumed.best_val_loss, resumed.test_acc) == (result.best_val_loss, result.test_acc)
    resumed_checkpoint = last_of(stopped)
    for key in ("state_dict", "current_model_state"):
        for name, tensor in checkpoint[key].items():
            assert torch.equal(resumed_checkpoint[key][name], tensor), (key, name)
    metrics = json.loads((stopped / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["epochs_run"] == 2
