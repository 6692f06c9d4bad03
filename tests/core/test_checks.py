"""Bad config values are refused before any data is read: the keys of classes that are not ours when the
config is composed (core/checks.py), every other by the class it configures, as it is built."""

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from mnistlab.commands.train import train
from mnistlab.core.checks import RULES, check_config
from mnistlab.core.cli import one_line
from mnistlab.core.errors import MnistlabError
from mnistlab.run.build import build_datamodule, build_model, training_callbacks

NUMBER = "a number > 0"
WHOLE = "a whole number >= 1"
BAD = [  # override, the value as the message shows it, what the message says is allowed
    ("optimizer.lr=0", "0", NUMBER),
    ("optimizer.lr=-0.1", "-0.1", NUMBER),
    ("optimizer.lr=abc", "'abc'", NUMBER),
    ("optimizer.lr=nan", "nan", NUMBER),
    ("optimizer.weight_decay=-1", "-1", "a number >= 0"),
    ("trainer.max_epochs=0", "0", WHOLE),
    ("trainer.max_epochs=2.5", "2.5", WHOLE),
    ("seed=-1", "-1", "a whole number from 0 to 4294967295"),
    ("optimizer.foreach=maybe", "'maybe'", "true, false or null (the fastest)"),
    ("trainer.precision=bf16", "'bf16'", "one of 32-true, bf16-mixed, 16-mixed, bf16-true, 16-true, 64-true"),
]


@pytest.mark.parametrize(("override", "shown", "allowed"), BAD)
def test_a_bad_value_is_refused_naming_key_value_and_what_is_allowed(compose_cfg, override, shown, allowed):
    cfg = compose_cfg("model=mlp", override)
    with pytest.raises(MnistlabError) as error:
        check_config(cfg)
    key = override.split("=")[0]
    assert str(error.value) == f"{key}={shown} is not allowed: it must be {allowed}"


def test_sgds_momentum_is_a_fraction(compose_cfg):
    with pytest.raises(MnistlabError, match=r"^optimizer.momentum=1 is not allowed: it must be a number in"):
        check_config(compose_cfg("optimizer=sgd", "optimizer.momentum=1"))


def every_config() -> list[list[str]]:
    """One composition per option of every group (experiments, sweeps and debug modes included)."""
    found = []
    for path in sorted(CONF.rglob("*.yaml")):
        group = path.parent.relative_to(CONF).as_posix()
        if group in (".", "shared") or group.startswith("hydra"):
            continue
        option = path.relative_to(CONF / group.split("/")[0]).with_suffix("").as_posix()
        found.append(
            [f"{group.split('/')[0]}={option}"]
            if "/" not in group or group.startswith("experiment")
            else [f"{group}={path.stem}"]
        )
    return found


def leaves(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict):
            keys |= leaves(value, f"{prefix}{key}.")
    return keys


def test_every_rule_names_a_key_that_some_config_has(compose_cfg):
    """A rule whose key is absent is skipped at run time (optimizer.momentum for adam): a renamed key must
    fail here instead of switching its check off."""
    keys = set()
    for overrides in every_config():
        keys |= leaves(OmegaConf.to_container(compose_cfg(*overrides)))
    assert not [rule.key for rule in RULES if rule.key not in keys]


