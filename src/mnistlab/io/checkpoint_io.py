"""Checkpoints saved atomically.

Lightning saves through a temporary file in the system's temp folder and then moves it; when that folder is
on another file system the move is a copy, and a crash mid-copy leaves half a checkpoint.
"""

from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mnistlab.core.files import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves each checkpoint to a hidden temporary file in its own folder, then renames it into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_file(Path(path), "wb") as file:
            torch.save(checkpoint, file)
