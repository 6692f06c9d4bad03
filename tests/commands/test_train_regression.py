"""A regression run (data=function) end to end: MSE as val/loss and test/loss, no accuracy anywhere, the
best checkpoint by val/loss, eval.py on its checkpoint, and a resume."""

import json
from pathlib import Path

import pytest
import torch
from conftest import REGRESSION_RUN
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.train import train
from mnistlab.run.trained import load_trained


def scalars(log_dir: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [event.value for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_val_loss_is_logged_every_epoch_and_no_accuracy_at_all(regression_run):
    run_dir, result = regression_run
    tags = scalars(run_dir / "tensorboard")
    assert len(tags["val/loss"]) == len(tags["train/loss"]) == 3
    assert len(tags["~test/loss"]) == 1
    assert not [tag for tag in tags if "acc" in tag]
    best = min(tags["val/loss"])
    assert (result.best_epoch, result.best_val_loss) == (tags["val/loss"].index(best), pytest.approx(best))
    assert tags["val/loss"][-1] < tags["val/loss"][0]  # it learns


def test_metrics_json_holds_the_test_mse_of_the_best_checkpoint_and_null_accuracies(regression_run):
    run_dir, result = regression_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["test_acc"], metrics["test_acc_per_class"]) == ("finished", None, None)
    trained = load_trained(run_dir / "checkpoints/best.ckpt")
    datamodule, model = trained.datamodule, trained.model
    datamodule.setup("test")
    with torch.no_grad():
        mse = ((model(datamodule.test_set.inputs) - datamodule.test_set.labels) ** 2).mean().item()
    assert metrics["test_loss"] == pytest.approx(mse, rel=1e-5) == result.test_loss


def test_eval_tests_a_regression_checkpoint_from_its_path_alone(
    regression_run, compose_cfg, tmp_path, capsys
):
    run_dir, trained = regression_run
    eval_dir = tmp_path / "eval"
    # data.data_dir as a user gives it for MNIST runs: this data has no files, and the run tests the same.
    checkpoint = f"ckpt_path={run_dir / 'checkpoints/best.ckpt'}"
    cfg = compose_cfg(checkpoint, f"data.data_dir={tmp_path}", config_name="eval", output_dir=eval_dir)
    result = evaluate(cfg)
    assert result.test_loss == pytest.approx(trained.test_loss, rel=1e-6)
    assert (result.test_acc, result.test_acc_per_class) == (None, None)
    assert json.loads((eval_dir / "metrics.json").read_text())["test_loss"] == pytest.approx(
        trained.test_loss
    )
    events = EventAccumulator(str(eval_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["~test/fit"]
    printed = capsys.readouterr().out
    assert "test/loss" in printed and "test/acc" not in printed and "per class" not in printed


def test_a_regression_run_resumes_from_its_last_checkpoint(compose_cfg, tmp_path):
    # scheduler=none: the run grows from one epoch to two, which a one-cycle schedule would refuse.
    short = [*REGRESSION_RUN, "scheduler=none", "logger=none"]
    first = train(compose_cfg(*short, "trainer.max_epochs=1"))
    assert first.epochs_run == 1
    last = tmp_path / "run/checkpoints/last.ckpt"
    steps = torch.load(last, weights_only=True)["global_step"]
    resumed = train(compose_cfg(*short, "trainer.max_epochs=2", f"ckpt_path={last}"))
    assert (resumed.epochs_run, resumed.test_acc) == (2, None)
    assert torch.load(last, weights_only=True)["global_step"] == 2 * steps
