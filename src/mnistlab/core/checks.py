"""What each config value may be, each fact in one place, reported as one line naming key, value and rule.

The project's own classes (datamodules, nets, tasks, callbacks) check their arguments in their signatures:
``@checked`` validates them against their annotations (``Fraction``, ``Literal[...]``, ...) when the class is
built, before any data is read. Keys of classes that are not ours (the optimizer, the trainer, the seed) are
checked by ``RULES`` as soon as the config is composed: Hydra accepts any value for any key
(``optimizer.lr=abc``), and a bad one would otherwise surface deep inside torch or Lightning, or never (a
negative seed makes Lightning pick a random one).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from omegaconf import DictConfig, OmegaConf
from pydantic import ConfigDict, Field, ValidationError, validate_call

from mnistlab.core.errors import MnistlabError
from mnistlab.core.ranks import check_launched_processes

# Strict: a string is no number and true is no 1. Arbitrary types: a net or a tensor may be an argument too.
checked = validate_call(config=ConfigDict(strict=True, arbitrary_types_allowed=True))

Fraction = Annotated[float, Field(ge=0, lt=1)]  # dropout, label smoothing, a shift of the image
OpenFraction = Annotated[float, Field(gt=0, lt=1)]  # a share of the data, a decay
Positive = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]

ABSENT = object()
# Lightning's names; its own error for another value comes only once the trainer is built.
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


@dataclass(frozen=True)
class Rule:
    key: str
    allowed: str  # completes "it must be ..."
    accepts: Callable[[Any], bool]


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


RULES = (
    Rule("seed", "a whole number from 0 to 4294967295", lambda v: is_whole(v) and 0 <= v < 2**32),
    Rule("trainer.max_epochs", "a whole number >= 1", lambda v: is_whole(v) and v >= 1),
    Rule("trainer.precision", f"one of {', '.join(PRECISIONS)}", lambda v: v in PRECISIONS),
    Rule(
        "trainer.barebones",
        "false: barebones turns off the logging every run's results come from (val/loss picks the best "
        "checkpoint, test/acc fills metrics.json); for the least overhead set callbacks=none logger=none "
        "trainer.enable_progress_bar=false trainer.enable_model_summary=false",
        lambda v: v is False,
    ),
    Rule("optimizer.lr", "a number > 0", lambda v: is_number(v) and v > 0),
    Rule("optimizer.weight_decay", "a number >= 0", lambda v: is_number(v) and v >= 0),
    Rule("optimizer.momentum", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    Rule(
        "optimizer.foreach", "true, false or null (the fastest)", lambda v: v is None or isinstance(v, bool)
    ),
    Rule("optimizer.fused", "true, false or null (the fastest)", lambda v: v is None or isinstance(v, bool)),
)


def check_config(cfg: DictConfig) -> None:
    """Raise MnistlabError naming the key, its value and what is allowed, for the first value that is bad.

    A rule whose key the config lacks is skipped (``optimizer.momentum`` for ``optimizer=adam``);
    tests/core/test_checks.py fails for a rule whose key no config has. Then the processes a launcher
    started must be the trainer's.
    """
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=ABSENT)
        if value is ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not rule.accepts(value):
            raise MnistlabError(f"{rule.key}={shown(value)} is not allowed: it must be {rule.allowed}")
    trainer = cfg.get("trainer") or {}
    check_launched_processes(trainer.get("devices"), trainer.get("num_nodes", 1))


# pydantic's words for a wrong type, in a config's words.
TYPE_NAMES = {
    "a valid integer": "a whole number",
    "a valid number": "a number",
    "a valid boolean": "true or false",
    "a valid string": "text",
    "a valid list": "a list",
}


def not_allowed(error: ValidationError, prefix: str) -> MnistlabError:
    """A signature's check that failed, as one line:
    ``model.dropout=1 is not allowed: it must be less than 1``.

    ``prefix`` is where the arguments sit in the config (``model``, ``data.augment``).
    """
    # pydantic names a union's members in the path by their types ("bool", "list[...]"): the path is the
    # argument and the indices into it.
    failures = [(e, [e["loc"][0], *(p for p in e["loc"][1:] if isinstance(p, int))]) for e in error.errors()]
    # The deepest: of a value that may be a name or a list of names, the list's bad item. At one depth, the
    # union's members: what each would take.
    depth = max(len(path) for _, path in failures)
    deepest = [(failure, path) for failure, path in failures if len(path) == depth]
    first, path = deepest[0]
    key = f"{prefix}.{path[0]}" + "".join(f"[{item}]" for item in path[1:])
    if first["type"] == "unexpected_keyword_argument":
        return MnistlabError(
            f"{key} is not a setting here: remove it (--cfg job shows the settings there are)"
        )
    if first["type"] == "missing_keyword_argument":
        return MnistlabError(f"{key} is missing: set {key}=...")
    expected = ", or ".join(dict.fromkeys(expectation(failure) for failure, _ in deepest))
    return MnistlabError(f"{key}={shown(first['input'])} is not allowed: it must be {expected}")


def expectation(failure: dict[str, Any]) -> str:
    """What pydantic says a value should be, in a config's words."""
    expected = failure["msg"].removeprefix("Input should be ")
    return TYPE_NAMES.get(expected.split(",")[0], expected)


def shown(value: Any) -> str:
    """A value as it reads in a config: strings quoted, so that `abc` and a number never look alike."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, list | tuple):
        return f"[{', '.join(shown(item) for item in value)}]"
    return repr(value) if isinstance(value, str) else str(value)
