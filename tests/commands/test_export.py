"""export.py: every architecture to ONNX and TorchScript, checked against PyTorch before it is kept."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import compose_config, run_script, write_mnist

from mnistlab.commands import export as export_flow
from mnistlab.commands.export import export
from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError
from mnistlab.run.trained import CheckpointModel

TINY = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "logger=none"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("export") / "data", n_train=200, n_test=1200)


@pytest.fixture(scope="module")
def checkpoints(data_dir) -> dict[str, Path]:
    """One briefly trained checkpoint per architecture (their weights matter less than their graphs)."""
    found = {}
    for model in ("mlp", "cnn", "scratch"):
        run_dir = data_dir.parent / model
        train(
            compose_config(
                f"model={model}", *TINY, root=data_dir.parent, data_dir=data_dir, output_dir=run_dir
            )
        )
        found[model] = run_dir / "checkpoints" / "best.ckpt"
    return found


def export_cfg(checkpoint: Path, data_dir: Path, *overrides: str):
    return compose_config(
        f"ckpt_path={checkpoint}", *overrides, root=data_dir.parent, data_dir=data_dir, config_name="export"
    )


@pytest.mark.parametrize("model", ["mlp", "cnn", "scratch"])
def test_every_architecture_exports_to_onnx_with_normalisation_and_softmax_inside(
    checkpoints, data_dir, model
):
    checkpoint = checkpoints[model]
    summary = export(export_cfg(checkpoint, data_dir))
    onnx = checkpoint.parent.parent / "export" / "model.onnx"
    sidecar = json.loads(onnx.with_name("model.onnx.json").read_text())
    assert summary["check"]["passed"] and summary["check"]["images"] == 1000
    assert summary["check"]["largest_difference"] <= 1e-4 and summary["check"]["other_class"] == 0
    card = CheckpointModel(checkpoint).card
    assert sidecar["class_names"] == card.class_names and sidecar["input_shape"] == [1, 28, 28]
    assert (sidecar["mean"], sidecar["std"]) == (0.1307, 0.3081)
    assert sidecar["checkpoint"] == str(checkpoint.resolve())

    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["class_names"]) == card.class_names
    assert session.get_inputs()[0].shape[1:] == [1, 28, 28]
    # Any batch size, images in [0, 1] in, probabilities out: equal to the checkpoint's.
    images = torch.rand(7, 1, 28, 28)
    for batch in (images[:1], images):
        [probs] = session.run(None, {"images": batch.numpy()})
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
        assert np.allclose(probs, CheckpointModel(checkpoint).probabilities(batch).numpy(), atol=1e-5)


@pytest.mark.parametrize("model", ["mlp", "cnn", "scratch"])
def test_every_architecture_exports_to_torchscript(checkpoints, data_dir, model):
    checkpoint = checkpoints[model]
    summary = export(export_cfg(checkpoint, data_dir, "format=torchscript"))
    assert summary["check"]["passed"]
    extra = {"mnistlab.json": ""}
    loaded = torch.jit.load(str(checkpoint.parent.parent / "export" / "model.ts"), _extra_files=extra)
    assert (
        json.loads(json.loads(extra["mnistlab.json"])["class_names"])
        == CheckpointModel(checkpoint).card.class_names
    )
    images = torch.rand(3, 1, 28, 28)
    assert torch.allclose(loaded(images), CheckpointModel(checkpoint).probabilities(images), atol=1e-5)


def test_an_export_is_never_replaced_unasked(checkpoints, data_dir):
    checkpoint = checkpoints["mlp"]
    onnx = checkpoint.parent.parent / "export" / "model.onnx"
    if not onnx.exists():
        export(export_cfg(checkpoint, data_dir))
    before = onnx.read_bytes(), onnx.stat().st_mtime_ns
    with pytest.raises(MnistlabError, match="already exists: add overwrite=true"):
        export(export_cfg(checkpoint, data_dir))
    assert (onnx.read_bytes(), onnx.stat().st_mtime_ns) == before
    export(export_cfg(checkpoint, data_dir, "overwrite=true"))
    assert onnx.stat().st_mtime_ns != before[1]


def test_an_export_that_fails_its_check_is_not_written(checkpoints, data_dir, monkeypatch):
    # A broken export: the graph forgets the normalisation, so its outputs differ from PyTorch's.
    monkeypatch.setattr(
        export_flow.Exportable, "forward", lambda self, images: self.predict(self.net(images))
    )
    checkpoint = checkpoints["cnn"]
    export_dir = checkpoint.parent.parent / "export"
    before = sorted(path.name for path in export_dir.iterdir()) if export_dir.exists() else []
    with pytest.raises(MnistlabError) as error:
        export(export_cfg(checkpoint, data_dir, "format=torchscript", "overwrite=true"))
    message = str(error.value)
    assert "failed its check and was not written" in message and "largest difference" in message
    assert "\n" not in message
    after = sorted(path.name for path in export_dir.iterdir())
    assert after == before  # nothing new, no temporary file left


def test_export_py_prints_the_check_and_leaves_no_hydra_files(checkpoints, data_dir, tmp_path):
    checkpoint = checkpoints["scratch"]
    result = run_script(
        "export.py", f"ckpt_path={checkpoint}", f"data.data_dir={data_dir}", "overwrite=true", cwd=tmp_path
    )
    assert "onnxruntime vs PyTorch on 1,000 test images: largest difference" in result.stdout
    assert "same class for 1,000/1,000" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no logs/, .hydra or export.log in the working folder
    assert sorted(p.name for p in (checkpoint.parent.parent / "export").glob(".*")) == []
