"""Regression in the model family: the task, the output width and the loss come from the datamodule."""

import re

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException

from mnistlab.errors import user_error
from mnistlab.run.train import build_datamodule, build_model

REGRESSION = ("data=function", "data.train_size=200", "data.val_size=100", "data.test_size=100")


@pytest.mark.parametrize("model", ["mlp", "scratch"])
def test_a_net_for_the_function_data_has_one_output_an_mse_loss_and_no_accuracy(compose_cfg, model):
    cfg = compose_cfg(*REGRESSION, f"model={model}", "model.hidden_sizes=[16]")
    datamodule = build_datamodule(cfg)
    net = build_model(cfg, datamodule)
    x, y = datamodule.val_set.inputs, datamodule.val_set.labels
    out = net(x)
    assert out.shape == (100, 1)
    assert net.loss_fn(out, y).item() == pytest.approx(((out - y) ** 2).mean().item())
    assert net.loss_fn is F.mse_loss
    assert (net.hparams.task, net.hparams.num_outputs) == ("regression", 1)
    metrics = {name for name, _ in net.named_modules()}
    assert not {"train_acc", "val_acc", "test_acc", "test_acc_per_class", "val_acc_best"} & metrics
    _, outputs, _ = net._evaluation_step((x, y))
    assert set(outputs) == {"preds"} and torch.equal(outputs["preds"], out)


def test_the_classifier_keeps_its_loss_and_metrics(compose_cfg):
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[16]")
    net = build_model(cfg, build_datamodule(cfg))
    assert net.loss_fn is F.cross_entropy and net.hparams.task == "classification"
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert {"train_acc", "val_acc_best", "test_acc_per_class"} <= {name for name, _ in net.named_modules()}


def test_scratch_uniform_init_draws_weights_from_minus_one_to_one_and_zero_biases(compose_cfg):
    cfg = compose_cfg(*REGRESSION, "model=scratch", "model.hidden_sizes=[1000]", "model.init=uniform")
    torch.manual_seed(0)  # the ends of 1,000 draws reach past ±0.99 but for 1 draw in 150; not for this seed
    net = build_model(cfg, build_datamodule(cfg))
    assert [tuple(w.shape) for w in net.weights] == [(1, 1000), (1000, 1)]
    for weight in net.weights:
        assert -1 <= weight.min() < -0.99 and 0.99 < weight.max() < 1
    assert all(not bias.any() for bias in net.biases)
    he = build_model(
        cfg2 := compose_cfg(*REGRESSION, "model=scratch", "model.hidden_sizes=[1000]"), build_datamodule(cfg2)
    )
    assert he.weights[1].std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model=mlp", "model.output=log_softmax"), r"model.output='log_softmax' is for classification"),
        (
            ("model=cnn",),
            r"model=cnn needs images .* inputs have shape \(1,\): use model=mlp or model=scratch",
        ),
    ],
)
def test_a_model_that_does_not_fit_the_regression_is_a_clear_error(compose_cfg, overrides, message):
    cfg = compose_cfg(*REGRESSION, *overrides)
    with pytest.raises(InstantiationException) as error:  # Hydra's wrapper; the entry points print the cause
        build_model(cfg, build_datamodule(cfg))
    assert re.search(message, str(user_error(error.value)))
