"""A trained model loaded for use, from a checkpoint or an ONNX export, with what its inputs must be.

Class names, input shape and the data's mean and std come from the checkpoint's own saved run config (its
datamodule), or from the ONNX file's metadata, never from constants here.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from torch import Tensor

from mnistlab.data.user_images import normalise
from mnistlab.errors import MnistlabError
from mnistlab.models.base import ImageClassifier
from mnistlab.run.evaluate import load_run_config

ONNX_SUFFIX = ".onnx"


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


class CheckpointModel:
    """A checkpoint's LightningModule, on the CPU in eval mode, and its card."""

    def __init__(self, ckpt_path: Path) -> None:
        run_cfg = load_run_config(ckpt_path)  # one line for a missing, broken or foreign file
        model_class = get_class(run_cfg.model._target_)
        if not (isinstance(model_class, type) and issubclass(model_class, ImageClassifier)):
            raise MnistlabError(f"{ckpt_path}: {run_cfg.model._target_} is not a model of this project")
        datamodule = instantiate(run_cfg.data)  # stores its settings only: no data is read
        if datamodule.task != "classification":
            raise MnistlabError(
                f"{ckpt_path}: its model is a {datamodule.task}, and predict.py, export.py and serve.py give "
                "classes and their probabilities; test it with eval.py"
            )
        self.datamodule_config = run_cfg.data
        self.card = ModelCard(
            class_names=[str(name) for name in datamodule.class_names],
            input_shape=list(datamodule.input_shape),
            mean=getattr(datamodule, "mean", None),  # the rings' points are used as they are
            std=getattr(datamodule, "std", None),
            checkpoint=str(ckpt_path.resolve()),
        )
        self.module: ImageClassifier = model_class.load_from_checkpoint(
            ckpt_path, map_location="cpu", weights_only=True
        ).eval()

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