# Checked by the classes that take them: the datamodule, the net, the task, the figures, the EMA.
BUILT = [  # overrides, the one line
    (["data.batch_size=0"], "data.batch_size=0 is not allowed: it must be greater than or equal to 1"),
    (["data.batch_size=true"], "data.batch_size=true is not allowed: it must be a whole number"),
    (["data.val_fraction=1.5"], "data.val_fraction=1.5 is not allowed: it must be less than 1"),
    (["data.std=0"], "data.std=0 is not allowed: it must be greater than 0"),
    (
        ["data.dataset=cifar"],
        "data.dataset='cifar' is not allowed: it must be 'mnist', 'fashion_mnist' or 'kmnist'",
    ),
    (
        ["data.augment.max_rotation=200"],
        "data.augment.max_rotation=200 is not allowed: it must be less than or equal to 180",
    ),
    (["data.augment.max_shift=1"], "data.augment.max_shift=1 is not allowed: it must be less than 1"),
    (
        ["data.augment.horizontal_flip=sometimes"],
        "data.augment.horizontal_flip='sometimes' is not allowed: it must be true or false",
    ),
    (["data.folds=1", "data.fold=0"], "data.folds=1 is not allowed: it must be greater than or equal to 2"),
    (["data.folds=5", "data.fold=-1"], "data.fold=-1 is not allowed: it must be greater than or equal to 0"),
    (["data.folds=5", "data.fold=5"], "data.fold=5 is not allowed with data.folds=5: it must be 0 to 4"),
    (["data.fold=2"], "data.fold=2 needs data.folds (how many folds): e.g. data.folds=5"),
    (["data.folds=5"], "data.folds=5 needs data.fold (which fold validates): e.g. -m 'data.fold=range(5)'"),
    (["model.dropout=1"], "model.dropout=1 is not allowed: it must be less than 1"),
    (["model.dropout=-0.1"], "model.dropout=-0.1 is not allowed: it must be greater than or equal to 0"),
    (
        ["model.compile=yes"],
        "model.compile='yes' is not allowed: it must be true or false, or 'default', 'reduce-overhead' or "
        "'max-autotune'",
    ),
    (["model.label_smoothing=1"], "model.label_smoothing=1 is not allowed: it must be less than 1"),
    (
        ["model=cnn", "model.convs_per_block=0"],
        "model.convs_per_block=0 is not allowed: it must be greater than or equal to 1",
    ),
    (
        ["model=cnn", "model.channels_last=nhwc"],
        "model.channels_last='nhwc' is not allowed: it must be true or false",
    ),
    (
        ["model=cnn", "model.hidden_size=0"],
        "model.hidden_size=0 is not allowed: it must be greater than or equal to 1",
    ),
    (
        ["model=cnn", "model.channels=[8,0]"],
        "model.channels[1]=0 is not allowed: it must be greater than or equal to 1",
    ),
    (
        ["model=scratch", "model.init=[uniform]"],
        "model.init=['uniform'] is not allowed: it must be 'he' or 'uniform'",
    ),
    (
        ["callbacks.confusion_matrix.every_n_epochs=0"],
        "callbacks.confusion_matrix.every_n_epochs=0 is not allowed: it must be greater than or equal to 1",
    ),
    (
        ["callbacks.predictions.num_images=0"],
        "callbacks.predictions.num_images=0 is not allowed: it must be greater than or equal to 1",
    ),
    (
        ["callbacks=ema", "callbacks.ema.decay=1"],
        "callbacks.ema.decay=1 is not allowed: it must be less than 1",
    ),
    (
        ["callbacks=ema", "callbacks.ema.decay=high"],
        "callbacks.ema.decay='high' is not allowed: it must be a number",
    ),
    (
        ["data=function", "data.function=tan"],
        "data.function='tan' is not allowed: it must be 'square', 'cubic' or 'sine'",
    ),
    (
        ["data=function", "data.data_seed=-1"],
        "data.data_seed=-1 is not allowed: it must be greater than or equal to 0",
    ),
    (
        ["data=rings", "data.train_size=0"],
        "data.train_size=0 is not allowed: it must be greater than or equal to 1",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BUILT, ids=[" ".join(o) for o, _ in BUILT])
def test_a_bad_setting_stops_the_run_before_any_data_is_read(compose_cfg, tmp_path, overrides, message):
    cfg = compose_cfg("model=mlp", *overrides, f"paths.data_dir={tmp_path / 'no_data_here'}")
    with pytest.raises(MnistlabError) as error:
        train(cfg)
    assert str(error.value) == message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_check_comes_before_the_data_is_read(compose_cfg, tmp_path):
    cfg = compose_cfg("model=mlp", "optimizer.lr=-1", f"data.data_dir={tmp_path / 'no_data_here'}")
    with pytest.raises(MnistlabError, match=r"optimizer.lr=-1 is not allowed"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("overrides", every_config(), ids=" ".join)
def test_every_shipped_config_passes_its_checks(compose_cfg, overrides):
    images_only = ["model=mlp"] if overrides[0].startswith("data=") else []  # cnn, the default, needs images
    cfg = compose_cfg(*images_only, *overrides)
    check_config(cfg)
    datamodule = build_datamodule(cfg)  # no data is read
    build_model(cfg, datamodule)
    training_callbacks(cfg)


def every_option(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "name"), [("model", "transformer"), ("optimizer", "adamm")])
def test_an_unknown_group_option_lists_the_choices_in_one_line(group, name):
    GlobalHydra.instance().clear()
    with (
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
        pytest.raises(MissingConfigException) as error,
    ):
        compose("train", overrides=[f"{group}={name}"])
    GlobalHydra.instance().clear()
    choices = ", ".join(every_option(group))
    assert one_line(error.value) == f"{group}={name} is unknown: choose one of {choices}"
