"""The entry points' outer layer: every error a user can fix is printed as one line ``error: ...``.

Hydra prints its own errors (an unknown ``model=...``, a run dir it cannot create) over several lines and
wraps errors raised inside ``instantiate``; here each becomes the one line that names the problem and the fix.
"""

import errno
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import HydraException, MissingConfigException

from mnistlab.core.errors import ProcessDied, RunInterrupted, chain, user_error
from mnistlab.core.files import disk_full, is_disk_full
from mnistlab.core.ranks import end_with_the_torchrun_agent, is_rank_zero, started_by_torchrun

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
# Set beside HYDRA_FULL_ERROR by run(), so that a child process can tell it from the user's own.
ONE_LINE_ERRORS = "MNISTLAB_ONE_LINE_ERRORS"
# Where Hydra and the run make their folders: any OSError there means the folder cannot be made.
MAKING_FOLDERS = {"mkdir", "makedirs"}


def run(main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; exit with one line for the errors a user can fix.

    Under DDP every process meets the same error (a bad config, divergence, Ctrl-C): rank zero prints the line
    and carries the run's exit status; the others end quietly, with status 0, because Lightning's launcher
    SIGKILLs its main process (rank zero) within seconds of a child that exits non-zero, before rank zero has
    written its results. Under torchrun, those on the other nodes than rank zero's end quietly with status 1:
    an agent whose workers all exit 0 waits at torchrun's exit barrier for the other nodes' agents, which a
    failed node's never reaches (one was seen still waiting after 120 s); rank zero's own agent waits for it
    (an agent stops its other workers as soon as one fails). A process that died is reported by every
    survivor, rank zero possibly among the dead.
    """
    threading.excepthook = quiet_about_full_disks
    logging.Handler.handleError = handle_log_error
    end_with_the_torchrun_agent()
    try:
        run_one_process(main)
    except SystemExit as stop:
        if not isinstance(stop.code, str):
            raise
        if is_rank_zero() or isinstance(user_error(stop.__context__), ProcessDied):
            say(stop.code)
            sys.exit(1)
        sys.exit(1 if started_by_torchrun() and int(os.environ.get("GROUP_RANK") or 0) != 0 else 0)


def say(line: str) -> None:
    """An ``error:`` line, on a line of its own: a progress bar left on screen (Ctrl-C, SIGTERM, a failure
    mid-epoch) is closed first, so that the line does not run on from the bar's last text."""
    close_progress_bars()
    sys.stdout.flush()  # the bar's last line first, where both streams go to one place
    print(line, file=sys.stderr, flush=True)


def warn(line: str) -> None:
    """A ``warning:`` line while a run goes on: above the progress bars, which are drawn again below it."""
    tqdm = sys.modules.get("tqdm")  # loaded with Lightning: nothing to close before
    if tqdm is not None and tqdm.tqdm._instances:
        tqdm.tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


def close_progress_bars() -> None:
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        for bar in list(tqdm.tqdm._instances):
            bar.close()  # a bar that stays ends its line; one that goes clears it


def handle_log_error(self: logging.Handler, record: logging.LogRecord) -> None:
    """A log file (Hydra's train.log) on a full disk: the run says so in one line; logging's traceback for
    each line it cannot write would bury it. Any other logging error is printed as logging prints it."""
    if not is_disk_full(sys.exc_info()[1]):
        LOGGING_HANDLE_ERROR(self, record)


LOGGING_HANDLE_ERROR = logging.Handler.handleError


def quiet_about_full_disks(hook_args: threading.ExceptHookArgs) -> None:
    """A writer's thread (TensorBoard's) that runs out of room: the run itself says so, in one line, when it
    next writes; the thread's own traceback would only bury that line."""
    if not is_disk_full(hook_args.exc_value):
        threading.__excepthook__(hook_args)


def run_one_process(main: Callable[[], Any]) -> None:
    # The user asked for whole tracebacks, unless it was this function in a parent process: Lightning's DDP
    # children inherit the environment.
    if os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(ONE_LINE_ERRORS) != "1":
        main()
        return
    # Makes Hydra raise its errors to us instead of printing them itself.
    os.environ["HYDRA_FULL_ERROR"] = os.environ[ONE_LINE_ERRORS] = "1"
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
    if is_disk_full(error):
        filename = next((e.filename for e in chain(error) if isinstance(e, OSError) and e.filename), None)
        if filename:
            return str(disk_full(Path(filename)))
        return (
            "cannot write: a disk is full (no space left on the device); make room, or write elsewhere with "
            "paths.log_dir=... or hydra.run.dir=..."
        )
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
