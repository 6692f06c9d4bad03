"""logger=wandb, offline (these machines have no network): W&B's own files under the run dir are read back,
record by record, and hold the numbers of metrics.json, TensorBoard and the CSV logger; a sweep's runs are
grouped; a resumed run continues its W&B run; a W&B that cannot start online never ends a run."""

import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Run, assert_one_line_error, free_port
from test_trackers import FIGURES, HPARAMS, QUICK, csv_columns, tensorboard_scalars
from wandb.proto import wandb_internal_pb2  # the extra, pip install -e '.[wandb]', which make test installs

from mnistlab.core.run_dir import JOB_TYPE_LENGTH, within
from mnistlab.dashboards.logger import tensorboard_tag

# What W&B adds to every history row beside the run's own metrics, and Lightning's step and epoch counters.
BOOKKEEPING = {"_step", "_runtime", "_timestamp", "trainer/global_step", "epoch"}


def wandb_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    """The environment of a W&B run here: offline, with W&B's settings, cache and credentials (~/.netrc) in
    ``tmp_path``, none of the machine's."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    env |= {"HOME": str(home), "WANDB_MODE": "offline", "WANDB_CONFIG_DIR": str(home / "config")}
    env |= {"WANDB_CACHE_DIR": str(home / "cache"), "WANDB_DATA_DIR": str(home / "data")}
    return {**env, **changes}


def train(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        env=env or wandb_env(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


# A .wandb file is a LevelDB log (W&B's own header first) of protobuf records: blocks of 32 KiB, each
# record in chunks with a 7-byte header (CRC-32 of the type byte and the data, length, type).
BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> Iterator[Any]:
    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<HB", data[4:7]) == (0xBEE1, 0), data[:7]
    position, pieces = HEADER, b""
    while position + HEADER <= len(data):
        if BLOCK - position % BLOCK < HEADER:  # a block's tail too short for a header is padding
            position += BLOCK - position % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if (checksum, length, kind) == (0, 0, 0):
            break
        chunk = data[position + HEADER : position + HEADER + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum, f"{path} is damaged at {position}"
        position += HEADER + length
        pieces = chunk if kind in (FULL, FIRST) else pieces + chunk
        if kind in (FULL, LAST):
            yield wandb_internal_pb2.Record.FromString(pieces)


def nested(items: Any) -> dict[str, Any]:
    """History, summary and config items as a dict: an image is a dict of its own (``_type``, ...)."""
    found: dict[str, Any] = {}
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        place = found
        for name in path[:-1]:
            place = place.setdefault(name, {})
        place[path[-1]] = json.loads(item.value_json)
    return found


@dataclass
class WandbRun:
    """One W&B run's files, as `wandb sync` would send them."""

    dir: Path
    id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    def metric(self, name: str) -> list[Any]:
        return [row[name] for row in self.history if name in row]

    def scalars(self) -> set[str]:
        names = {name for row in self.history for name, value in row.items() if not isinstance(value, dict)}
        return names - BOOKKEEPING

    def images(self, name: str) -> list[Path]:
        """The files of each image logged under ``name``."""
        return [self.dir / "files" / file for image in self.metric(name) for file in image["filenames"]]


