"""The entry points' outer layer: every error a user can fix is printed as one line ``error: ...``.

Hydra prints its own errors (an unknown ``model=...``, a run dir it cannot create) over several lines and
wraps errors raised inside ``instantiate``; here each becomes the one line that names the problem and the fix.
"""

import errno
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from hydra.errors import HydraException, MissingConfigException

from mnistlab.distributed import ProcessDied, is_rank_zero
from mnistlab.errors import MnistlabError
from mnistlab.interruptions import RunInterrupted

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


def run(main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; exit with one line for the errors a user can fix.

    Under DDP every process meets the same error (a bad config, divergence, Ctrl-C): rank zero prints the line
    and carries the run's exit status; the others end quietly, with status 0, because Lightning's launcher
    SIGKILLs its main process (rank zero) within seconds of a child that exits non-zero, before rank zero has
    written its results. A process that died is reported by every survivor, rank zero possibly among the dead.
    """
    try:
        run_one_process(main)
    except SystemExit as stop:
        if (
            is_rank_zero()
            or not isinstance(stop.code, str)
            or any(isinstance(cause, ProcessDied) for cause in causes(stop.__context__))
        ):
            raise
        sys.exit(0)


def run_one_process(main: Callable[[], Any]) -> None:
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
    for cause in causes(error):
        if isinstance(cause, MnistlabError):
            return str(cause)
    if isinstance(error, MissingConfigException) and error.options is not None and error.missing_cfg_file:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return f"{group}={name} is unknown: choose one of {', '.join(sorted(error.options))}"
    if isinstance(error, HydraException):
        text = str(error).split("Config search path")[0]
        return " ".join(text.split())
    if isinstance(error, OSError) and error.errno in CANNOT_WRITE and error.filename:
        return (
            f"cannot write {error.filename} ({error.strerror}): choose a writable folder with "
            "paths.log_dir=... or hydra.run.dir=..."
        )
    return None


def causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__
