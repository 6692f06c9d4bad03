"""Checks on IDX files (the MNIST file format) before torchvision reads them.

torchvision trusts the header: a truncated file fails deep inside a reshape, and a header claiming
billions of images would be believed. Here the header is compared with the file size first.
"""

import math
from pathlib import Path

import numpy as np

from mnistlab.core.errors import MnistlabError

UNSIGNED_BYTE = 0x08


def check_idx_file(path: Path, shape: tuple[int, ...]) -> int:
    """Validate an unsigned-byte IDX file whose items have ``shape``; return the number of items."""
    ndim = 1 + len(shape)
    header_size = 4 + 4 * ndim
    file_size = path.stat().st_size
    with path.open("rb") as file:
        header = file.read(header_size)
    if len(header) < header_size:
        raise MnistlabError(f"{path}: only {file_size} bytes, too short for an IDX header; replace the file")
    zeros, dtype, found_ndim = header[0:2], header[2], header[3]
    if zeros != b"\0\0" or dtype != UNSIGNED_BYTE or found_ndim != ndim:
        raise MnistlabError(
            f"{path}: not an unsigned-byte IDX file with {ndim} dimensions "
            f"(magic number {header[:4].hex()}, expected 0000080{ndim}); replace the file"
        )
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != shape:
        raise MnistlabError(f"{path}: items of shape {dims[1:]}, expected {shape}; replace the file")
    expected_size = header_size + math.prod(dims)
    if file_size != expected_size:
        raise MnistlabError(
            f"{path}: the header promises {dims[0]:,} items ({expected_size:,} bytes) but the file has "
            f"{file_size:,} bytes, so it is truncated or corrupt; replace the file"
        )
    return dims[0]


def check_labels(path: Path, num_classes: int) -> None:
    """Every label of a (header-checked) IDX label file lies in 0..num_classes-1."""
    labels = np.fromfile(path, dtype=np.uint8, offset=8)  # one byte per label after the 8-byte header
    if labels.size and (largest := int(labels.max())) >= num_classes:
        raise MnistlabError(
            f"{path}: labels must lie in 0..{num_classes - 1}, found {largest} "
            f"(item {int(labels.argmax()):,}); replace the file"
        )
