"""What each config value may be, checked as soon as the config is composed: before data or a model is built.

Hydra accepts any value for any key (``optimizer.lr=abc``), and a bad one would otherwise surface later,
deep inside torch or Lightning, or never (a negative seed makes Lightning pick a random one).
"""

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistlab.data.base import VAL_FRACTION
from mnistlab.data.function import FUNCTIONS
from mnistlab.errors import MnistlabError
from mnistlab.models.base import OUTPUTS
from mnistlab.models.mlp import ACTIVATIONS
from mnistlab.models.scratch import INITS

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


def at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: is_whole(value) and value >= low


def is_open_fraction(value: Any) -> bool:
    return is_number(value) and 0 < value < 1


def sizes(value: Any) -> bool:
    return isinstance(value, list) and all(at_least(1)(size) for size in value)


def one_of(names: Collection[str]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value in names


def activations(value: Any) -> bool:
    names = value if isinstance(value, list) else [value]
    return all(isinstance(name, str) and name in ACTIVATIONS for name in names)


RULES = (
    Rule("seed", "a whole number from 0 to 4294967295", lambda v: is_whole(v) and 0 <= v < 2**32),
    Rule("trainer.max_epochs", "a whole number >= 1", at_least(1)),
    Rule("optimizer.lr", "a number > 0", lambda v: is_number(v) and v > 0),
    Rule("optimizer.weight_decay", "a number >= 0", lambda v: is_number(v) and v >= 0),
    Rule("optimizer.momentum", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    Rule(
        "optimizer.foreach", "true, false or null (torch chooses)", lambda v: v is None or isinstance(v, bool)
    ),
    Rule("trainer.precision", f"one of {', '.join(PRECISIONS)}", lambda v: v in PRECISIONS),
    Rule("data.batch_size", "a whole number >= 1", at_least(1)),
    Rule("data.eval_batch_size", "a whole number >= 1", at_least(1)),
    Rule("data.val_fraction", "a number strictly between 0 and 1", is_open_fraction),
    Rule("data.folds", "null or a whole number >= 2", lambda v: v is None or at_least(2)(v)),
    Rule("data.fold", "null or a whole number >= 0", lambda v: v is None or at_least(0)(v)),
    Rule("data.mean", "a number", is_number),
    Rule("data.std", "a number > 0", lambda v: is_number(v) and v > 0),
    Rule("data.train_size", "a whole number >= 2", at_least(2)),
    Rule("data.test_size", "a whole number >= 1", at_least(1)),
    Rule("data.val_size", "a whole number >= 1", at_least(1)),
    Rule(
        "data.augment.max_rotation",
        "a number of degrees from 0 to 180",
        lambda v: is_number(v) and 0 <= v <= 180,
    ),
    Rule(
        "data.augment.max_shift",
        "a number in [0, 1) (a fraction of the image)",
        lambda v: is_number(v) and 0 <= v < 1,
    ),
    Rule("data.augment.max_scale", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    Rule("data.augment.horizontal_flip", "true or false", lambda v: isinstance(v, bool)),
    Rule("data.data_seed", "a whole number from 0 to 4294967295", lambda v: is_whole(v) and 0 <= v < 2**32),
    Rule("data.function", f"one of {', '.join(FUNCTIONS)}", one_of(FUNCTIONS)),
    Rule("model.dropout", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    Rule(
        "model.activations",
        f"one of {', '.join(ACTIVATIONS)}, or a list of them (one per hidden layer)",
        activations,
    ),
    Rule("model.hidden_sizes", "a list of whole numbers >= 1, e.g. [256, 128]", sizes),
    Rule("model.channels", "a list of whole numbers >= 1, e.g. [32, 64]", sizes),
    Rule("model.hidden_size", "null or a whole number >= 1", lambda v: v is None or at_least(1)(v)),
    Rule("model.label_smoothing", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    Rule("model.output", f"one of {', '.join(OUTPUTS)}", one_of(OUTPUTS)),
    Rule("model.compile", "true or false", lambda v: isinstance(v, bool)),
    Rule("model.channels_last", "true or false", lambda v: isinstance(v, bool)),
    Rule("model.convs_per_block", "a whole number >= 1", at_least(1)),
    Rule("model.init_std", "null or a number > 0", lambda v: v is None or (is_number(v) and v > 0)),
    Rule("model.init", f"one of {', '.join(INITS)}", one_of(INITS)),
    Rule("callbacks.confusion_matrix.every_n_epochs", "a whole number >= 1", at_least(1)),
    Rule("callbacks.regression_fit.every_n_epochs", "a whole number >= 1", at_least(1)),
    Rule("callbacks.ema.decay", "a number strictly between 0 and 1", is_open_fraction),
)


def validate_config(cfg: DictConfig) -> None:
    """Raise MnistlabError naming the key, its value and what is allowed, for the first value that is bad."""
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=ABSENT)
        if value is ABSENT:  # the group in use has no such key (e.g. model.dropout for model=scratch)
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not rule.accepts(value):
            raise MnistlabError(f"{rule.key}={shown(value)} is not allowed: it must be {rule.allowed}")
    check_folds(cfg)


def check_folds(cfg: DictConfig) -> None:
    """k-fold's keys only make sense together, and replace val_fraction."""
    folds, fold = OmegaConf.select(cfg, "data.folds"), OmegaConf.select(cfg, "data.fold")
    val_fraction = OmegaConf.select(cfg, "data.val_fraction", default=VAL_FRACTION)
    if folds is None and fold is not None:
        raise MnistlabError(f"data.fold={fold} needs data.folds (how many folds): e.g. data.folds=5")
    if folds is None:
        return
    if fold is None:
        raise MnistlabError(
            f"data.folds={folds} needs data.fold (which fold validates): e.g. -m 'data.fold=range({folds})'"
        )
    if fold >= folds:
        raise MnistlabError(
            f"data.fold={fold} is not allowed with data.folds={folds}: it must be 0 to {folds - 1}"
        )
    if val_fraction != VAL_FRACTION:
        raise MnistlabError(
            f"data.val_fraction={val_fraction} and data.folds={folds} both choose the validation set: "
            "drop one of them"
        )


def shown(value: Any) -> str:
    """A value as it reads in a config: strings quoted, so that `abc` and a number never look alike."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, list):
        return f"[{', '.join(shown(item) for item in value)}]"
    return repr(value) if isinstance(value, str) else str(value)
