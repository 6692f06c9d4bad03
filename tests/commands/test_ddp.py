"""DDP with real processes (gloo, 2 ranks on the CPU): one run over two processes is one run.

One DDP training run is in the default suite; the rest (evaluation equality, resume, a dead process, a sweep)
take a DDP start-up each and are marked `ddp` (`pytest -m ddp`, run by .ci/run).
"""

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SHRINK, run_script

from mnistlab.sweeps.jobs import config_flags

DDP = [*SHRINK, "trainer=ddp_cpu", "model=mlp", "model.hidden_sizes=[32]", "model.dropout=0.2"]
NUMBERS = ["status", "best_val_loss", "best_epoch", "test_loss", "test_acc", "test_acc_per_class", "seed"]


def test_a_sweep_jobs_children_keep_the_config_choice_and_drop_the_sweep():
    argv = ["-m", "--config-name=train", "-cp", "conf", "model=mlp,cnn", "seed=1"]
    assert config_flags(argv) == ["--config-name=train", "-cp", "conf"]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_a_ddp_run_writes_one_run_dir_with_each_file_once(mnist_dir, tmp_path):
    logs = tmp_path / "logs"
    result = run_script(
        "train.py", *DDP, f"paths.data_dir={mnist_dir}", f"paths.log_dir={logs}", cwd=tmp_path
    )
    [run_dir] = (logs / "train" / "runs").iterdir()  # the children ran in rank zero's dir
    assert [p.name for p in logs.rglob(".hydra")] == [".hydra"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["epochs_run"] == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and len({name.name.split(".")[-2] for name in events}) == 1  # one writing process
    assert result.stdout.count("Test results (best checkpoint)") == 1
    assert "error" not in result.stderr.lower().replace("_error", "")
    # The figures were drawn once: one of each tag in rank zero's event files.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for path in events:
        accumulator = EventAccumulator(str(path), size_guidance={"images": 0})
        accumulator.Reload()
        tags += accumulator.Tags()["images"]
    assert sorted(tags) == sorted(set(tags)) and "~test/confusion_matrix" in tags and "~test/mistakes" in tags


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def ddp_checkpoint(tmp_path_factory) -> Path:
    """A DDP run's best checkpoint, trained once for the tests that evaluate it."""
    from conftest import write_mnist

    root = tmp_path_factory.mktemp("ddp")
    data = write_mnist(root / "data", n_test=203)  # an odd test set: the two ranks' blocks differ in size
    run_script("train.py", *DDP, f"paths.data_dir={data}", f"hydra.run.dir={root / 'run'}", "logger=none")
    return root / "run" / "checkpoints" / "best.ckpt"


@pytest.mark.ddp
def test_eval_on_two_processes_equals_one_process(ddp_checkpoint, tmp_path):
    results = {}
    for trainer in ("cpu", "ddp_cpu"):
        out = tmp_path / trainer
        run_script("eval.py", f"ckpt_path={ddp_checkpoint}", f"trainer={trainer}", f"hydra.run.dir={out}")
        results[trainer] = metrics_of(out)
    one, two = results["cpu"], results["ddp_cpu"]
    assert two["test_acc"] == pytest.approx(one["test_acc"], abs=1e-6)
    assert two["test_loss"] == pytest.approx(one["test_loss"], abs=1e-6)
    assert two["test_acc_per_class"] == pytest.approx(one["test_acc_per_class"], abs=1e-6)


def start(root: Path, name: str, *args: str) -> subprocess.Popen:
    out, err = (open(root / f"{name}.{kind}", "w") for kind in ("stdout", "stderr"))  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={root / name}"],
        cwd=root,
        stdout=out,
        stderr=err,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,  # its own process group: the test can kill all of a run's processes at once
    )


def last_epoch(run_dir: Path) -> int | None:
    path = run_dir / "checkpoints" / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"] if path.exists() else None


