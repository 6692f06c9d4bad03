"""Trackers beside TensorBoard: logger=csv, logger=mlflow and logger=all get the same scalars and HPARAMS
columns; MLflow's store is read back through a real `mlflow server`."""

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, free_port, get_json, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnistlab.dashboards.logger import tensorboard_tag

# Two short epochs of a small MLP; the validation confusion matrix at both, so MLflow gets a figure per epoch.
QUICK = [
    "model=mlp",
    "model.hidden_sizes=[16]",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar.refresh_rate=0",
    "callbacks.confusion_matrix.every_n_epochs=1",
    "trainer.enable_model_summary=false",
    "data.eval_batch_size=100",
]
# conf/callbacks/default.yaml's HPARAMS columns for QUICK, as text (MLflow params are text).
HPARAMS = {
    "dataset": "mnist",
    "model": "mlp",
    "model/sizes": "hidden_sizes=[16]",
    "model/dropout": "0.0",
    "optimizer": "adamw",
    "optimizer/lr": "0.003",
    "scheduler": "onecycle",
    "data/batch_size": "64",
    "trainer/max_epochs": "2",
}
FIGURES = {"val/confusion_matrix", "test/confusion_matrix", "test/predictions", "test/mistakes"}


def tensorboard_scalars(run_dir: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [event.value for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def csv_columns(run_dir: Path) -> dict[str, list[float]]:
    """Each metric's values in metrics.csv, in order (a row holds only the metrics of one logging call)."""
    with (run_dir / "csv" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    return {
        name: [float(row[name]) for row in rows if row[name]]
        for name in rows[0]
        if name not in ("epoch", "step")
    }


def test_logger_csv_writes_every_scalar_and_the_hparams_columns_without_importing_mlflow_or_wandb(
    mnist_dir, tmp_path
):
    run_dir = tmp_path / "csv_run"
    environment = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # every import, on stderr
    command = [sys.executable, str(ROOT / "train.py"), "logger=csv", f"paths.data_dir={mnist_dir}", *QUICK]
    result = subprocess.run(
        [*command, f"hydra.run.dir={run_dir}"], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line
    ]
    assert "lightning.pytorch.loggers.csv_logs" in imported
    assert not [name for name in imported if name.split(".")[0] in ("mlflow", "wandb")]

    columns = csv_columns(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(columns["val/loss"]) == 2 and len(columns["train/loss"]) == 2  # one per epoch
    assert min(columns["val/loss"]) == pytest.approx(metrics["best_val_loss"])
    assert columns["test/acc"] == [pytest.approx(metrics["test_acc"])]
    assert len(columns["train/lr"]) == 6  # every step
    hparams = yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text())
    assert {name: str(hparams[name]) for name in HPARAMS} == HPARAMS
    assert not (run_dir / "tensorboard").exists()


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over a store, in its own process group (it starts workers)."""

    def __init__(self, store: str, log: Path) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        port = self.base.rsplit(":", 1)[1]
        command = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", store]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", port, "--workers", "1"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                get_json(f"{self.base}/api/2.0/mlflow/experiments/search?max_results=1")
                return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"mlflow server did not answer within {timeout} s")

    def get(self, endpoint: str, **query: str) -> Any:
        return get_json(f"{self.base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}")

    def post(self, endpoint: str, body: dict) -> Any:
        return get_json(f"{self.base}/api/2.0/mlflow/{endpoint}", body)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            with contextlib.suppress(
                ProcessLookupError
            ):  # its workers too, whatever the server did with them
                os.killpg(self.process.pid, signal.SIGKILL)


def artifacts(server: MlflowServer, run_id: str, path: str) -> list[str]:
    """Every file under ``path`` in a run's artifacts."""
    files = []
    for entry in server.get("artifacts/list", run_id=run_id, path=path).get("files", []):
        files += artifacts(server, run_id, entry["path"]) if entry["is_dir"] else [entry["path"]]
    return files


@pytest.mark.slow  # two train.py runs, a sweep and an mlflow server start (half a minute on its own)
def test_mlflow_gets_the_scalars_params_tags_and_figures_read_back_through_a_real_server(mnist_dir, tmp_path):
    logs = tmp_path / "logs"
    single, sweep = tmp_path / "single", tmp_path / "sweep"
    common = [f"paths.data_dir={mnist_dir}", f"paths.log_dir={logs}", *QUICK]
    run_script("train.py", "logger=all", *common, f"hydra.run.dir={single}")
    run_script("train.py", "-m", "logger=mlflow", *common, "seed=1,2", f"hydra.sweep.dir={sweep}")

    server = MlflowServer(f"sqlite:///{logs}/mlflow.db", tmp_path / "mlflow_server.log")
    try:
        server.wait_until_up()
        experiment = server.get("experiments/get-by-name", experiment_name="train")["experiment"]
        runs = server.post("runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        named = {run["info"]["run_name"]: run for run in runs}
        assert sorted(named) == ["single", "sweep/0", "sweep/1"]  # a 2-job sweep: two runs, one experiment
        run = named["single"]
        run_id = run["info"]["run_id"]
        history = {
            key: [
                m["value"]
                for m in server.get("metrics/get-history", run_id=run_id, metric_key=key)["metrics"]
            ]
            for key in ("val/loss", "test/acc", "train/lr")
        }
        figures = artifacts(server, run_id, "figures")
        png = urllib.request.urlopen(f"{server.base}/get-artifact?path={figures[0]}&run_uuid={run_id}").read()
    finally:
        server.stop()

    # The same scalars as TensorBoard (where test/ is ~test/) and the CSV file; MLflow and CSV also keep
    # Lightning's epoch counter.
    scalars = tensorboard_scalars(single)
    logged = {metric["key"] for metric in run["data"]["metrics"]} - {"epoch"}
    assert logged == set(csv_columns(single))
    assert {tensorboard_tag(name) for name in logged} == set(scalars)
    metrics = json.loads((single / "metrics.json").read_text())
    assert history["val/loss"] == pytest.approx(scalars["val/loss"]) and len(history["val/loss"]) == 2
    assert history["test/acc"] == [pytest.approx(metrics["test_acc"])]
    assert len(history["train/lr"]) == 6

    params = {param["key"]: param["value"] for param in run["data"]["params"]}
    assert {name: params.get(name) for name in [*HPARAMS, "seed"]} == {**HPARAMS, "seed": "12345"}
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    assert (tags["task"], tags["experiment"]) == ("train", "none") and "sweep_dir" not in tags
    for job in (0, 1):
        job_tags = {tag["key"]: tag["value"] for tag in named[f"sweep/{job}"]["data"]["tags"]}
        assert (job_tags["sweep_dir"], job_tags["job"]) == (str(sweep), str(job))
        job_params = {param["key"]: param["value"] for param in named[f"sweep/{job}"]["data"]["params"]}
        assert job_params["seed"] == str(job + 1)

    shown = {path.removeprefix("figures/").rsplit("_step", 1)[0] for path in figures}
    assert shown == FIGURES
    assert sum(path.startswith("figures/val/confusion_matrix") for path in figures) == 2  # one per epoch
    assert png.startswith(b"\x89PNG")
