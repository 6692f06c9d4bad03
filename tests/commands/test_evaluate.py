"""eval.py tests a checkpoint from its path alone: the model and data come from the checkpoint."""

import json

import pytest
from conftest import files_in, run_script

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError


def test_eval_needs_only_the_checkpoint_and_writes_its_own_run_dir(compose_cfg, mnist_dir, tmp_path):
    # Trained with settings eval.py is not told: a 32-unit MLP on inputs normalised with mean 0.5.
    trained_dir = tmp_path / "trained"
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[32]", "data.mean=0.5", output_dir=trained_dir)
    trained = train(cfg)
    before = files_in(trained_dir)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checkpoint = trained_dir / "checkpoints" / "best.ckpt"
    result = run_script("eval.py", f"ckpt_path={checkpoint}", f"data.data_dir={mnist_dir}", cwd=elsewhere)

    [metrics_file] = elsewhere.glob("logs/eval/runs/*/metrics.json")
    evaluated = json.loads(metrics_file.read_text())
    assert evaluated["test_acc"] == pytest.approx(trained.test_acc, abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(trained.test_loss, rel=1e-5)
    assert evaluated["test_acc_per_class"] == pytest.approx(trained.test_acc_per_class, abs=1e-6)
    assert files_in(trained_dir) == before  # nothing written into the training run
    assert "9 - nine" in result.stdout  # the per-class table


def test_eval_of_a_missing_checkpoint_names_it(compose_cfg, tmp_path):
    missing = tmp_path / "run" / "checkpoints" / "best.ckpt"
    with pytest.raises(MnistlabError) as error:
        evaluate(compose_cfg(f"ckpt_path={missing}", config_name="eval"))
    assert str(missing) in str(error.value)
    assert "\n" not in str(error.value)
