"""Room for a run's checkpoints, asked of the file system before training starts."""

import errno
import os
import shutil
import tempfile
from pathlib import Path

from torch import nn

from mnistlab.core.errors import MnistlabError


def check_room_for_checkpoints(folder: Path, model: nn.Module) -> None:
    """Fail now, naming the folder, if it cannot take this model's checkpoints: not after hours of training.

    A checkpoint holds the weights and, with Adam, two more tensors per weight; the folder needs room for
    best.ckpt, last.ckpt and one being written.
    """
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    needed = 3 * (3 * weights + 1_000_000)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reserve(folder, needed)
    except OSError as error:
        raise MnistlabError(
            f"{folder}: cannot hold this run's checkpoints ({error.strerror}; they need about "
            f"{needed / 1e6:.1f} MB): make room there or choose another folder with paths.log_dir=... "
            "or hydra.run.dir=..."
        ) from None


def reserve(folder: Path, size: int) -> None:
    """Ask the file system for ``size`` bytes in ``folder`` (and give them back): OSError if it cannot."""
    with tempfile.TemporaryFile(dir=folder) as probe:
        try:
            os.posix_fallocate(probe.fileno(), 0, size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            # A file system without fallocate: its free space is the best guide left.
            if shutil.disk_usage(folder).free < size:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder)) from None
