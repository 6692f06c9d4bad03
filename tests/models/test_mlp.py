"""The MLP covers the tutorials' fully connected nets; bad settings name themselves."""

import pytest
from torch import nn

from mnistlab.errors import MnistlabError
from mnistlab.models import MLP

BASE = {"num_classes": 10, "input_shape": [1, 28, 28]}


def test_activations_are_per_layer():
    model = MLP(hidden_sizes=[16, 8, 4], activations=["relu", "relu", "sigmoid"], **BASE)
    kinds = [type(layer) for layer in model.net if not isinstance(layer, nn.Linear | nn.Flatten)]
    assert kinds == [nn.ReLU, nn.ReLU, nn.Sigmoid]
    assert [layer.out_features for layer in model.net if isinstance(layer, nn.Linear)] == [16, 8, 4, 10]


def test_init_std_draws_weights_from_a_normal_and_zeroes_biases():
    model = MLP(hidden_sizes=[256], init_std=0.01, **BASE)
    for layer in (m for m in model.net if isinstance(m, nn.Linear)):
        assert layer.weight.std().item() == pytest.approx(0.01, rel=0.05)
        assert not layer.bias.any()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"hidden_sizes": [8, 8], "activations": ["relu"]},
            "model.activations has 1 entries for 2 hidden layers",
        ),
        ({"activations": "swish"}, r"model.activations: unknown \['swish'\]"),
        ({"dropout": 1.0}, r"model.dropout=1.0 must lie in \[0, 1\)"),
        ({"output": "probits"}, "model.output='probits' is unknown"),
    ],
)
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(MnistlabError, match=message):
        MLP(**BASE, **settings)
