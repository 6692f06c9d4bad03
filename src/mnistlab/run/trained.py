"""A trained model loaded for use, from a checkpoint or an ONNX export, with what its inputs must be.

Class names, input shape and the data's mean and std come from the checkpoint's own saved run config (its
datamodule), or from the ONNX file's metadata, never from constants here.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from lightning import LightningDataModule
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from mnistlab.core.errors import MnistlabError, describe
from mnistlab.data.base import InMemoryDataModule
from mnistlab.data.user_images import normalise
from mnistlab.io.checkpoints import load_checkpoint
from mnistlab.io.formats import AUGMENT, FORMAT, format_of, upgraded
from mnistlab.models import NetModule
from mnistlab.run.build import build_datamodule, build_model

ONNX_SUFFIX = ".onnx"
PACKAGE = "mnistlab."


@dataclass(frozen=True)
class ModelCard:
    """What a model takes and gives: the datamodule's class names, input shape and normalisation."""

    class_names: list[str]
    input_shape: list[int]
    mean: float | None
    std: float | None
    checkpoint: str

    def to_metadata(self) -> dict[str, str]:
        """ONNX metadata: a flat map of strings, each value as JSON."""
        return {key: json.dumps(value) for key, value in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], path: Path) -> "ModelCard":
        try:
            return cls(**{key: json.loads(metadata[key]) for key in cls.__dataclass_fields__})
        except (KeyError, ValueError) as error:
            raise MnistlabError(
                f"{path}: its metadata lacks mnistlab's model card ({error}); use a model from export.py"
            ) from None


@dataclass
class Trained:
    """A checkpoint's run config, its datamodule (its data not read), its model (CPU, eval mode)."""

    config: DictConfig
    datamodule: InMemoryDataModule
    model: NetModule


def load_trained(ckpt_path: Path, data: dict[str, Any] | None = None) -> Trained:
    """The model a checkpoint holds, rebuilt from the run config stored in it; ``data`` replaces settings of
    its datamodule (where the data lives now; only keys it has). Any problem: one line naming the file."""
    checkpoint = load_checkpoint(ckpt_path)  # weights_only=True; a broken or unsafe file is one clear line
    if "run_config" not in checkpoint:
        raise MnistlabError(f"{ckpt_path} was not written by mnistlab's train.py (it has no run_config)")
    version = format_of(checkpoint)
    checkpoint = upgraded(checkpoint, ckpt_path)
    config = OmegaConf.create(checkpoint["run_config"])
    check_targets(config, ckpt_path)
    overrides = {
        key: value for key, value in (data or {}).items() if value is not None and key in config.data
    }
    try:
        datamodule = build_datamodule(config, OmegaConf.merge(config.data, overrides))
        model = build_model(config, datamodule, train=False)
        model.load_state_dict(checkpoint["state_dict"])
    except Exception as error:
        if version == FORMAT:
            raise
        raise MnistlabError(
            f"{ckpt_path} was written by an earlier mnistlab (checkpoint format {version}) whose model this "
            f"one cannot rebuild ({describe(error)}): retrain it, or use the mnistlab that wrote it"
        ) from None
    return Trained(config, datamodule, model.eval())


def check_targets(config: DictConfig, ckpt_path: Path) -> None:
    """A checkpoint's config names the classes that rebuild it: only this project's data and nets, so that
    a crafted checkpoint cannot make the loader call anything else."""
    for part, kind in (("data", LightningDataModule), ("model", nn.Module)):
        target = str(config[part].get("_target_", ""))
        try:
            built = get_class(target) if target.startswith(PACKAGE) else None
        except (ImportError, ValueError):  # no such class
            built = None
        if not (isinstance(built, type) and issubclass(built, kind)):
            raise MnistlabError(f"{ckpt_path}: {part} {target!r} is not one of this project's; use another")
    augment = config.data.get("augment") or {}
    if augment and augment.get("_target_") != AUGMENT:
        raise MnistlabError(f"{ckpt_path}: data.augment is not one of this project's; use another")


class CheckpointModel:
    """A checkpoint's classifier, on the CPU in eval mode, and its card."""

    def __init__(self, ckpt_path: Path, data: dict[str, Any] | None = None) -> None:
        trained = load_trained(ckpt_path, data)  # one line for a missing, broken or foreign file
        datamodule = trained.datamodule
        if datamodule.task != "classification":
            raise MnistlabError(
                f"{ckpt_path}: its model is a {datamodule.task}, and predict.py, export.py and serve.py give "
                "classes and their probabilities; test it with eval.py"
            )
        self.datamodule = trained.datamodule  # its data not read
        self.card = ModelCard(
            class_names=[str(name) for name in datamodule.class_names],
            input_shape=list(datamodule.input_shape),
            mean=getattr(datamodule, "mean", None),  # the rings' points are used as they are
            std=getattr(datamodule, "std", None),
            checkpoint=str(ckpt_path.resolve()),
        )
        self.module = trained.model

    @torch.inference_mode()
    def probabilities(self, inputs: Tensor) -> Tensor:
        """Class probabilities of inputs in [0, 1] (points as they are)."""
        return self.module.predict_step(normalise(inputs, self.card.mean, self.card.std))


class OnnxModel:
    """An exported model run by onnxruntime on the CPU: its graph normalises and ends in probabilities."""

    def __init__(self, path: Path) -> None:
        import onnxruntime  # only the ONNX paths need it

        if not path.is_file():
            raise MnistlabError(f"{path}: no such ONNX file; give the path of an export/model.onnx")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own kinds for files it cannot load
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise MnistlabError(f"{path}: onnxruntime cannot load it ({first}); export it again") from None
        self.card = ModelCard.from_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        self.input_name = self.session.get_inputs()[0].name

    def probabilities(self, inputs: Tensor) -> Tensor:
        [probs] = self.session.run(None, {self.input_name: inputs.numpy().astype("float32")})
        return torch.from_numpy(probs)


def load_trained_model(path: Path) -> "CheckpointModel | OnnxModel":
    """A CheckpointModel, or an OnnxModel for a .onnx file."""
    return OnnxModel(path) if path.suffix == ONNX_SUFFIX else CheckpointModel(path)
