"""Checkpoints saved atomically, and each training state written once.

Lightning saves through a temporary file in the system's temp folder and then moves it; when that folder is
on another file system the move is a copy, and a crash mid-copy leaves half a checkpoint.
"""

import os
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mnistlab.core.files import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves each checkpoint to a hidden temporary file in its own folder, then renames it into place.

    An epoch that improves val/loss saves its state twice, as best.ckpt and as last.ckpt: the second is a
    hard link to the first, put in place by the same rename, not another serialisation and sync.
    """

    def __init__(self) -> None:
        super().__init__()
        self.written: tuple[tuple[Any, Any], Path] | None = None  # ((epoch, step), file) of the last save

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        state = (checkpoint.get("epoch"), checkpoint.get("global_step"))
        if self.written and self.written[0] == state and self.written[1] != path and self.written[1].exists():
            try:
                link(self.written[1], path)  # the same training state: another name for the file just written
                return
            except OSError:  # another file system (a dirpath elsewhere): written again below
                pass
        with atomic_file(path, "wb") as file:
            torch.save(checkpoint, file)
        self.written = (state, path)


def link(source: Path, path: Path) -> None:
    """``path`` becomes another name of ``source``'s file, at once (a hard link put in place by a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.link(source, tmp)
    os.replace(tmp, path)
