"""Export a checkpoint for use outside the training stack: ONNX or TorchScript, checked before it is kept.

The exported graph takes float images in [0, 1] (N x C x H x W, any N), normalises them as the datamodule
did, and returns class probabilities. Before the file is put in place, its outputs on test images are
compared with PyTorch's; an export that fails the check is removed and never seen.
"""

import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from torch import Tensor, nn

from mnistlab.core.errors import MnistlabError
from mnistlab.core.files import write_json
from mnistlab.core.run_dir import run_dir_of
from mnistlab.run.trained import CheckpointModel, ModelCard, OnnxModel

EXPORT_DIR = "export"
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.ts"}
TORCHSCRIPT_CARD = "mnistlab.json"  # the model card inside the TorchScript archive
TRACE_BATCH = 2  # torch.export takes a batch of 1 for a fixed size: trace with 2, check with many


class Exportable(nn.Module):
    """The model with its normalisation in front and probabilities at the end: images in [0, 1] in."""

    def __init__(self, trained: CheckpointModel) -> None:
        super().__init__()
        # The net alone (not the LightningModule, nor the task's metrics): what the graph needs, no more.
        self.net = trained.module.net
        self.predict = trained.module.task.predict  # a function of the net's outputs alone
        mean, std = trained.card.mean, trained.card.std
        self.register_buffer("mean", torch.tensor(0.0 if mean is None else mean))
        self.register_buffer("std", torch.tensor(1.0 if std is None else std))

    def forward(self, images: Tensor) -> Tensor:
        return self.predict(self.net((images - self.mean) / self.std))


def export(cfg: DictConfig) -> dict[str, Any]:
    if cfg.format not in FILE_NAMES:
        raise MnistlabError(f"format={cfg.format!r} is unknown: choose one of {', '.join(FILE_NAMES)}")
    ckpt_path = Path(cfg.ckpt_path)
    trained = CheckpointModel(ckpt_path, data=cfg.data)
    target = Path(run_dir_of(str(ckpt_path), str(ckpt_path.parent))) / EXPORT_DIR / FILE_NAMES[cfg.format]
    sidecar = target.with_name(f"{target.name}.json")
    replacing = target.exists() or sidecar.exists()
    if replacing and not cfg.overwrite:
        raise MnistlabError(f"{target} already exists: add overwrite=true to replace it, or move it away")
    images = check_images(trained, cfg)
    with torch.inference_mode():
        expected = trained.probabilities(images)

    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, so that putting it in place is an atomic rename; hidden until it passed.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        WRITERS[cfg.format](Exportable(trained).eval(), images[:TRACE_BATCH], trained.card, tmp)
        got = RUNNERS[cfg.format](tmp, images)
        check = compare(got, expected, cfg.check.tolerance)
        if not check["passed"]:
            raise MnistlabError(
                f"the {cfg.format} export failed its check and was not written: on {len(images):,} test "
                f"images its largest difference from PyTorch was {check['largest_difference']:.3g} "
                f"(tolerance {cfg.check.tolerance:g}) and {check['other_class']:,} got another class"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    summary = {
        "format": cfg.format,
        "file": target.name,
        **asdict(trained.card),
        "input": "float32 images in [0, 1], N x C x H x W (N any); normalised inside the model",
        "output": "class probabilities, N x classes",
        "check": check,
    }
    write_json(sidecar, summary)
    report(target, sidecar, check, len(images), replacing)
    return summary


def check_images(trained: CheckpointModel, cfg: DictConfig) -> Tensor:
    """The first ``check.images`` test inputs of the checkpoint's own datamodule, back in [0, 1]."""
    datamodule = trained.datamodule
    datamodule.prepare_data()
    datamodule.setup("test")
    inputs = datamodule.test_set.inputs[: cfg.check.images]
    card = trained.card
    return inputs if card.mean is None or card.std is None else inputs * card.std + card.mean


def write_onnx(model: nn.Module, example: Tensor, card: ModelCard, path: Path) -> None:
    for name in ("onnxscript", "onnx_ir"):  # their graph passes log a line each at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        model,
        (example,),
        input_names=["images"],
        output_names=["probabilities"],
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    program.model.metadata_props.update(card.to_metadata())
    program.save(str(path), external_data=False)


def run_onnx(path: Path, images: Tensor) -> Tensor:
    return OnnxModel(path).probabilities(images)


def write_torchscript(model: nn.Module, example: Tensor, card: ModelCard, path: Path) -> None:
    # TorchScript is deprecated in torch 2.14 but is what libtorch (C++) loads.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_CARD: json.dumps(card.to_metadata())})


def run_torchscript(path: Path, images: Tensor) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return loaded(images)


WRITERS: dict[str, Callable[[nn.Module, Tensor, ModelCard, Path], None]] = {
    "onnx": write_onnx,
    "torchscript": write_torchscript,
}
RUNNERS: dict[str, Callable[[Path, Tensor], Tensor]] = {"onnx": run_onnx, "torchscript": run_torchscript}


def compare(got: Tensor, expected: Tensor, tolerance: float) -> dict[str, Any]:
    largest = float((got - expected).abs().max())
    other_class = int((got.argmax(dim=1) != expected.argmax(dim=1)).sum())
    return {
        "images": len(expected),
        "largest_difference": largest,
        "tolerance": tolerance,
        "other_class": other_class,
        "passed": largest <= tolerance and other_class == 0,
    }


def report(target: Path, sidecar: Path, check: dict[str, Any], n: int, replaced: bool) -> None:
    runtime = "onnxruntime" if target.suffix == ".onnx" else "TorchScript"
    console = Console(soft_wrap=True, highlight=False)
    console.print(f"{'replaced' if replaced else 'wrote'} {target} ({target.stat().st_size / 1e3:,.0f} kB)")
    console.print(f"wrote {sidecar}")
    console.print(
        f"{runtime} vs PyTorch on {n:,} test images: largest difference {check['largest_difference']:.2e} "
        f"(tolerance {check['tolerance']:g}), same class for {n - check['other_class']:,}/{n:,}"
    )
