"""One source per setting: each option's keys are the arguments of the class it targets, no more and no fewer,
and the project's classes give none of them a default (the option's file is the one place of a default)."""

import inspect

import pytest
from conftest import CONF
from hydra.utils import get_class
from omegaconf import OmegaConf

from mnistlab.run.build import MODULE_OPTIONS, TASK_OPTIONS
from mnistlab.tasks import TASKS

# What the builder (run/build.py) gives a class from elsewhere than its option: the data's shape, the seed.
FROM_THE_BUILDER = {"input_shape", "num_outputs", "shuffle_seed"}


def settings(cls: type, only_ours: bool = False) -> dict[str, inspect.Parameter]:
    """A class's keyword arguments, through the ``**kwargs`` its ``__init__`` hands to its base (with
    ``only_ours``, without those of a Lightning base)."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if only_ours and not klass.__module__.startswith("mnistlab."):
            break
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        found = {p.name: p for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} | found
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return found


def option_nodes() -> list:
    """(where, config node) of every option file whose node builds one of this project's classes."""
    found = []
    for path in sorted(CONF.rglob("*.yaml")):
        group = path.parent.relative_to(CONF).as_posix()
        if group.split("/")[0] not in ("data", "model", "callbacks", "logger"):
            continue
        node = OmegaConf.to_container(OmegaConf.load(path))
        entries = [node] if "_target_" in node or group.startswith(("data", "model")) else node.values()
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("_target_", "")).startswith("mnistlab."):
                found.append(pytest.param(group, entry, id=f"{group}/{path.stem}:{entry['_target_']}"))
    return found


def composed_keys(group: str, entry: dict) -> set[str]:
    """The option's keys once its defaults (conf/shared/) are merged in."""
    keys = set(entry) - {"_target_", "defaults"}
    if group == "model":
        keys |= set(OmegaConf.load(CONF / "shared" / "model.yaml"))
    if group == "data" and entry["_target_"].endswith(("MNISTDataModule", "RingsDataModule")):
        keys |= set(OmegaConf.load(CONF / "shared" / "split.yaml"))
    if group == "data" and entry["_target_"].endswith("MNISTDataModule"):
        keys.add("augment")  # a group of its own, data/augment
    return keys


@pytest.mark.parametrize(("group", "entry"), option_nodes())
def test_an_options_keys_are_its_classes_arguments_and_none_has_a_default(group, entry):
    cls = get_class(entry["_target_"])
    accepted = settings(cls)
    keys = composed_keys(group, entry)
    if group == "model":  # the net's, and what the module and the task take from model.*
        keys -= {*TASK_OPTIONS, *MODULE_OPTIONS}
    # A Lightning class with a change of ours keeps Lightning's arguments and defaults.
    if not getattr(cls.__init__, "__module__", "").startswith("mnistlab."):
        assert keys <= set(accepted)
        return
    own = settings(cls, only_ours=True)
    # Ours without a default, each in the option; a Lightning base's (through **kwargs) keep Lightning's.
    assert set(own) - FROM_THE_BUILDER <= keys <= set(accepted) - FROM_THE_BUILDER
    assert not [name for name, p in own.items() if p.default is not p.empty], "a default in the class"


def test_the_model_options_that_are_not_the_nets_go_to_every_task_and_the_module():
    shared = set(OmegaConf.load(CONF / "shared" / "model.yaml"))
    assert shared == {*TASK_OPTIONS, *MODULE_OPTIONS}
    for task in TASKS.values():
        assert set(TASK_OPTIONS) <= set(settings(task)), task
