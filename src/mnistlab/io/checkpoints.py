"""Checkpoints read only as plain tensors and values; any problem with one is refused in one clear line."""

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from mnistlab.core.errors import MnistlabError, describe, first_line


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read with ``weights_only=True``; any problem: one line naming the file."""
    if not path.is_file():
        raise MnistlabError(f"{path}: no such checkpoint file; give the path of a .ckpt file")
    if path.stat().st_size == 0:
        raise MnistlabError(f"{path}: the checkpoint is empty (0 bytes); use another")
    check_archive(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many kinds for files that are not checkpoints
        raise unreadable(path, error) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise MnistlabError(f"{path}: not a Lightning checkpoint (it has no state_dict); use a .ckpt file")
    return checkpoint


def saved_epoch(path: Path | None) -> int | None:
    """The epoch a checkpoint of this run was written at; None where there is no such file."""
    if path is None or not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


def unreadable(path: Path, error: Exception) -> MnistlabError:
    text = str(error)
    if isinstance(error, pickle.UnpicklingError) and (found := re.search(r"GLOBAL (\S+)", text)):
        return MnistlabError(
            f"{path}: refused: it holds a pickled Python object ({found[1]}), and loading that could run "
            "code; only checkpoints of plain tensors and values are loaded (weights_only=True), "
            "so use a checkpoint written by mnistlab"
        )
    # torch's message for a pickle it cannot read opens with advice on weights_only; the cause comes later.
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    return MnistlabError(
        f"{path}: cannot be read as a checkpoint ({detail[1] if detail else describe(error)}): it is "
        "truncated, corrupt or not a checkpoint; use another"
    )


def check_archive(path: Path) -> None:
    """Checksums: torch.load reads a checkpoint with a damaged tensor without noticing; the zip's CRCs do."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as file:
            starts_as_zip = file.read(4) == b"PK\x03\x04"
        if starts_as_zip:  # a zip whose end, where its directory lives, is missing
            raise MnistlabError(
                f"{path}: the checkpoint is truncated (the zip directory at its end is missing); use another"
            )
        return  # the legacy format or not a checkpoint at all: torch.load says which
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise MnistlabError(
            f"{path}: the checkpoint is corrupt ({first_line(error) or 'no details'}); use another"
        ) from None
    if damaged:
        raise MnistlabError(
            f"{path}: the checkpoint is corrupt: {damaged} does not match its stored checksum; use another"
        )
