"""bf16 autocast and torch.compile switch on for any run; checkpoints stay plain, eval.py repeats the test."""

import json

import pytest
import torch
from conftest import SHRINK, Run, run_script, write_mnist

from mnistlab.run.trained import load_trained


def train_and_evaluate(tmp_path, *args: str) -> tuple[dict, dict, dict]:
    """metrics.json of a training run, of eval.py on its best checkpoint, and that checkpoint."""
    data = write_mnist(tmp_path / "data")
    run_dir = tmp_path / "run"
    Run(tmp_path, "train", *SHRINK, f"data.data_dir={data}", *args, f"hydra.run.dir={run_dir}").succeeded()
    best = run_dir / "checkpoints" / "best.ckpt"
    run_script("eval.py", f"ckpt_path={best}", f"data.data_dir={data}", f"hydra.run.dir={tmp_path / 'eval'}")
    trained, evaluated = (
        json.loads((path / "metrics.json").read_text()) for path in (run_dir, tmp_path / "eval")
    )
    return trained, evaluated, torch.load(best, weights_only=True)


@pytest.mark.slow  # a training run and an eval.py in subprocesses; CI runs the slow group
def test_a_bf16_mixed_run_trains_and_eval_repeats_its_test(tmp_path):
    trained, evaluated, checkpoint = train_and_evaluate(
        tmp_path, "model=cnn", "model.channels=[8,16]", "trainer.precision=bf16-mixed"
    )
    assert trained["status"] == "finished" and trained["test_acc"] > 0.5
    assert evaluated["test_acc"] == pytest.approx(trained["test_acc"], abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(trained["test_loss"], rel=1e-4)
    assert all(tensor.dtype != torch.bfloat16 for tensor in checkpoint["state_dict"].values())  # fp32 weights
    net = load_trained(tmp_path / "run/checkpoints/best.ckpt").model.net
    assert [layer.out_channels for layer in net.modules() if isinstance(layer, torch.nn.Conv2d)] == [8, 16]


@pytest.mark.slow  # compiling takes half a minute or more on two CPU cores
def test_a_compiled_run_saves_plain_weight_names_and_eval_repeats_its_test(tmp_path):
    trained, evaluated, checkpoint = train_and_evaluate(tmp_path, "model=mlp", "model.compile=true")
    assert trained["status"] == "finished" and trained["test_acc"] > 0.5
    assert not [name for name in checkpoint["state_dict"] if "_orig_mod" in name]
    assert evaluated["test_acc"] == pytest.approx(trained["test_acc"], abs=1e-6)
    assert checkpoint["run_config"]["model"]["compile"] is True  # and it loads into a plain net:
    assert load_trained(tmp_path / "run/checkpoints/best.ckpt").model.compile_mode == "default"
