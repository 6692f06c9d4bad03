"""What a user is told when something stops a run: one line that names the problem and the fix.

Torch-free on purpose: the entry points import it before they know whether a run will start.
"""

from collections.abc import Iterator

from hydra.errors import InstantiationException


class MnistlabError(Exception):
    """A problem the user can fix; its message is one line that names the problem and the fix.

    Entry points print it without a traceback.
    """


class ProcessDied(MnistlabError):
    """Another process of a DDP run is gone; every survivor says so (rank zero may be the one that died)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run; metrics.json says how far it got.

    A KeyboardInterrupt, not an Exception: it must end a sweep, as Ctrl-C does, not be recorded as one failed
    job (Lightning ignores Ctrl-C from then on, so the sweep could not be stopped again).
    """


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """The error, then what it was raised from: Hydra wraps errors raised inside ``instantiate``."""
    while error is not None:
        yield error
        error = error.__cause__


def chain(error: BaseException | None) -> Iterator[BaseException]:
    """The error, then what it was raised from or while handling, as far as they go."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        yield error
        error = error.__cause__ or error.__context__


def is_ctrl_c(error: BaseException) -> bool:
    """Whether Ctrl-C is what raised ``error``: a KeyboardInterrupt that the code it stopped turned into
    another error. OmegaConf's ``flag_override``, stopped halfway through Hydra's composing a config, fails in
    its own clean-up, and Hydra raises a ConfigCompositionException (or an UnboundLocalError) for a Ctrl-C."""
    return any(isinstance(cause, KeyboardInterrupt) for cause in chain(error))


def user_error(error: BaseException) -> MnistlabError | None:
    """The MnistlabError behind ``error``, if a user's mistake is what raised it."""
    return next((cause for cause in causes(error) if isinstance(cause, MnistlabError)), None)


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else ""


def describe(error: BaseException) -> str:
    """One line: the message alone for a user's mistake, with the exception's type for anything else."""
    if (mistake := user_error(error)) is not None:
        return str(mistake)
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__  # Hydra's wrapper says only "Error in call to target ..."
    message = first_line(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
