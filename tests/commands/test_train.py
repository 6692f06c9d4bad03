"""train.py end to end, run as a user runs it: a subprocess on small synthetic files.

Each run spends most of its time importing torch and Lightning, so the module starts all its runs at once
in the background (the machine has two cores) and each test waits only for the runs it reads.
"""

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import N_TRAIN, SHRINK, Run, assert_one_line_error, files_in, write_mnist
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from mnistlab.core.results import RunResult
from mnistlab.core.run_dir import LOCK_FILE
from mnistlab.io.formats import FORMAT, FORMAT_KEY
from mnistlab.run.trained import load_trained

# Metric names as the issue lists them, as TensorBoard shows them (test/ as ~test/). Lightning names a metric
# logged both per step and per epoch `<name>_step` and `<name>_epoch`; its per-epoch curve stands for it.
TAGS = ["train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "~test/loss", "~test/acc"]
# Everything in metrics.json that the same command must reproduce (seconds and paths may differ).
NUMBERS = ["best_val_loss", "best_epoch", "test_loss", "test_acc", "test_acc_per_class", "seed", "epochs_run"]
# Training settings that differ from the defaults: eval.py must find them in the checkpoint.
NON_DEFAULT = ["model=mlp", "model.hidden_sizes=[32]", "data.mean=0.5"]


def broken_data(root: Path, name: str, n_labels: int = N_TRAIN, cut: int = 0) -> tuple[Path, Path]:
    """A data dir whose training labels number ``n_labels``, or whose training images lose ``cut`` bytes."""
    data_dir = write_mnist(root / name)
    raw = data_dir / "MNIST" / "raw"
    labels, images = raw / "train-labels-idx1-ubyte", raw / "train-images-idx3-ubyte"
    if n_labels != N_TRAIN:
        header = bytes([0, 0, 8, 1]) + n_labels.to_bytes(4, "big")
        labels.write_bytes(header + labels.read_bytes()[8 : 8 + n_labels])
    if cut:
        images.write_bytes(images.read_bytes()[:-cut])
    return data_dir, images


def slug(name: str) -> str:
    return name.replace(" ", "_")


def start_bad_inputs(root: Path, data: Path, start: Callable[..., Run]) -> dict[str, tuple[Run, list[str]]]:
    """One train.py per bad input, with what its error line must name."""
    truncated_dir, truncated_images = broken_data(root, "truncated", cut=100)
    mismatched_dir, mismatched_images = broken_data(root, "mismatched", n_labels=N_TRAIN - 1)
    # A download that fails at once: no network is tried, even where there is one.
    offline = {**os.environ, "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    offline.pop("no_proxy", None)
    cases = {
        "data missing": ([f"data.data_dir={root}/empty"], [f"{root}/empty/MNIST/raw", "data.data_dir="]),
        "truncated file": ([f"data.data_dir={truncated_dir}"], [str(truncated_images), "truncated"]),
        "count mismatch": ([f"data.data_dir={mismatched_dir}"], [str(mismatched_images), "labels"]),
        "val_fraction": ([f"data.data_dir={data}", "data.val_fraction=1.5"], ["data.val_fraction=1.5"]),
        "batch_size": ([f"data.data_dir={data}", "data.batch_size=0"], ["data.batch_size=0"]),
        "fold": ([f"data.data_dir={data}", "data.folds=3", "data.fold=3"], ["data.fold=3", "data.folds=3"]),
    }
    return {
        name: (
            start(slug(name), "model=mlp", *args, f"hydra.run.dir={root}/{slug(name)}", env=offline),
            fragments,
        )
        for name, (args, fragments) in cases.items()
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = write_mnist(root / "data")
    short = [*SHRINK, f"data.data_dir={data}", *NON_DEFAULT]
    e2e = [*short, "seed=1"]
    # scheduler=none: a one-cycle schedule is planned for the run's length, which this resume grows.
    resume = [*short, "scheduler=none"]
    resumed_dir = root / "resumed"
    launched: list[Run] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Run:
        launched.append(Run(root, name, *args, env=env))
        return launched[-1]

    runs = SimpleNamespace(root=root, data=data, resumed_dir=resumed_dir)
    try:
        runs.e2e = start("e2e", *e2e, f"hydra.run.dir={root}/e2e")
        runs.resume_start = start(
            "resume_start", *resume, "trainer.max_epochs=1", f"hydra.run.dir={resumed_dir}"
        )
        # Job 0 is the e2e command again, in a fresh process; job 1 is seed=0.
        runs.sweep = start("sweep", "-m", *short, "seed=1,0", f"hydra.sweep.dir={root}/sweep")
        debug = ["trainer=cpu", "model=mlp", f"data.data_dir={data}", "data.batch_size=32"]
        runs.debug_fast = start("debug_fast", "debug=fast", *debug, f"hydra.run.dir={root}/debug_fast")
        runs.bad_inputs = start_bad_inputs(root, data, start)

        # Resume once the first epoch is written, keeping what the resume must not overwrite.
        runs.resume_start.succeeded()
        runs.config_before_resume = (resumed_dir / ".hydra/config.yaml").read_bytes()
        runs.events_before_resume = event_files(resumed_dir)
        runs.steps_per_epoch = torch.load(resumed_dir / "checkpoints/last.ckpt", weights_only=True)[
            "global_step"
        ]
        runs.resume = start(
            "resume", *resume, "trainer.max_epochs=3", f"ckpt_path={resumed_dir}/checkpoints/last.ckpt"
        )

        # Another command (its config differs) aimed at the finished e2e run's dir.
        runs.e2e.succeeded()
        runs.e2e_files = files_in(root / "e2e")
        runs.rerun = start("rerun", *short, "seed=2", f"hydra.run.dir={root}/e2e")
        yield runs
    finally:
        for run in launched:
            if run.process.poll() is None:
                run.process.kill()


def event_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def scalars(paths: list[Path]) -> dict[str, list[float]]:
    """Every scalar in these TensorBoard event files, in step order, read back as TensorBoard reads them."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in paths:
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
    return {tag: [value for _, value in sorted(events)] for tag, events in found.items()}


def epoch_curve(tags: dict[str, list[float]], name: str) -> list[float]:
    return tags[name] if name in tags else tags[f"{name}_epoch"]


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_best_checkpoint_is_the_epoch_of_minimum_val_loss(runs):
    runs.e2e.succeeded()
    run_dir = runs.root / "e2e"
    val_losses = scalars(event_files(run_dir))["val/loss"]  # one per epoch: validation runs every epoch
    assert len(val_losses) == 2
    best_epoch = val_losses.index(min(val_losses))
    assert torch.load(run_dir / "checkpoints/best.ckpt", weights_only=True)["epoch"] == best_epoch
    metrics = metrics_of(run_dir)
    assert metrics["best_epoch"] == best_epoch
    assert metrics["best_val_loss"] == pytest.approx(min(val_losses), rel=1e-6)


def test_tensorboard_holds_every_metric(runs):
    runs.e2e.succeeded()
    tags = scalars(event_files(runs.root / "e2e"))
    missing = [tag for tag in TAGS if tag not in tags and f"{tag}_epoch" not in tags]
    assert not missing, f"missing {missing} in {sorted(tags)}"


def test_metrics_json_has_every_key_and_the_run_prints_per_class_results(runs):
    result = runs.e2e.succeeded()
    run_dir = runs.root / "e2e"
    metrics = metrics_of(run_dir)
    assert list(metrics) == [field.name for field in dataclasses.fields(RunResult)]  # keys defined once
    assert len(metrics["test_acc_per_class"]) == 10
    assert all(0 <= acc <= 1 for acc in metrics["test_acc_per_class"])
    assert Path(metrics["best_checkpoint"]).resolve() == (run_dir / "checkpoints/best.ckpt").resolve()
    assert (metrics["seed"], metrics["epochs_run"]) == (1, 2)
    # The run's own clock: started after the process (imports), stopped before it ended.
    assert 0 < metrics["seconds"] < runs.e2e.seconds_at_most
    assert 0 < metrics["fit_seconds"] < metrics["seconds"]  # the test and the data loading are outside it
    assert metrics["test_acc"] > 0.5  # the synthetic digits are learnable
    assert "9 - nine" in result.stdout


def test_every_checkpoint_loads_with_weights_only_and_rebuilds_from_its_path_alone(runs):
    runs.e2e.succeeded()
    run_dir = runs.root / "e2e"
    checkpoints = sorted(run_dir.rglob("*.ckpt"))
    assert [path.name for path in checkpoints] == ["best.ckpt", "last.ckpt"]
    for path in checkpoints:
        assert torch.load(path, weights_only=True)[FORMAT_KEY] == FORMAT
        net = load_trained(path).model.net
        assert [layer.out_features for layer in net if isinstance(layer, nn.Linear)] == [32, 10]
    # last.ckpt is the last epoch's state, whether or not that epoch improved val/loss.
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["epoch"] == 1

    # best.ckpt holds the weights that were tested: they give the test loss in metrics.json again.
    trained = load_trained(run_dir / "checkpoints/best.ckpt")
    datamodule, model = trained.datamodule, trained.model
    assert datamodule.mean == 0.5
    datamodule.setup("test")
    images, labels = datamodule.on_after_batch_transfer(
        (datamodule.test_set.inputs, datamodule.test_set.labels), 0
    )
    with torch.no_grad():
        loss = model.task.loss(model.net(images), labels).item()
    assert loss == pytest.approx(metrics_of(run_dir)["test_loss"], rel=1e-4)


def test_same_command_gives_the_same_numbers_and_seed_zero_is_a_seed(runs):
    runs.e2e.succeeded()
    runs.sweep.succeeded()
    once, again, zero = (
        metrics_of(path) for path in (runs.root / "e2e", runs.root / "sweep/0", runs.root / "sweep/1")
    )
    assert {key: again[key] for key in NUMBERS} == {key: once[key] for key in NUMBERS}
    assert zero["seed"] == 0
    assert (zero["best_val_loss"], zero["test_loss"]) != (once["best_val_loss"], once["test_loss"])


def test_multirun_writes_a_run_dir_per_job(runs):
    runs.sweep.succeeded()
    for job in ("0", "1"):
        job_dir = runs.root / "sweep" / job
        assert (job_dir / "checkpoints/best.ckpt").is_file()
        assert metrics_of(job_dir)["epochs_run"] == 2


def test_resume_continues_at_the_next_epoch_in_the_same_run_dir(runs):
    runs.resume.succeeded()
    run_dir = runs.resumed_dir
    assert metrics_of(run_dir)["epochs_run"] == 3
    last = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == 3 * runs.steps_per_epoch  # epochs 1 and 2 added to the first one, no more
    new_events = [path for path in event_files(run_dir) if path not in runs.events_before_resume]
    assert len(scalars(new_events)["val/loss"]) == 2  # the resumed process validated epochs 1 and 2 only
    val_losses = scalars(event_files(run_dir))["val/loss"]
    assert metrics_of(run_dir)["best_epoch"] == val_losses.index(min(val_losses))
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    # Nothing went to a new run dir, and the first run's config is intact beside the resume's.
    assert not (runs.resume.cwd / "logs").exists()
    assert (run_dir / ".hydra/config.yaml").read_bytes() == runs.config_before_resume
    [resume_config] = (run_dir / ".hydra").glob("*/config.yaml")
    assert "last.ckpt" in resume_config.read_text()


@pytest.mark.parametrize(
    "name", ["data missing", "truncated file", "count mismatch", "val_fraction", "batch_size", "fold"]
)
def test_bad_input_is_one_line_naming_problem_and_fix_before_any_training(runs, name):
    run, fragments = runs.bad_inputs[name]
    assert_one_line_error(run.result(), *fragments)
    assert not (runs.root / slug(name) / "checkpoints").exists()


def test_a_finished_run_dir_is_never_overwritten(runs):
    assert_one_line_error(runs.rerun.result(), str(runs.root / "e2e"), "hydra.run.dir")
    after = files_in(runs.root / "e2e")
    # The refused command may add files (its own log lines, its config beside the run's), never change one;
    # the dir's lock file names the process that holds the dir, whichever last did.
    changed = [
        name
        for name, content in runs.e2e_files.items()
        if not after.get(name, b"").startswith(content) and name != LOCK_FILE
    ]
    assert not changed
    assert after[".hydra/config.yaml"] == runs.e2e_files[".hydra/config.yaml"]


def test_debug_fast_runs_one_short_epoch_without_a_logger(runs):
    runs.debug_fast.succeeded()
    run_dir = runs.root / "debug_fast"
    assert metrics_of(run_dir)["epochs_run"] == 1
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 10
    assert not (run_dir / "tensorboard").exists()


@pytest.mark.slow
def test_debug_overfit_drives_the_training_loss_to_zero(tmp_path):
    data = write_mnist(tmp_path / "data")
    run_dir = tmp_path / "debug_overfit"
    quiet = ["trainer=cpu", "callbacks.progress_bar.refresh_rate=0", "data.batch_size=32"]
    run = Run(
        tmp_path,
        "overfit",
        "debug=overfit",
        "model=mlp",
        *quiet,
        f"data.data_dir={data}",
        f"hydra.run.dir={run_dir}",
    )
    run.succeeded()
    assert metrics_of(run_dir)["epochs_run"] == 40
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 40 * 3
    train_losses = epoch_curve(scalars(event_files(run_dir)), "train/loss")
    assert train_losses[-1] < 0.01 < train_losses[0]
