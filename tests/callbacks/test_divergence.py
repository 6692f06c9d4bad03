"""A NaN or infinite loss stops the run within its validation interval; the best checkpoint is kept."""

import json
import math

import pytest
import torch
from conftest import N_TRAIN

from mnistlab.callbacks.divergence import TrainingDiverged
from mnistlab.commands.train import train

STEPS_PER_EPOCH = math.ceil(N_TRAIN * 0.9 / 32)  # SHRINK's batch of 32, the default 10% held out
# A real learning rate that jumps a thousand billion billion billion times early in epoch 1: the loss
# turns NaN there, after epoch 0 trained normally.
LR_JUMP_IN_EPOCH_1 = [
    "scheduler=none",
    "+scheduler._target_=torch.optim.lr_scheduler.MultiStepLR",
    "+scheduler._partial_=true",
    f"+scheduler.milestones=[{STEPS_PER_EPOCH + 2}]",
    "+scheduler.gamma=1e30",
]


def test_a_nan_loss_stops_the_run_in_that_epoch_and_the_best_checkpoint_before_it_is_tested(
    compose_cfg, tmp_path
):
    cfg = compose_cfg("model=mlp", "trainer.max_epochs=4", *LR_JUMP_IN_EPOCH_1)
    with pytest.raises(TrainingDiverged) as error:
        train(cfg)
    message = str(error.value)
    assert "\n" not in message
    assert "became nan at epoch 1, step" in message and "try a lower optimizer.lr" in message
    assert STEPS_PER_EPOCH + 2 < error.value.step <= 2 * STEPS_PER_EPOCH

    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    assert metrics["epochs_run"] == 1  # stopped in epoch 1: epochs 2 and 3 never ran
    assert metrics["best_epoch"] == 0 and metrics["best_checkpoint"] == str(run_dir / "checkpoints/best.ckpt")
    assert math.isfinite(metrics["test_loss"]) and len(metrics["test_acc_per_class"]) == 10
    # Neither checkpoint holds the diverged weights: the run stopped before its validation could save them.
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert checkpoint["epoch"] == 0
        assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values())


def test_a_run_that_diverges_before_its_first_validation_has_nothing_to_test(compose_cfg, tmp_path):
    with pytest.raises(TrainingDiverged, match="at epoch 0, step"):
        train(compose_cfg("model=mlp", "optimizer.lr=1e30"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    assert metrics["best_checkpoint"] is None and metrics["test_loss"] is None
    assert not (tmp_path / "run" / "checkpoints").exists() or not any(
        (tmp_path / "run" / "checkpoints").iterdir()
    )