def read_wandb_runs(run_dir: Path) -> list[WandbRun]:
    """The offline W&B runs under a run dir, oldest first (a resumed run has one per start)."""
    runs = []
    for path in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        run = WandbRun(path.parent)
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.id, run.name = record.run.run_id, record.run.display_name
                run.group, run.job_type = record.run.run_group, record.run.job_type
                run.config |= nested(record.run.config.update)
            elif kind == "config":
                run.config |= nested(record.config.update)
            elif kind == "history":
                run.history.append(nested(record.history.item))
            elif kind == "summary":
                run.summary |= nested(record.summary.update)
            elif kind == "exit":
                run.exit_code = record.exit.exit_code
        runs.append(run)
    return runs


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_wandb_gets_the_scalars_hparams_and_figures_of_tensorboard_and_csv_named_as_in_metrics_json(
    mnist_dir, tmp_path
):
    run_dir = tmp_path / "run"
    loggers = "logger=[tensorboard,csv,wandb]"
    result = train(tmp_path, loggers, *QUICK, f"paths.data_dir={mnist_dir}", f"hydra.run.dir={run_dir}")
    assert warnings_in(result.stderr) == []
    [run] = read_wandb_runs(run_dir)
    metrics = metrics_of(run_dir)
    assert metrics["wandb_run_id"] == run.id and run.exit_code == 0
    assert (run.name, run.group, run.job_type) == ("run", "", "")  # named after its run dir, no sweep

    # The scalars of the CSV file, by the same names, with the same values; TensorBoard's with ~test/.
    columns, scalars = csv_columns(run_dir), tensorboard_scalars(run_dir)
    assert run.scalars() == set(columns)
    assert {tensorboard_tag(name) for name in run.scalars()} == set(scalars)
    for name in run.scalars():
        assert run.metric(name) == pytest.approx(columns[name]), name
    assert run.metric("val/loss") == pytest.approx(scalars["val/loss"]) and len(run.metric("train/lr")) == 6
    assert min(run.metric("val/loss")) == pytest.approx(metrics["best_val_loss"])
    assert run.summary["test/acc"] == pytest.approx(metrics["test_acc"])
    assert run.summary["test/loss"] == pytest.approx(metrics["test_loss"])

    # The HPARAMS columns as the run's config (W&B keeps their types; MLflow's params are text).
    assert {name: str(run.config[name]) for name in HPARAMS} == HPARAMS and run.config["seed"] == 12345

    # The figures as images, under the names the other loggers give them.
    images = {name for row in run.history for name, value in row.items() if isinstance(value, dict)}
    assert images == FIGURES
    assert len(run.images("val/confusion_matrix")) == 2  # one per epoch
    for name in FIGURES:
        assert all(path.read_bytes().startswith(b"\x89PNG") for path in run.images(name)), name


@pytest.mark.slow  # four jobs
def test_a_sweeps_wandb_runs_are_grouped_by_the_sweep_and_by_their_setting(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "logger=wandb", *QUICK, "trainer.max_epochs=1", f"paths.data_dir={mnist_dir}"]
    train(tmp_path, *args, "optimizer.lr=0.001,0.003", "seed=1,2", f"hydra.sweep.dir={sweep_dir}")
    runs = {}
    for job in range(4):
        [runs[job]] = read_wandb_runs(sweep_dir / str(job))  # each job its own W&B run, none reused
        assert metrics_of(sweep_dir / str(job))["wandb_run_id"] == runs[job].id
    assert len({run.id for run in runs.values()}) == 4
    assert {run.group for run in runs.values()} == {"sweep"}
    assert [run.name for run in runs.values()] == [f"sweep/{job}" for job in range(4)]
    assert all(run.exit_code == 0 for run in runs.values())
    # job_type: the sweep's groups of seeds (summary_groups.csv), one per learning rate.
    with (sweep_dir / "summary_groups.csv").open() as file:
        groups = list(csv.DictReader(file))
    assert len(groups) == 2
    for group in groups:
        jobs = [runs[int(job)] for job in group["jobs"].split()]
        assert [run.job_type for run in jobs] == [within(group["overrides"], JOB_TYPE_LENGTH)] * 2
        assert len(jobs[0].job_type) <= JOB_TYPE_LENGTH and "seed" not in jobs[0].job_type
    assert runs[0].job_type != runs[2].job_type


def last_checkpoint(run_dir: Path) -> tuple[int, int]:
    """(epoch, global step) of the run's last.ckpt; (-1, -1) before there is one."""
    import torch

    try:
        saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return -1, -1
    return saved["epoch"], saved["global_step"]


