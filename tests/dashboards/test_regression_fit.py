"""A regression's TensorBoard: the fit figure (predictions against the target curve) every few validation
epochs and at the test, and none of the classification figures."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from mnistlab.dashboards.regression_fit import draw_fit


def read_events(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def test_the_fit_figure_is_drawn_every_n_validation_epochs_and_at_the_test(regression_run):
    run_dir, _ = regression_run
    events = read_events(run_dir / "tensorboard")
    steps_per_epoch = events.Scalars("train/loss")[0].step + 1
    # every_n_epochs=2 in 3 epochs: after epoch 2 only; then the test of the best checkpoint.
    assert [image.step for image in events.Images("val/fit")] == [2 * steps_per_epoch]
    [test] = events.Images("~test/fit")
    for image in (*events.Images("val/fit"), test):
        assert image.encoded_image_string.startswith(b"\x89PNG")
        assert image.width >= 500 and image.height >= 500
    assert set(events.Tags()["images"]) == {"val/fit", "~test/fit"}  # no class figures
    assert events.Tags()["graph"]  # the model graph, traced on one (1,)-shaped input


def test_the_hparams_row_of_a_regression_names_the_same_metrics(regression_run):
    run_dir, _ = regression_run
    content = read_events(run_dir / "tensorboard").PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    # The same columns as any run: the accuracies stay empty (TensorBoard shows no value), nothing fails.
    metrics = ["val/loss", "val/acc_best", "~test/acc", "~test/acc_worst_class"]  # TensorBoard's tags
    assert [info.name.tag for info in experiment.metric_infos] == metrics


def test_the_figure_draws_both_curves_in_x_order_and_names_the_mse():
    x = torch.tensor([0.5, -0.5, 0.0])
    targets, preds = x**2, x**2 + torch.tensor([0.1, -0.1, 0.0])
    figure = draw_fit(x, preds, targets, "val")
    curves, errors = figure.axes
    assert curves.get_title() == "val: 3 points, MSE 0.00667"
    target_line, pred_line = curves.get_lines()
    assert target_line.get_xdata().tolist() == [-0.5, 0.0, 0.5]
    assert pred_line.get_ydata().tolist() == pytest.approx([0.15, 0.0, 0.35])
    assert errors.get_lines()[1].get_ydata().tolist() == pytest.approx([-0.1, 0.0, 0.1])
