"""Files written whole or not at all: through a temporary file in the target's folder, then a rename."""

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mnistlab.core.errors import MnistlabError, chain

# Read once: the umask can only be read by setting it, which is not safe once threads run.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# What is left on a file system whose write just failed for want of room: less than this. (torch's zip writer
# reports a failed write as its own RuntimeError, so the free space is the sign.)
NEARLY_FULL = 1 << 20


class DiskFull(MnistlabError):
    """A file that its disk had no room for."""


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error``, or what it was raised from or during, says a disk or quota is full."""
    return any(
        (isinstance(e, OSError) and e.errno in DISK_FULL)
        or "No space left on device" in str(e)
        or "database or disk is full" in str(e)
        for e in chain(error)
    )


def free_bytes(path: Path) -> int:
    """The room left on the file system that holds ``path`` (or the nearest folder above it that exists)."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def disk_full(path: Path) -> DiskFull:
    return DiskFull(
        f"cannot write {path}: its disk is full ({size(free_bytes(path))} free); make room there, or write "
        "elsewhere with paths.log_dir=... or hydra.run.dir=... (a training run then goes on from its "
        "last.ckpt with ckpt_path=last)"
    )


def size(count: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError  # the loop returns


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write ``path`` through; it replaces ``path`` only once written whole and synced.

    Whatever goes wrong, the temporary file is removed and ``path`` keeps what it held; a disk without room
    is a DiskFull naming ``path``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A leading dot keeps the temporary file out of searches such as Lightning's for `last*.ckpt`.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise (disk_full(path) if is_disk_full(error) else error) from error
    try:
        with os.fdopen(fd, mode) as file:
            os.fchmod(file.fileno(), 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from others
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        full = isinstance(error, OSError | RuntimeError) and (
            is_disk_full(error) or free_bytes(path.parent) < NEARLY_FULL
        )
        Path(tmp_name).unlink(missing_ok=True)
        if full:
            raise disk_full(path) from error
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as file:
        json.dump(data, file, indent=2)
        file.write("\n")
