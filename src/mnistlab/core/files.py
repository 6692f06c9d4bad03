"""Files written whole or not at all: through a temporary file in the target's folder, then a rename."""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# Read once: the umask can only be read by setting it, which is not safe once threads run.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write ``path`` through; it replaces ``path`` only once written whole and synced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps the temporary file out of searches such as Lightning's for `last*.ckpt`.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as file:
            os.fchmod(file.fileno(), 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from others
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as file:
        json.dump(data, file, indent=2)
        file.write("\n")
