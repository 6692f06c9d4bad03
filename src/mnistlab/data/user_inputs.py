"""What a user asks a model to predict: an image, a folder of images, an IDX or .npy array, or points.

Images get MNIST's own preparation (user_images.py). Arrays (IDX, .npy) are taken to be in the model's
format already, as MNIST's files are: only scaled to [0, 1] and, when asked, inverted.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mnistlab.core.errors import MnistlabError
from mnistlab.data.idx import check_idx_file
from mnistlab.data.user_images import ImageProblem, light_on_dark, open_image, prepare_image

IDX_IMAGES_MAGIC = bytes([0, 0, 0x08, 3])  # unsigned bytes, three dimensions (N x H x W)


@dataclass
class UserInputs:
    """One name per input (its file, or its index in an array) and, for the usable ones, the model input."""

    names: list[str] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)  # input number -> why it cannot be used
    inputs: Tensor | None = None  # the usable inputs, in order, in [0, 1] (points as they are)

    @property
    def usable(self) -> list[int]:
        return [i for i in range(len(self.names)) if i not in self.problems]


def read_user_inputs(path: Path, input_shape: tuple[int, ...], invert: bool | str) -> UserInputs:
    """Every input at ``path`` for a model taking ``input_shape``; fatal problems raise MnistlabError."""
    if not path.exists():
        raise MnistlabError(
            f"inputs={path}: no such file or folder; give an image, a folder of images, an IDX images file, "
            "a .npy array or (for a model of points) a .csv file"
        )
    if len(input_shape) == 1:
        return read_points(path, input_shape[0])
    if len(input_shape) != 3 or input_shape[0] != 1:
        raise MnistlabError(f"this model takes inputs of shape {list(input_shape)}, not grey images")
    if path.is_file() and path.suffix.lower() == ".csv":
        raise MnistlabError(
            f"inputs={path}: a .csv of points, but this model takes images ({list(input_shape)}); "
            "give an image, a folder of images, an IDX images file or a .npy array"
        )
    field_size = (input_shape[1], input_shape[2])
    if path.is_dir():
        return read_images(files_in(path), field_size, invert)
    if path.suffix.lower() == ".npy":
        return from_array(read_npy(path, field_size), path.name, invert)
    if is_idx_images(path):
        check_idx_file(path, field_size)
        pixels = np.fromfile(path, dtype=np.uint8, offset=16).reshape(-1, *field_size)
        return from_array(pixels, path.name, invert)
    return read_images([path], field_size, invert)


def files_in(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    if not files:
        raise MnistlabError(f"inputs={folder}: the folder holds no files; put images in it or give another")
    return files


def read_images(paths: list[Path], field_size: tuple[int, int], invert: bool | str) -> UserInputs:
    found = UserInputs(names=[str(p) for p in paths])
    prepared = []
    for number, path in enumerate(paths):
        try:
            prepared.append(prepare_image(open_image(path), field_size, invert))
        except ImageProblem as problem:
            found.problems[number] = str(problem)
    if prepared:
        found.inputs = torch.stack(prepared)
    return found


def is_idx_images(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == IDX_IMAGES_MAGIC


def read_npy(path: Path, field_size: tuple[int, int]) -> np.ndarray:
    """An N x H x W or N x 1 x H x W array, uint8 0-255 or float 0-1, checked; returned as N x H x W."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise MnistlabError(f"inputs={path}: not a readable .npy array ({error}); give another") from None
    expected = f"N x {field_size[0]} x {field_size[1]} or N x 1 x {field_size[0]} x {field_size[1]}"
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[1:] != field_size or len(array) == 0:
        raise MnistlabError(
            f"inputs={path}: an array of shape {array.shape}, but this model takes {expected} "
            "(N at least 1); reshape it"
        )
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise MnistlabError(f"inputs={path}: dtype {array.dtype}; give uint8 (0-255) or floats in [0, 1]")
    low, high = float(np.min(array)), float(np.max(array))
    if not (low >= 0 and high <= 1):  # also refuses NaN, for which every comparison is false
        raise MnistlabError(
            f"inputs={path}: float values from {low:g} to {high:g}; floats must lie in [0, 1] "
            "(divide 0-255 values by 255, or save them as uint8)"
        )
    return array


def from_array(array: np.ndarray, name: str, invert: bool | str) -> UserInputs:
    images = torch.from_numpy(array.astype(np.float32))
    if array.dtype == np.uint8:
        images = images.div_(255)
    names = [f"{name}[{index}]" for index in range(len(images))]
    return UserInputs(names=names, inputs=light_on_dark(images, invert)[:, None])


def read_points(path: Path, width: int) -> UserInputs:
    """A CSV of points, one a line, ``width`` numbers each; a first line that is not numbers is a header."""
    if path.is_dir() or path.suffix.lower() != ".csv":
        raise MnistlabError(
            f"inputs={path}: this model takes points of {width} numbers, not images; give a .csv file with "
            f"{width} comma-separated numbers a line"
        )
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if lines and not all(is_number(cell) for cell in lines[0].split(",")):
        lines = lines[1:]
    rows = [line.split(",") for line in lines]
    bad = next((n for n, row in enumerate(rows) if len(row) != width or not all(map(is_number, row))), None)
    if bad is not None or not rows:
        where = f"point {bad + 1} is {lines[bad]!r}" if bad is not None else "no points"
        raise MnistlabError(f"inputs={path}: {where}; give {width} comma-separated numbers a line")
    points = torch.tensor([[float(cell) for cell in row] for row in rows], dtype=torch.float32)
    names = [f"{path.name}[{index}]" for index in range(len(points))]
    return UserInputs(names=names, inputs=points)


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
