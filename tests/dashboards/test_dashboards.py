"""What a finished run shows in TensorBoard: scalars, figures, the HPARAMS row and the graph, read back from
its event files and, in the end, through the real ``tensorboard`` server's HTTP API."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import compose_config, free_port, get_json, loaded_datamodule, training_trainer, write_mnist
from hydra.core.global_hydra import GlobalHydra
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.train import train
from mnistlab.core.results import RunResult
from mnistlab.dashboards import ConfusionMatrixFigure
from mnistlab.dashboards.mistakes import MostConfidentMistakes
from mnistlab.run.build import build_model

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CLASS_NAMES = [f"{digit} - {word}" for digit, word in enumerate(DIGITS)]  # torchvision's MNIST.classes
# Few steps, so that the model still makes mistakes for test/mistakes to show.
SHORT_RUN = [
    "model=mlp",
    "model.hidden_sizes=[32]",
    "optimizer=adam",
    "optimizer.lr=0.001",
    "scheduler=onecycle",
    "trainer.max_epochs=3",
    "+trainer.limit_train_batches=2",
    "callbacks.confusion_matrix.every_n_epochs=2",
]
HPARAMS = {
    "dataset": "mnist",
    "model": "mlp",
    "model/sizes": "hidden_sizes=[32]",
    "model/dropout": 0.0,
    "optimizer": "adam",
    "optimizer/lr": 1e-3,
    "scheduler": "onecycle",
    "data/batch_size": 32,
    "trainer/max_epochs": 3,
    "seed": 12345,
}
HPARAMS_METRICS = ["val/loss", "val/acc_best", "~test/acc", "~test/acc_worst_class"]


def expected(value: Any) -> Any:
    """TensorBoard keeps every number as a float."""
    return value if isinstance(value, str) else pytest.approx(value)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult]:
    root = tmp_path_factory.mktemp("dashboards")
    write_mnist(root / "data")
    metrics = train(compose_config(*SHORT_RUN, root=root, data_dir=root / "data"))
    GlobalHydra.instance().clear()
    return root / "run", metrics


def read_idx_labels(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.uint8, offset=8)


def read_events(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def test_run_logs_the_dashboard_scalars_and_no_clutter(finished_run):
    run_dir, _ = finished_run
    scalars = set(read_events(run_dir / "tensorboard").Tags()["scalars"])
    expected = {"train/loss_step", "train/lr", "val/loss", "val/acc", "val/acc_best", "~test/acc"}
    assert expected <= scalars
    assert not {"epoch", "hp_metric"} & scalars
    # Per-class accuracy is one figure, not ten one-dot charts that TensorBoard would open on.
    assert {tag for tag in scalars if tag.startswith("~test/")} == {
        "~test/acc",
        "~test/loss",
        "~test/acc_worst_class",
    }


def test_tensorboard_sorts_the_training_curves_before_the_test_results(finished_run):
    run_dir, _ = finished_run
    tags = read_events(run_dir / "tensorboard").Tags()
    # TensorBoard groups tags by their first part, sorts the groups by name and opens the first two.
    groups = sorted({tag.split("/", 1)[0] for tag in tags["scalars"] + tags["images"]})
    assert groups == ["train", "val", "~test"]


def test_per_class_accuracy_is_in_metrics_json_and_its_worst_class_in_tensorboard(finished_run):
    run_dir, metrics = finished_run
    events = read_events(run_dir / "tensorboard")
    assert len(metrics.test_acc_per_class) == len(CLASS_NAMES)
    [worst] = events.Scalars("~test/acc_worst_class")
    assert worst.value == pytest.approx(min(metrics.test_acc_per_class))
    assert worst.value < 1.0  # a short run: the figures below have mistakes to show
    # Weighted by each class's test examples, metrics.json's per-class numbers add up to test_acc.
    labels = read_idx_labels(run_dir.parent / "data" / "MNIST/raw/t10k-labels-idx1-ubyte")
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    correct = sum(acc * n for acc, n in zip(metrics.test_acc_per_class, counts, strict=True))
    assert correct / counts.sum() == pytest.approx(metrics.test_acc, abs=1e-6)


def test_learning_rate_is_logged_every_step(finished_run):
    run_dir, _ = finished_run
    steps = [event.step for event in read_events(run_dir / "tensorboard").Scalars("train/lr")]
    assert len(steps) == 6  # 3 epochs of 2 batches
    assert len(set(steps)) == 6


def test_figures_are_logged_every_n_validation_epochs_and_at_test(finished_run):
    run_dir, _ = finished_run
    events = read_events(run_dir / "tensorboard")
    # every_n_epochs=2 in 3 epochs of 2 steps: after epoch 2 only
    assert [image.step for image in events.Images("val/confusion_matrix")] == [4]
    for tag in ("~test/confusion_matrix", "~test/predictions", "~test/mistakes"):
        [image] = events.Images(tag)
        assert image.encoded_image_string.startswith(b"\x89PNG")
        assert image.width >= 500 and image.height >= 500
    # The test matrix has each class's accuracy beside it, the validation one is the matrix alone.
    [test], [val] = events.Images("~test/confusion_matrix"), events.Images("val/confusion_matrix")
    assert test.width >= 1.5 * test.height and val.width == val.height
    assert not {"val/fit", "~test/fit"} & set(events.Tags()["images"])  # a regression's only


def test_hparams_row_holds_user_settings_against_the_chosen_metrics(finished_run):
    run_dir, _ = finished_run
    content = read_events(run_dir / "tensorboard").PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert [info.name.tag for info in experiment.metric_infos] == HPARAMS_METRICS
    values = {
        name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        for name, value in session.session_start_info.hparams.items()
    }
    assert values == {name: expected(value) for name, value in HPARAMS.items()}


def test_model_graph_is_logged(finished_run):
    run_dir, _ = finished_run
    events = read_events(run_dir / "tensorboard")
    assert events.Tags()["graph"]
    assert any(node.op.startswith("aten::linear") for node in events.Graph().node)


def test_confusion_matrix_counts_every_test_image(compose_cfg):
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[16]")
    datamodule = loaded_datamodule(cfg)
    trainer = training_trainer(cfg)
    [result] = trainer.test(build_model(cfg, datamodule), datamodule=datamodule, verbose=False)
    [callback] = [c for c in trainer.callbacks if isinstance(c, ConfusionMatrixFigure)]
    matrix = callback.matrix.compute()
    assert matrix.sum() == 200  # conftest's N_TEST
    assert (matrix.trace() / matrix.sum()).item() == pytest.approx(result["test/acc"])


def test_mistakes_keep_the_most_confident_wrong_predictions_across_batches():
    mistakes = MostConfidentMistakes(k=2)
    images = torch.arange(6.0).reshape(6, 1, 1, 1)
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.3, 0.7], [0.99, 0.01]])
    labels = torch.tensor([0, 0, 1, 1, 0, 1])  # wrong: 1 (0.8), 2 (0.6), 4 (0.7), 5 (0.99)
    mistakes.update(images[:3], probs[:3], labels[:3])
    mistakes.update(images[3:], probs[3:], labels[3:])
    assert mistakes.images.flatten().tolist() == [5.0, 1.0]
    assert mistakes.labels.tolist() == [1, 0]


def test_eval_writes_the_test_figures_and_metrics_into_its_own_run_dir(finished_run, compose_cfg, tmp_path):
    run_dir, trained = finished_run
    eval_dir = tmp_path / "eval"
    cfg = compose_cfg(
        f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", config_name="eval", output_dir=eval_dir
    )
    assert evaluate(cfg).test_acc == pytest.approx(trained.test_acc)
    assert json.loads((eval_dir / "metrics.json").read_text())["test_acc"] == pytest.approx(trained.test_acc)
    tags = read_events(eval_dir / "tensorboard").Tags()
    assert {"~test/confusion_matrix", "~test/predictions", "~test/mistakes"} <= set(tags["images"])
    assert "~test/acc_worst_class" in tags["scalars"]


def wait_for_run(base: str, server: subprocess.Popen, timeout: float = 120) -> dict[str, Any]:
    """The scalar tags, once the server is up and has loaded the run's event files."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"tensorboard exited with {server.returncode}")
        try:
            tags = get_json(f"{base}/data/plugin/scalars/tags")
            if "~test/acc" in tags.get("tensorboard", {}):
                return tags
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"tensorboard did not serve the run within {timeout} s")


