"""A regression (data=function): one output, the mean squared error, no accuracy, predicted as it is."""

import pytest
import torch
from conftest import loaded_datamodule

from mnistlab.core.errors import MnistlabError
from mnistlab.run.build import build_datamodule, build_model
from mnistlab.tasks import Regression

REGRESSION = ("data=function", "data.train_size=200", "data.val_size=100", "data.test_size=100")


@pytest.mark.parametrize("model", ["mlp", "scratch"])
def test_a_net_for_the_function_data_has_one_output_an_mse_loss_and_no_accuracy(compose_cfg, model):
    cfg = compose_cfg(*REGRESSION, f"model={model}", "model.hidden_sizes=[16]")
    datamodule = loaded_datamodule(cfg)
    module = build_model(cfg, datamodule)
    assert isinstance(module.task, Regression)
    x, y = datamodule.val_set.inputs, datamodule.val_set.labels
    out = module(x)
    assert out.shape == (100, 1)
    assert module.task.loss(out, y).item() == pytest.approx(((out - y) ** 2).mean().item())
    assert list(module.task.metrics("val")) == ["val/loss"]
    assert module.task.figures == ("fit",)
    assert torch.equal(module.predict_step(x), out)
    assert set(module.task.evaluation_outputs(out)) == {"preds"}
    assert module.task.test_results({"test/loss": torch.tensor(0.25)}) == {"test_loss": 0.25}


def test_scratch_uniform_init_draws_weights_from_minus_one_to_one_and_zero_biases(compose_cfg):
    cfg = compose_cfg(*REGRESSION, "model=scratch", "model.hidden_sizes=[1000]", "model.init=uniform")
    torch.manual_seed(0)  # the ends of 1,000 draws reach past ±0.99 but for 1 draw in 150; not for this seed
    net = build_model(cfg, build_datamodule(cfg)).net
    assert [tuple(w.shape) for w in net.weights] == [(1, 1000), (1000, 1)]
    for weight in net.weights:
        assert -1 <= weight.min() < -0.99 and 0.99 < weight.max() < 1
    assert all(not bias.any() for bias in net.biases)
    he_cfg = compose_cfg(*REGRESSION, "model=scratch", "model.hidden_sizes=[1000]")
    he = build_model(he_cfg, build_datamodule(he_cfg)).net
    assert he.weights[1].std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model=mlp", "model.output=log_softmax"), "model.output='log_softmax' is for classification"),
        (
            ("model=mlp", "model.label_smoothing=0.1"),
            "model.label_smoothing=0.1 smooths a classifier's targets",
        ),
        (
            ("model=cnn",),
            "model=cnn needs images (channels, height, width), and the data's inputs have shape (1,)",
        ),
    ],
)
def test_a_model_that_does_not_fit_the_regression_is_a_clear_error(compose_cfg, overrides, message):
    cfg = compose_cfg(*REGRESSION, *overrides)
    with pytest.raises(MnistlabError) as error:
        build_model(cfg, build_datamodule(cfg))
    assert str(error.value).startswith(message)
