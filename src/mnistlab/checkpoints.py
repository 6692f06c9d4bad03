"""Checkpoint files: written atomically, read only as plain tensors and values, refused in one clear line.

Lightning saves through a temporary file in the system's temp folder and then moves it; when that folder is
on another file system the move is a copy, and a crash mid-copy leaves half a checkpoint. Here the temporary
file sits beside its target, so the final rename is atomic.
"""

import errno
import inspect
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from hydra.utils import get_class
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from mnistlab.errors import MnistlabError
from mnistlab.models.base import RUN_LENGTH_ARGS

# Read once: the umask can only be read by setting it, which is not safe once threads run.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
# What a resumed run must share with the run that wrote its checkpoint for the two to be one run.
# Where the data lives and the test batch size may change; so may the run's length, unless the scheduler
# was planned for it (onecycle, cosine): then the settings that make the run's step count must stay.
RESUME_MUST_MATCH = ("seed", "model", "optimizer", "scheduler", "data")
RESUME_MAY_DIFFER = {"data.data_dir", "data.download", "data.eval_batch_size"}
RUN_LENGTH = ("max_epochs", "max_steps", "limit_train_batches", "accumulate_grad_batches")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves each checkpoint to a hidden temporary file in its own folder, then renames it into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A leading dot keeps the temporary file out of Lightning's `last*.ckpt` searches.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                os.fchmod(file.fileno(), 0o666 & ~_UMASK)
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


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
        raise MnistlabError(f"{path}: the checkpoint is corrupt ({first_line(error)}); use another") from None
    if damaged:
        raise MnistlabError(
            f"{path}: the checkpoint is corrupt: {damaged} does not match its stored checksum; use another"
        )


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else "no details"


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {first_line(error)}"


def check_resumable(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint to resume from, after checking it holds a whole training state of this same run."""
    checkpoint = load_checkpoint(path)
    missing = [key for key in ("loops", "optimizer_states", "epoch", "run_config") if key not in checkpoint]
    if missing:
        raise MnistlabError(
            f"{path}: cannot resume from it: it lacks {', '.join(missing)}, so it was not written by "
            "mnistlab's train.py; resume from a last.ckpt of a run (test other checkpoints with eval.py)"
        )
    saved = checkpoint["run_config"]
    for key in RESUME_MUST_MATCH:
        for name, then, now in differences(saved.get(key), config.get(key), key):
            raise MnistlabError(
                f"ckpt_path={path}: the run was trained with {name}={then!r} but this resume has "
                f"{name}={now!r}; a resume continues the same run, so repeat the run's own overrides "
                f"(see {path.parent.parent / '.hydra' / 'overrides.yaml'})"
            )
    if plans_for_run_length(saved.get("scheduler")):
        for key in RUN_LENGTH:
            then, now = saved.get("trainer", {}).get(key), config.get("trainer", {}).get(key)
            if then != now:
                raise MnistlabError(
                    f"ckpt_path={path}: the run's learning-rate schedule was planned for "
                    f"trainer.{key}={then!r}, and a resume cannot stretch it to {now!r}: keep "
                    f"trainer.{key}={then!r} (a run meant to grow trains with scheduler=none)"
                )
    return checkpoint


def plans_for_run_length(scheduler: dict[str, Any] | None) -> bool:
    """Whether the scheduler was given the run's step count (one-cycle, cosine), as base.py gives it."""
    if not scheduler or "_target_" not in scheduler:
        return False
    return any(
        arg in inspect.signature(get_class(scheduler["_target_"])).parameters for arg in RUN_LENGTH_ARGS
    )


def differences(then: Any, now: Any, name: str) -> Iterator[tuple[str, Any, Any]]:
    if name in RESUME_MAY_DIFFER:
        return
    if isinstance(then, dict) and isinstance(now, dict):
        for key in sorted(then.keys() | now.keys()):
            yield from differences(then.get(key), now.get(key), f"{name}.{key}")
    elif then != now:
        yield name, then, now


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