def test_tensorboard_server_serves_scalars_images_and_hparams(finished_run, tmp_path):
    run_dir, metrics = finished_run
    port = free_port()
    tensorboard = Path(sys.executable).parent / "tensorboard"
    command = [str(tensorboard), "--logdir", str(run_dir), "--host", "127.0.0.1", "--port", str(port)]
    with (tmp_path / "tensorboard.log").open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        scalars = wait_for_run(base, server)["tensorboard"]
        images = get_json(f"{base}/data/plugin/images/tags")["tensorboard"]
        experiment = get_json(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        groups = get_json(
            f"{base}/data/plugin/hparams/session_groups",
            {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "startIndex": 0, "sliceSize": 10},
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert {"train/lr", "val/loss", "val/acc_best", "~test/acc", "~test/acc_worst_class"} <= set(scalars)
    assert "epoch" not in scalars
    assert {"val/confusion_matrix", "~test/confusion_matrix", "~test/predictions", "~test/mistakes"} <= set(
        images
    )
    assert {info["name"] for info in experiment["hparamInfos"]} == set(HPARAMS)
    assert [info["name"]["tag"] for info in experiment["metricInfos"]] == HPARAMS_METRICS
    [group] = groups["sessionGroups"]
    assert group["hparams"]["optimizer/lr"] == pytest.approx(1e-3)
    shown = {value["name"]["tag"]: value["value"] for value in group["metricValues"]}
    assert shown["~test/acc"] == pytest.approx(metrics.test_acc)
