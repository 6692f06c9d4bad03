"""The MLP covers the tutorials' fully connected nets; bad settings name themselves."""

import pytest
from torch import nn

from mnistlab.core.errors import MnistlabError
from mnistlab.run.build import build_datamodule, build_model


def net_of(compose_cfg, *overrides: str) -> nn.Module:
    cfg = compose_cfg("model=mlp", *overrides)
    return build_model(cfg, build_datamodule(cfg)).net


def test_activations_are_per_layer(compose_cfg):
    net = net_of(compose_cfg, "model.hidden_sizes=[16,8,4]", "model.activations=[relu,relu,sigmoid]")
    kinds = [type(layer) for layer in net if not isinstance(layer, nn.Linear | nn.Flatten)]
    assert kinds == [nn.ReLU, nn.ReLU, nn.Sigmoid]
    assert [layer.out_features for layer in net if isinstance(layer, nn.Linear)] == [16, 8, 4, 10]


def test_init_std_draws_weights_from_a_normal_and_zeroes_biases(compose_cfg):
    net = net_of(compose_cfg, "model.hidden_sizes=[256]", "model.init_std=0.01")
    for layer in (m for m in net if isinstance(m, nn.Linear)):
        assert layer.weight.std().item() == pytest.approx(0.01, rel=0.05)
        assert not layer.bias.any()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.hidden_sizes=[8,8]", "model.activations=[relu]"],
            "model.activations has 1 entries for 2 hidden layers: give one name, or one per hidden layer",
        ),
        (
            ["model.activations=swish"],
            "model.activations='swish' is not allowed: it must be "
            "'relu', 'sigmoid', 'tanh', 'gelu' or 'leaky_relu'",
        ),
        (
            ["model.activations=[relu,swish]"],
            "model.activations[1]='swish' is not allowed: it must be "
            "'relu', 'sigmoid', 'tanh', 'gelu' or 'leaky_relu'",
        ),
        (["model.dropout=1.0"], "model.dropout=1.0 is not allowed: it must be less than 1"),
        (["model.dropout=abc"], "model.dropout='abc' is not allowed: it must be a number"),
        (
            ["model.hidden_sizes=[8,0]"],
            "model.hidden_sizes[1]=0 is not allowed: it must be greater than or equal to 1",
        ),
        (["model.init_std=0"], "model.init_std=0 is not allowed: it must be greater than 0"),
        (["model.batch_norm=yes"], "model.batch_norm='yes' is not allowed: it must be true or false"),
        (
            ["model.output=probits"],
            "model.output='probits' is not allowed: it must be 'logits', 'log_softmax' or 'softmax'",
        ),
        (["+model.width=3"], "model.width is not a setting here"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_its_value_and_what_is_allowed(compose_cfg, overrides, message):
    with pytest.raises(MnistlabError) as error:
        net_of(compose_cfg, *overrides)
    assert str(error.value).startswith(message)