def wait_for_epoch(process: subprocess.Popen, run_dir: Path, epoch: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, (run_dir.parent / f"{run_dir.name}.stderr").read_text()[-3000:]
        if (last_epoch(run_dir) or -1) >= epoch:
            return
        time.sleep(0.05)
    raise AssertionError(f"{run_dir} did not finish epoch {epoch} within 240 s")


def ranks_of(process: subprocess.Popen) -> list[int]:
    """The pids of a DDP run: its main process (rank zero) and the children Lightning started."""
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout
    return [process.pid, *map(int, children.split())]


@pytest.mark.ddp
def test_a_ddp_run_killed_after_an_epoch_resumes_to_the_uninterrupted_numbers(mnist_dir, tmp_path):
    args = [*DDP, f"paths.data_dir={mnist_dir}", "trainer.max_epochs=3", "logger=none", "seed=5"]
    full = start(tmp_path, "full", *args)
    killed = start(tmp_path, "killed", *args)
    try:
        wait_for_epoch(killed, tmp_path / "killed", 0)
        os.killpg(killed.pid, signal.SIGKILL)  # every process of the run at once
        killed.wait(timeout=30)
        assert last_epoch(tmp_path / "killed") < 2 and not (tmp_path / "killed" / "metrics.json").exists()
        assert full.wait(timeout=300) == 0, (tmp_path / "full.stderr").read_text()[-3000:]
        resumed = start(tmp_path, "killed", *args, "ckpt_path=last")
        assert resumed.wait(timeout=300) == 0, (tmp_path / "killed.stderr").read_text()[-3000:]
    finally:
        for process in (full, killed):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    resumed_metrics, full_metrics = metrics_of(tmp_path / "killed"), metrics_of(tmp_path / "full")
    assert {k: resumed_metrics[k] for k in NUMBERS} == {k: full_metrics[k] for k in NUMBERS}
    resumed_last, full_last = (
        torch.load(tmp_path / name / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
        for name in ("killed", "full")
    )
    for name, tensor in full_last["state_dict"].items():
        assert torch.equal(resumed_last["state_dict"][name], tensor), name


def alive(run: subprocess.Popen, pid: int) -> bool:
    if pid == run.pid:  # ours: a zombie until waited for
        return run.poll() is None
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.ddp
@pytest.mark.parametrize("victim", [0, 1], ids=["rank 0", "rank 1"])
def test_one_dead_process_ends_the_run_in_bounded_time_with_one_line_and_a_status(
    mnist_dir, tmp_path, victim
):
    args = [*DDP, f"paths.data_dir={mnist_dir}", "trainer.max_epochs=100", "logger=none", "data.batch_size=8"]
    run = start(tmp_path, "run", *args)
    try:
        wait_for_epoch(run, tmp_path / "run", 0)
        pids = ranks_of(run)
        assert len(pids) == 2
        os.kill(pids[victim], signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = pids[1 - victim]
        while time.monotonic() - killed_at < 60 and alive(run, survivor):
            time.sleep(0.1)
        ended_after = time.monotonic() - killed_at
    finally:
        os.killpg(run.pid, signal.SIGKILL)
    assert ended_after < 30
    metrics = metrics_of(tmp_path / "run")
    assert metrics["status"] == "failed"
    assert "a DDP process of this run stopped" in metrics["error"]
    lines = [
        line for line in (tmp_path / "run.stderr").read_text().splitlines() if line.startswith("error: ")
    ]
    assert len(lines) == 1 and "ckpt_path=last" in lines[0], lines


@pytest.mark.ddp
def test_a_sweep_of_ddp_jobs_is_one_dir_and_one_row_per_job(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_script(
        "train.py",
        "-m",
        *DDP,
        f"paths.data_dir={mnist_dir}",
        "trainer.max_epochs=1",
        "logger=none",
        "seed=1,2",
        f"hydra.sweep.dir={sweep_dir}",
        f"paths.log_dir={tmp_path / 'logs'}",
        cwd=tmp_path,
    )
    with (sweep_dir / "summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["finished", "finished"]
    # The job dirs, and the sweep's own TensorBoard comparison of them (sweeps/summary.py): nothing else.
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "tensorboard"]
    assert not (tmp_path / "logs").exists()  # no child ran the sweep again, nor a run of its own
    for job in ("0", "1"):
        assert [p.name for p in (sweep_dir / job).rglob(".hydra")] == [".hydra"]
        assert metrics_of(sweep_dir / job)["status"] == "finished"


def launched_run(launcher: list[str], mnist_dir: Path, tmp_path: Path, *args: str) -> Path:
    """train.py started by an outside launcher (the command before the script), each process composing its
    own config: one run dir still."""
    logs = tmp_path / "logs"
    command = [*launcher, str(ROOT / "train.py"), *DDP, "logger=none", "trainer.max_epochs=1", *args]
    result = subprocess.run(
        [*command, f"paths.data_dir={mnist_dir}", f"paths.log_dir={logs}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Test results (best checkpoint)") == 1
    [run_dir] = (logs / "train" / "runs").iterdir()
    assert [p.name for p in logs.rglob(".hydra")] == [".hydra"]
    assert metrics_of(run_dir)["status"] == "finished"
    return run_dir


@pytest.mark.ddp
def test_torchrun_starts_one_run(mnist_dir, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    launched_run(torchrun, mnist_dir, tmp_path)


@pytest.mark.slurm
@pytest.mark.skipif(shutil.which("srun") is None, reason="no SLURM here: bash .ci/slurm/start.sh")
def test_srun_tasks_start_one_run_named_after_the_job(mnist_dir, tmp_path):
    run_dir = launched_run(["srun", "--ntasks-per-node=2", sys.executable], mnist_dir, tmp_path)
    assert run_dir.name.startswith("slurm_")


@pytest.mark.slurm
@pytest.mark.skipif(shutil.which("srun") is None, reason="no SLURM here: bash .ci/slurm/start.sh")
def test_srun_tasks_on_two_nodes_start_one_run(mnist_dir, tmp_path):
    srun = ["srun", "--nodes=2", "--ntasks-per-node=1", sys.executable]
    run_dir = launched_run(srun, mnist_dir, tmp_path, "trainer.num_nodes=2", "trainer.devices=1")
    assert run_dir.name.startswith("slurm_")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.ddp
def test_divergence_on_two_processes_stops_both_and_is_reported_once(mnist_dir, tmp_path):
    steps_per_epoch = math.ceil(math.ceil(540 / 2) / 32)  # 540 training images, two shares, batches of 32
    lr_jump_in_epoch_1 = [  # as tests/callbacks/test_divergence.py: the loss turns NaN early in epoch 1
        "scheduler=none",
        "+scheduler._target_=torch.optim.lr_scheduler.MultiStepLR",
        "+scheduler._partial_=true",
        f"+scheduler.milestones=[{steps_per_epoch + 2}]",
        "+scheduler.gamma=1e30",
    ]
    run_dir = tmp_path / "run"
    args = [*DDP, f"paths.data_dir={mnist_dir}", "trainer.max_epochs=4", "logger=none", *lr_jump_in_epoch_1]
    result = run_script("train.py", *args, f"hydra.run.dir={run_dir}", check=False)
    assert result.returncode != 0
    [line] = error_lines(result.stderr)
    assert "training diverged" in line and "at epoch 1" in line
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "diverged" and metrics["epochs_run"] == 1 and metrics["best_epoch"] == 0
    assert result.stdout.count("Test results (best checkpoint)") == 1


@pytest.mark.ddp
def test_sigterm_to_rank_zero_stops_every_process_and_is_reported_once(mnist_dir, tmp_path):
    args = [*DDP, f"paths.data_dir={mnist_dir}", "trainer.max_epochs=100", "logger=none", "data.batch_size=8"]
    run = start(tmp_path, "run", *args)
    try:
        wait_for_epoch(run, tmp_path / "run", 0)
        pids = ranks_of(run)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while alive(run, pids[1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(run, pids[1])
    finally:
        os.killpg(run.pid, signal.SIGKILL)
    [line] = error_lines((tmp_path / "run.stderr").read_text())
    assert "interrupted by SIGTERM" in line and "ckpt_path=" in line
    metrics = metrics_of(tmp_path / "run")
    assert metrics["status"] == "interrupted" and metrics["interrupted_by"] == "SIGTERM"


@pytest.mark.ddp
def test_sigterm_under_ddp_with_the_bar_on_says_so_on_a_line_of_its_own(mnist_dir, tmp_path):
    """The case users saw: the `error:` line ran on from the bar's last text."""
    args = [*DDP, f"paths.data_dir={mnist_dir}", "trainer.max_epochs=100", "logger=none", "data.batch_size=8"]
    with (tmp_path / "log").open("w") as log:  # python train.py ... > log 2>&1
        run = subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *args, "callbacks.progress_bar.refresh_rate=1",
             f"hydra.run.dir={tmp_path / 'run'}"],
            cwd=tmp_path, stdout=log, stderr=log, env={**os.environ, "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_epoch(run, tmp_path / "run", 0)
            time.sleep(0.5)  # the next epoch's bar is on screen
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=60) != 0
        finally:
            os.killpg(run.pid, signal.SIGKILL)
    text = (tmp_path / "log").read_text()
    assert "it/s" in text
    starts = [match.start() for match in re.finditer("error: ", text)]
    assert len(starts) == 1 and text[starts[0] - 1] == "\n", text[-1500:]