@pytest.mark.slow  # a run killed and resumed
def test_a_run_killed_and_resumed_continues_its_wandb_run(mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    whole_epochs = [override for override in QUICK if "limit_train_batches" not in override]
    args = ["logger=[tensorboard,wandb]", *whole_epochs, "data.batch_size=8"]
    args += ["trainer.max_epochs=3", f"paths.data_dir={mnist_dir}", f"hydra.run.dir={run_dir}"]
    killed = Run(tmp_path, "killed", *args, env=wandb_env(tmp_path))
    try:
        deadline = time.monotonic() + 240
        while last_checkpoint(run_dir)[0] < 0 and time.monotonic() < deadline:
            assert killed.process.poll() is None, killed.stderr.read_text()[-3000:]
            time.sleep(0.05)
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(timeout=30)
    finally:
        killed.process.kill()
    stopped_after, at_step = last_checkpoint(run_dir)
    assert stopped_after < 2 and not (run_dir / "metrics.json").exists()
    [first] = read_wandb_runs(run_dir)
    assert first.exit_code is None  # killed: W&B never heard of its end

    Run(tmp_path, "resumed", *args, "ckpt_path=last", env=wandb_env(tmp_path)).succeeded()
    [first, resumed] = read_wandb_runs(run_dir)
    assert resumed.id == first.id == metrics_of(run_dir)["wandb_run_id"] and resumed.exit_code == 0
    # The resumed part goes on from the epoch after the checkpoint, with TensorBoard's numbers. (W&B writes
    # its files a moment after each log call: the killed part may lack its last validation, logged just
    # before the kill, which TensorBoard had flushed with the checkpoint.)
    resumed_epochs = [row["epoch"] for row in resumed.history if "val/loss" in row]
    assert resumed_epochs == list(range(stopped_after + 1, 3))
    assert min(resumed.metric("trainer/global_step")) >= at_step
    tensorboard = tensorboard_scalars(run_dir)["val/loss"]  # one value per epoch, the resumed ones last
    assert len(tensorboard) == 3
    for run in (first, resumed):
        for row in run.history:
            if "val/loss" in row:
                assert row["val/loss"] == pytest.approx(tensorboard[row["epoch"]]), row["epoch"]


@pytest.mark.slow  # a whole run each, the unreachable server's about 15 s of retries
@pytest.mark.parametrize("trouble", ["no API key", "no server"])
def test_a_wandb_that_cannot_start_online_is_one_warning_and_the_run_logs_offline(
    mnist_dir, tmp_path, trouble
):
    online = {"WANDB_MODE": "online", "WANDB_INIT_TIMEOUT": "5"}
    if trouble == "no server":  # a port nothing listens on
        online |= {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    run_dir = tmp_path / "run"
    env = wandb_env(tmp_path, **online)
    result = train(
        tmp_path, "logger=wandb", *QUICK, f"paths.data_dir={mnist_dir}", f"hydra.run.dir={run_dir}", env=env
    )
    [line] = warnings_in(result.stderr)
    assert "W&B did not start" in line and f"wandb sync {run_dir}/wandb/offline-run-*" in line
    assert ("No API key" if trouble == "no API key" else "127.0.0.1") in line
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "finished"
    [run] = read_wandb_runs(run_dir)
    assert run.id == metrics["wandb_run_id"] and run.summary["test/acc"] == pytest.approx(metrics["test_acc"])


@pytest.mark.slow  # a whole run
def test_a_wandb_that_cannot_start_offline_either_is_one_warning_and_the_run_goes_on_without_it(
    mnist_dir, tmp_path
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "wandb").write_text("")  # a file where W&B's folder would go
    args = ["logger=[csv,wandb]", *QUICK, f"paths.data_dir={mnist_dir}", f"hydra.run.dir={run_dir}"]
    result = train(tmp_path, *args)
    [line] = warnings_in(result.stderr)
    assert "W&B did not start (NotADirectoryError" in line and "this run goes on without W&B" in line
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "finished" and metrics["wandb_run_id"] is None
    assert csv_columns(run_dir)["test/acc"] == [pytest.approx(metrics["test_acc"])]  # the other loggers log


def test_logger_wandb_without_the_package_is_one_line_naming_the_install(mnist_dir, tmp_path):
    """As without wandb installed: its import fails (``sys.modules["wandb"] = None``)."""
    argv = [
        "train.py",
        "logger=wandb",
        *QUICK,
        f"paths.data_dir={mnist_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    without_wandb = (
        "import runpy, sys; sys.modules['wandb'] = None; "
        f"sys.argv = {argv!r}; runpy.run_path({str(ROOT / 'train.py')!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_wandb],
        capture_output=True,
        text=True,
        env=wandb_env(tmp_path),
        timeout=300,
    )
    assert_one_line_error(result, "logger=wandb needs the wandb package", "pip install -e '.[wandb]'")
    assert not (tmp_path / "run" / "checkpoints").exists()
