"""A killed run resumes to the very numbers of the run never stopped; SIGTERM and Ctrl-C stop cleanly.

Real processes, real signals: train.py runs in subprocesses, and each is signalled once its last.ckpt holds a
finished epoch. They all start at once (most of their time goes to importing torch), then the killed run is
resumed from the path of its last.ckpt.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT, SHRINK, assert_one_line_error, write_mnist

EPOCHS = 3
STOP_AFTER_EPOCH = 0  # signal once last.ckpt holds this epoch (0-based): two more are still to go
# Dropout draws from the global RNG and batch norm keeps running statistics: both must resume exactly.
ARGS = [
    *SHRINK,
    "model=mlp",
    "model.hidden_sizes=[64]",
    "model.dropout=0.3",
    "model.batch_norm=true",
    f"trainer.max_epochs={EPOCHS}",
    "seed=7",
]
NUMBERS = ["status", "best_val_loss", "best_epoch", "test_loss", "test_acc", "test_acc_per_class", "seed"]
# Five processes share two cores: one thread each spares them OpenMP's spinning against each other.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


class Run:
    """train.py in the background, its output in files (a full pipe would block it)."""

    def __init__(self, root: Path, name: str, *args: str) -> None:
        self.name, self.args, self.run_dir = name, args, root / name
        self.stdout, self.stderr = root / f"{name}.stdout", root / f"{name}.stderr"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "train.py"), *args],
                cwd=root,
                stdout=out,
                stderr=err,
                env=ENV,
                # A shell that starts jobs in the background makes them ignore Ctrl-C; a terminal would not.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )

    def result(self) -> subprocess.CompletedProcess:
        self.process.wait(timeout=300)
        return subprocess.CompletedProcess(
            self.args, self.process.returncode, self.stdout.read_text(), self.stderr.read_text()
        )

    def succeeded(self) -> subprocess.CompletedProcess:
        result = self.result()
        assert result.returncode == 0, f"{self.name}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result


def last_epoch(run_dir: Path) -> int | None:
    """The epoch in run_dir's last.ckpt. Read while the run writes: only an atomic save makes this safe."""
    path = run_dir / "checkpoints" / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"] if path.exists() else None


def signal_after_epoch(victims: list[tuple[Run, signal.Signals]], epoch: int) -> None:
    pending = list(victims)
    read: dict[Path, float] = {}  # when each last.ckpt was last read: read it again only once it changed
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        for run, signum in list(pending):
            assert run.process.poll() is None, f"{run.name} ended early:\n{run.stderr.read_text()[-3000:]}"
            last = run.run_dir / "checkpoints" / "last.ckpt"
            if not last.exists() or read.get(last) == (changed := last.stat().st_mtime):
                continue
            read[last] = changed
            if last_epoch(run.run_dir) >= epoch:
                run.process.send_signal(signum)
                pending.remove((run, signum))
        time.sleep(0.01)
    assert not pending, "no last.ckpt of the wanted epoch within 300 s"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    args = [*ARGS, f"data.data_dir={write_mnist(root / 'data')}"]
    launched: list[Run] = []

    def start(name: str, *extra: str) -> Run:
        launched.append(Run(root, name, *args, *extra))
        return launched[-1]

    try:
        runs = SimpleNamespace(root=root)
        runs.full = start("full", f"hydra.run.dir={root / 'full'}")
        runs.killed = start("killed", f"hydra.run.dir={root / 'killed'}")
        runs.termed = start("termed", f"hydra.run.dir={root / 'termed'}")
        runs.ctrl_c = start("ctrl_c", f"hydra.run.dir={root / 'ctrl_c'}")
        stops = [(runs.killed, signal.SIGKILL), (runs.termed, signal.SIGTERM), (runs.ctrl_c, signal.SIGINT)]
        signal_after_epoch(stops, STOP_AFTER_EPOCH)
        for run, _ in stops:  # what each stopped run left, before a resume adds to it
            run.stopped = run.result()
            run.stopped_at = last_epoch(run.run_dir)
            metrics = run.run_dir / "metrics.json"
            run.stopped_metrics = json.loads(metrics.read_text()) if metrics.exists() else None
        runs.killed_resumed = start("killed_resumed", f"ckpt_path={root / 'killed/checkpoints/last.ckpt'}")
        yield runs
    finally:
        for run in launched:
            if run.process.poll() is None:
                run.process.kill()


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def assert_same_run(resumed_dir: Path, full_dir: Path) -> None:
    resumed, full = metrics_of(resumed_dir), metrics_of(full_dir)
    assert {key: resumed[key] for key in NUMBERS} == {key: full[key] for key in NUMBERS}
    assert resumed["epochs_run"] == full["epochs_run"] == EPOCHS
    assert Path(resumed["best_checkpoint"]).name == Path(full["best_checkpoint"]).name
    # Bit for bit: the weights, batch-norm statistics and optimizer state at the end are the same.
    resumed_last, full_last = (
        torch.load(path / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
        for path in (resumed_dir, full_dir)
    )
    assert resumed_last["state_dict"].keys() == full_last["state_dict"].keys()
    for name, tensor in full_last["state_dict"].items():
        assert torch.equal(resumed_last["state_dict"][name], tensor), name
    [resumed_optimizer], [full_optimizer] = resumed_last["optimizer_states"], full_last["optimizer_states"]
    for resumed_state, full_state in zip(
        resumed_optimizer["state"].values(), full_optimizer["state"].values(), strict=True
    ):
        assert all(torch.equal(resumed_state[key], full_state[key]) for key in full_state)


def test_a_run_killed_after_an_epoch_resumes_to_the_numbers_of_the_uninterrupted_run(runs):
    runs.full.succeeded()
    assert runs.killed.stopped.returncode == -signal.SIGKILL
    assert STOP_AFTER_EPOCH <= runs.killed.stopped_at < EPOCHS - 1  # killed mid-run, not after its end
    assert runs.killed.stopped_metrics is None
    runs.killed_resumed.succeeded()
    assert_same_run(runs.root / "killed", runs.root / "full")


@pytest.mark.parametrize(("name", "cause"), [("termed", "SIGTERM"), ("ctrl_c", "Ctrl-C")])
def test_sigterm_and_ctrl_c_keep_last_ckpt_record_the_epoch_and_exit_non_zero(runs, name, cause):
    run = getattr(runs, name)
    last = runs.root / name / "checkpoints/last.ckpt"
    assert_one_line_error(run.stopped, f"interrupted by {cause}", f"ckpt_path={last}")
    metrics = run.stopped_metrics
    assert metrics["status"] == "interrupted"
    assert metrics["interrupted_by"] == cause
    assert metrics["last_checkpoint"] == str(last)
    assert metrics["last_checkpoint_epoch"] == run.stopped_at < EPOCHS - 1
    assert metrics["epochs_run"] in (run.stopped_at, run.stopped_at + 1)
    assert metrics["epochs_run"] < EPOCHS
