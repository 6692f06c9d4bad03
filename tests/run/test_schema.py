"""Bad config values are refused when the config is composed, before any data is read or model built."""

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException

from mnistlab.errors import MnistlabError
from mnistlab.run.cli import one_line
from mnistlab.run.schema import validate_config
from mnistlab.run.train import train

NUMBER = "a number > 0"
WHOLE = "a whole number >= 1"
FRACTION = "a number strictly between 0 and 1"
NAMES = "one of relu, sigmoid, tanh, gelu, leaky_relu, or a list of them (one per hidden layer)"
BAD = [  # override, the value as the message shows it, what the message says is allowed
    ("optimizer.lr=0", "0", NUMBER),
    ("optimizer.lr=-0.1", "-0.1", NUMBER),
    ("optimizer.lr=abc", "'abc'", NUMBER),
    ("optimizer.lr=nan", "nan", NUMBER),
    ("trainer.max_epochs=0", "0", WHOLE),
    ("trainer.max_epochs=2.5", "2.5", WHOLE),
    ("data.batch_size=0", "0", WHOLE),
    ("data.batch_size=true", "true", WHOLE),
    ("data.val_fraction=0", "0", FRACTION),
    ("data.val_fraction=1", "1", FRACTION),
    ("data.val_fraction=1.5", "1.5", FRACTION),
    ("model.dropout=1", "1", "a number in [0, 1)"),
    ("model.dropout=-0.1", "-0.1", "a number in [0, 1)"),
    ("model.activations=swish", "'swish'", NAMES),
    ("model.activations=[relu,swish]", "['relu', 'swish']", NAMES),
    ("seed=-1", "-1", "a whole number from 0 to 4294967295"),
    ("callbacks.confusion_matrix.every_n_epochs=0", "0", WHOLE),
    ("optimizer.foreach=maybe", "'maybe'", "true, false or null (torch chooses)"),
    ("model.compile=yes", "'yes'", "true or false"),
    ("model.label_smoothing=1", "1", "a number in [0, 1)"),
    ("model.label_smoothing=-0.1", "-0.1", "a number in [0, 1)"),
    ("data.augment.max_rotation=200", "200", "a number of degrees from 0 to 180"),
    ("data.augment.max_shift=1", "1", "a number in [0, 1) (a fraction of the image)"),
    ("data.augment.max_scale=-0.1", "-0.1", "a number in [0, 1)"),
    ("data.augment.horizontal_flip=sometimes", "'sometimes'", "true or false"),
    ("trainer.precision=bf16", "'bf16'", "one of 32-true, bf16-mixed, 16-mixed, bf16-true, 16-true, 64-true"),
]


@pytest.mark.parametrize(("override", "shown", "allowed"), BAD)
def test_a_bad_value_is_refused_naming_key_value_and_what_is_allowed(compose_cfg, override, shown, allowed):
    cfg = compose_cfg("model=mlp", override)
    with pytest.raises(MnistlabError) as error:
        validate_config(cfg)
    key = override.split("=")[0]
    assert str(error.value) == f"{key}={shown} is not allowed: it must be {allowed}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.folds=1", "data.fold=0"],
            "data.folds=1 is not allowed: it must be null or a whole number >= 2",
        ),
        (
            ["data.folds=5", "data.fold=-1"],
            "data.fold=-1 is not allowed: it must be null or a whole number >= 0",
        ),
        (["data.folds=5", "data.fold=5"], "data.fold=5 is not allowed with data.folds=5: it must be 0 to 4"),
        (["data.fold=2"], "data.fold=2 needs data.folds (how many folds): e.g. data.folds=5"),
        (
            ["data.folds=5"],
            "data.folds=5 needs data.fold (which fold validates): e.g. -m 'data.fold=range(5)'",
        ),
        (
            ["data.folds=5", "data.fold=0", "data.val_fraction=0.2"],
            "data.val_fraction=0.2 and data.folds=5 both choose the validation set: drop one of them",
        ),
    ],
)
def test_bad_k_fold_settings_are_one_line_naming_the_keys(compose_cfg, overrides, message):
    with pytest.raises(MnistlabError) as error:
        validate_config(compose_cfg("model=mlp", *overrides))
    assert str(error.value) == message


def test_k_fold_settings_that_fit_are_accepted(compose_cfg):
    validate_config(compose_cfg("data.folds=5", "data.fold=4"))
    validate_config(compose_cfg("data=rings", "data.folds=2", "data.fold=0"))


# The keys of data=function, model.init (model=scratch) and the fit figure, with the group that has them.
BAD_REGRESSION = [
    ("data.function=tan", "'tan'", "one of square, cubic, sine"),
    ("data.val_size=0", "0", WHOLE),
    ("data.data_seed=-1", "-1", "a whole number from 0 to 4294967295"),
    ("model.init=[uniform]", "['uniform']", "one of he, uniform"),
    ("callbacks.regression_fit.every_n_epochs=0", "0", WHOLE),
]


@pytest.mark.parametrize(("override", "shown", "allowed"), BAD_REGRESSION)
def test_a_bad_regression_value_is_refused_too(compose_cfg, override, shown, allowed):
    cfg = compose_cfg("data=function", "model=scratch", override)
    with pytest.raises(MnistlabError) as error:
        validate_config(cfg)
    assert str(error.value) == f"{override.split('=')[0]}={shown} is not allowed: it must be {allowed}"


@pytest.mark.parametrize("decay", ["1", "0", "-0.5", "high"])
def test_the_ema_decay_is_a_fraction(compose_cfg, decay):
    with pytest.raises(MnistlabError, match=rf"callbacks.ema.decay=.* it must be {FRACTION}"):
        validate_config(compose_cfg("callbacks=ema", f"callbacks.ema.decay={decay}"))


def test_cnn_dropout_is_checked_too(compose_cfg):
    with pytest.raises(MnistlabError, match=r"model.dropout=1.5 is not allowed"):
        validate_config(compose_cfg("model=cnn", "model.dropout=1.5"))


def test_cnn_convs_per_block_is_a_whole_number(compose_cfg):
    with pytest.raises(
        MnistlabError, match=r"model.convs_per_block=0 is not allowed: it must be a whole number >= 1"
    ):
        validate_config(compose_cfg("model=cnn", "model.convs_per_block=0"))


def test_cnn_channels_last_is_true_or_false(compose_cfg):
    with pytest.raises(
        MnistlabError, match=r"model.channels_last='nhwc' is not allowed: it must be true or false"
    ):
        validate_config(compose_cfg("model=cnn", "model.channels_last=nhwc"))


def test_cnn_hidden_size_is_null_or_a_size(compose_cfg):
    validate_config(compose_cfg("model=cnn", "model.hidden_size=null"))
    with pytest.raises(MnistlabError, match=r"model.hidden_size=0 is not allowed: it must be null or"):
        validate_config(compose_cfg("model=cnn", "model.hidden_size=0"))


def test_the_check_comes_before_the_data_is_read(compose_cfg, tmp_path):
    cfg = compose_cfg("model=mlp", "optimizer.lr=-1", f"data.data_dir={tmp_path / 'no_data_here'}")
    with pytest.raises(MnistlabError, match=r"optimizer.lr=-1 is not allowed"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def every_option(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


GROUPS = ("experiment", "model", "optimizer", "scheduler", "data")


@pytest.mark.parametrize("override", [f"{group}={name}" for group in GROUPS for name in every_option(group)])
def test_every_shipped_config_passes(compose_cfg, override):
    validate_config(compose_cfg(override))


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
