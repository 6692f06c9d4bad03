"""Lightning's own switches keep their meaning on a run here: each Trainer boolean users set on the command
line works (and does what it says) or is refused in one line that says why and what to set instead."""

import pytest
import torch

from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError

BAR = ["callbacks.progress_bar.refresh_rate=1"]  # the bar on, as a user sees it (the tests' shrink hides it)


def run(compose_cfg, capsys, *overrides: str):
    result = train(compose_cfg("model=mlp", "model.hidden_sizes=[16]", *overrides))
    out, err = capsys.readouterr()
    return result, out + err


@pytest.mark.parametrize(
    ("switch", "check"),
    [
        ("trainer.enable_progress_bar=false", lambda r, run_dir, text: "it/s" not in text),
        ("trainer.enable_model_summary=false", lambda r, run_dir, text: "Trainable params" not in text),
        (
            "trainer.enable_checkpointing=false",
            lambda r, run_dir, text: r.best_checkpoint is None and not (run_dir / "checkpoints").exists(),
        ),
        ("trainer.logger=false", lambda r, run_dir, text: not (run_dir / "tensorboard").exists()),
        (
            "trainer.fast_dev_run=true",
            lambda r, run_dir, text: r.epochs_run == 1 and r.best_checkpoint is None,
        ),
        ("trainer.detect_anomaly=true", lambda r, run_dir, text: r.best_checkpoint is not None),
        ("trainer.benchmark=true", lambda r, run_dir, text: r.best_checkpoint is not None),
        ("trainer.inference_mode=false", lambda r, run_dir, text: r.best_checkpoint is not None),
    ],
)
def test_a_trainer_switch_works_on_a_whole_run(compose_cfg, capsys, tmp_path, switch, check):
    # The same run with Lightning's default first: the check must tell the two apart where it can.
    result, text = run(compose_cfg, capsys, *BAR, "trainer.enable_model_summary=true", switch)
    assert result.status == "finished" and result.test_loss is not None
    assert check(result, tmp_path / "run", text), text[-2000:]


def test_the_checks_above_tell_a_default_run_apart(compose_cfg, capsys, tmp_path):
    result, text = run(compose_cfg, capsys, *BAR, "trainer.enable_model_summary=true")
    assert "it/s" in text and "Trainable params" in text
    assert result.best_checkpoint is not None and (tmp_path / "run" / "tensorboard").exists()


def test_barebones_is_refused_saying_why_and_what_to_set_instead(compose_cfg, capsys):
    with pytest.raises(MnistlabError) as error:
        run(compose_cfg, capsys, "trainer.barebones=true")
    assert str(error.value).startswith("trainer.barebones=true is not allowed: it must be false: barebones")
    assert "callbacks=none logger=none trainer.enable_progress_bar=false" in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible: trainer=gpu works here")
@pytest.mark.parametrize("trainer", ["trainer=gpu", "trainer.accelerator=gpu", "trainer=ddp"])
def test_a_gpu_trainer_without_a_gpu_says_so_in_the_projects_words(compose_cfg, capsys, trainer):
    with pytest.raises(MnistlabError) as error:
        run(compose_cfg, capsys, trainer)
    assert str(error.value) == (
        "trainer.accelerator=gpu, but no CUDA device is visible on this machine: use trainer=cpu, or "
        "trainer.accelerator=auto (a GPU when there is one)"
    )
