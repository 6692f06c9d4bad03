"""The entry points' outer layer: every error a user can fix is printed as one line ``error: ...``.

Hydra prints its own errors (an unknown ``model=...``, a run dir it cannot create) over several lines and
wraps errors raised inside ``instantiate``; here each becomes the one line that names the problem and the fix.
"""

import errno
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from hydra.errors import HydraException, MissingConfigException

from mnistlab.errors import RunInterrupted, user_error

# Errors that mean "this folder cannot take our files", as opposed to a bug.
CANNOT_WRITE = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.ENOTDIR,
    errno.EEXIST,
}
# Where Hydra and the run make their folders: any OSError there means the folder cannot be made.
MAKING_FOLDERS = {"mkdir", "makedirs"}


def run(main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; exit with one line for the errors a user can fix."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":  # the user asked for whole tracebacks
        main()
        return
    # Makes Hydra raise its errors to us instead of printing them itself.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except KeyboardInterrupt as stop:  # a RunInterrupted says where the run got to; a bare one came before it
        sys.exit(f"error: {stop}" if isinstance(stop, RunInterrupted) else "error: interrupted by Ctrl-C")
    except Exception as error:
        message = one_line(error)
        if message is None:
            raise
        sys.exit(f"error: {message}")


def one_line(error: BaseException) -> str | None:
    if (mistake := user_error(error)) is not None:
        return str(mistake)
    if isinstance(error, MissingConfigException) and error.options is not None and error.missing_cfg_file:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return f"{group}={name} is unknown: choose one of {', '.join(sorted(error.options))}"
    if isinstance(error, HydraException):
        text = str(error).split("Config search path")[0]
        return " ".join(text.split())
    if isinstance(error, OSError) and error.filename and cannot_write(error):
        return (
            f"cannot write {error.filename} ({error.strerror}): choose a folder that can be created and "
            "written with paths.log_dir=... or hydra.run.dir=..."
        )
    return None


def cannot_write(error: OSError) -> bool:
    if error.errno in CANNOT_WRITE:
        return True
    frames = traceback.extract_tb(error.__traceback__)
    return any(frame.name in MAKING_FOLDERS for frame in frames)
