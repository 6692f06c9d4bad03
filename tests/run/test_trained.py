"""A trained model loaded from its checkpoint alone.

Checkpoints of the earlier format (one LightningModule per architecture: tests/fixtures/checkpoints_format1,
written by that code on the tests' synthetic files) load and test to the numbers they had; a checkpoint whose
config names other classes is refused, never called."""

import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.predict import predict
from mnistlab.core.errors import MnistlabError
from mnistlab.io.formats import FORMAT_KEY
from mnistlab.run.trained import load_trained

FORMAT_1 = ROOT / "tests" / "fixtures" / "checkpoints_format1"


@pytest.mark.parametrize("run", ["mlp", "cnn", "scratch_rings", "regression"])
def test_a_format_1_checkpoint_tests_to_the_numbers_its_run_had(compose_cfg, mnist_dir, run):
    checkpoint = FORMAT_1 / run / "best.ckpt"
    assert FORMAT_KEY not in torch.load(checkpoint, weights_only=True)  # written before formats had a number
    cfg = compose_cfg(
        f"ckpt_path={checkpoint}", f"data.data_dir={mnist_dir}", "logger=none", config_name="eval"
    )
    result = evaluate(cfg)
    then = json.loads((FORMAT_1 / run / "metrics.json").read_text())
    assert result.test_loss == pytest.approx(then["test_loss"], rel=1e-6)
    assert result.test_acc == pytest.approx(then["test_acc"], abs=1e-6)
    assert result.test_acc_per_class == pytest.approx(then["test_acc_per_class"], abs=1e-6)


def test_a_format_1_checkpoint_predicts_too(compose_cfg, mnist_dir, tmp_path):
    images = mnist_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    checkpoint = FORMAT_1 / "cnn" / "best.ckpt"
    rows = predict(compose_cfg(f"ckpt_path={checkpoint}", f"inputs={images}", config_name="predict"))
    assert len(rows) == 200 and all(row["class"] for row in rows)


def crafted(tmp_path: Path, change) -> Path:
    checkpoint = torch.load(FORMAT_1 / "mlp" / "best.ckpt", weights_only=True)
    change(checkpoint["run_config"])
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda config: config["data"].update(_target_="builtins.exec"), "data 'builtins.exec'"),
        (lambda config: config["model"].update(_target_="os.system"), "model 'os.system'"),
        (lambda config: config["model"].update(_target_="mnistlab.core.files.write_json"), "model 'mnistlab"),
        (lambda config: config["data"].update(augment={"_target_": "shutil.rmtree"}), "data.augment"),
    ],
)
def test_a_checkpoint_whose_config_names_other_classes_is_refused_before_any_is_called(
    tmp_path, change, named
):
    path = crafted(tmp_path, change)
    with pytest.raises(MnistlabError) as error:
        load_trained(path)
    assert named in str(error.value) and "is not one of this project's" in str(error.value)


def test_a_format_1_checkpoint_this_version_cannot_rebuild_says_which_version_wrote_it(tmp_path):
    path = crafted(tmp_path, lambda config: config["model"].update(hidden_sizes="wide"))
    with pytest.raises(MnistlabError, match=r"written by an earlier mnistlab \(checkpoint format 1\)"):
        load_trained(path)


def test_a_checkpoint_of_a_later_format_is_refused_in_one_line(tmp_path):
    checkpoint = torch.load(FORMAT_1 / "mlp" / "best.ckpt", weights_only=True)
    checkpoint[FORMAT_KEY] = 7
    torch.save(checkpoint, path := tmp_path / "later.ckpt")
    with pytest.raises(MnistlabError, match="checkpoint format 7, and this one reads formats 1 and 2"):
        load_trained(path)
