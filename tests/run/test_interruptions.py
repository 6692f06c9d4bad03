"""A run that a full disk stops: one line naming the file and the room, `"status": "failed"` when metrics.json
still fits, the earlier last.ckpt whole and nothing half-written beside it. Real train.py processes on a real
small file system (a tmpfs) that fills while they train; every writer of a run is met once."""

import json
import re
import time
from pathlib import Path

import pytest
import torch
from conftest import SHRINK, Run, assert_one_line_error, fill_disk, small_disk, write_mnist

from mnistlab.core.results import METRICS_FILE

# An MLP whose checkpoint (weights and Adam's two moments) is a few MB: more than the room left below.
MLP = ["model=mlp", "model.hidden_sizes=[512]", "trainer.max_epochs=4"]


def start_and_fill(tmp_path: Path, disk: Path, *args: str, when: str, leave: int, n_test: int = 200) -> Run:
    """train.py writing into ``disk``, whose room is taken (but ``leave`` bytes) once ``when`` exists."""
    data = write_mnist(tmp_path / "data", n_test=n_test)
    run_dir = disk / "run"
    run = Run(tmp_path, "full", *SHRINK, *MLP, f"data.data_dir={data}", f"hydra.run.dir={run_dir}", *args)
    deadline = time.monotonic() + 120
    while not list(run_dir.glob(when)) and time.monotonic() < deadline:
        assert run.process.poll() is None, run.stderr.read_text()[-3000:]
        time.sleep(0.05)
    fill_disk(disk, leave=leave)
    return run


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


def test_a_checkpoint_that_finds_the_disk_full_is_one_line_and_the_run_is_recorded_failed(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        # Room for metrics.json, not for the next checkpoint.
        run = start_and_fill(tmp_path, disk, when="checkpoints/last.ckpt", leave=200_000)
        result = run.result()
        run_dir = disk / "run"
        assert_one_line_error(result, f"cannot write {run_dir / 'checkpoints'}/", "its disk is full (")
        assert re.search(r"its disk is full \([\d.,]+ (bytes|kB)[ ]free\)", result.stderr)
        no_traceback(result)
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        assert metrics["status"] == "failed"
        assert metrics["error"] == result.stderr.strip().splitlines()[-1].removeprefix("error: ")
        # The last finished epoch's checkpoint is whole, and nothing half-written lies beside it.
        assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["epoch"] >= 0
        assert not [path.name for path in (run_dir / "checkpoints").iterdir() if path.suffix == ".tmp"]


@pytest.mark.slow  # a training run each; CI runs the slow group
@pytest.mark.parametrize(
    ("writer", "args", "when", "named"),
    [
        # The last checkpoint is written as the fit ends; then the test, then metrics.json.
        ("metrics.json", ["logger=none", "trainer.max_epochs=1"], "checkpoints/last.ckpt", METRICS_FILE),
        ("TensorBoard", ["trainer.enable_checkpointing=false"], "tensorboard/events.*", "tensorboard"),
        ("CSV", ["logger=csv", "trainer.enable_checkpointing=false"], "csv", "csv"),
        ("MLflow", ["logger=mlflow", "trainer.enable_checkpointing=false"], "mlflow.db", "mlflow.db"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_full_disk_is_one_line_naming_the_file_whichever_writer_meets_it(
    tmp_path, writer, args, when, named
):
    with small_disk(tmp_path / "disk") as disk:
        if writer == "MLflow":  # its database on the small disk too
            args = [*args, f"logger.mlflow.tracking_uri=sqlite:///{disk}/run/mlflow.db"]
        run = start_and_fill(tmp_path, disk, *args, when=when, leave=0, n_test=2000)
        result = run.result()
        assert_one_line_error(result, "its disk is full (", named)
        no_traceback(result)
