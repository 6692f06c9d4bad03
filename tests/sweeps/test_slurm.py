"""hydra/launcher=slurm on a real two-node SLURM cluster (.ci/slurm/start.sh; the `slurm` marker), and
hydra/launcher=submitit_local, which needs none. A missing cluster is one line before any job."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_one_line_error, run_script

TINY = [
    "model=mlp",
    "model.hidden_sizes=[16]",
    "trainer.max_epochs=1",
    "callbacks.progress_bar.refresh_rate=0",
    "trainer.enable_model_summary=false",
    "data.eval_batch_size=100",
    "logger=none",
]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=5", "hydra.launcher.signal_delay_s=30"]
NUMBERS = ["status", "best_val_loss", "best_epoch", "test_loss", "test_acc", "test_acc_per_class", "seed"]


def read_summary(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slurm  # needs no cluster, but keeps the default suite short
def test_no_sbatch_is_one_line_before_any_job(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    overrides = [*SLURM, *TINY, "seed=1,2", f"paths.data_dir={mnist_dir}", f"hydra.sweep.dir={sweep_dir}"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *overrides],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path)},  # a PATH without sbatch
        timeout=120,
    )
    assert_one_line_error(result, "sbatch is not on this machine's PATH", "hydra/launcher=submitit_local")
    assert not sweep_dir.exists()


@pytest.mark.slurm  # with its siblings: two jobs' start-ups are too long for the default suite
def test_submitit_local_runs_a_sweep_to_its_summary(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "local"
    run_script(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        *TINY,
        "trainer=cpu",
        f"paths.data_dir={mnist_dir}",
        "seed=1,2",
        f"hydra.sweep.dir={sweep_dir}",
    )
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["finished", "finished"]
    assert sorted(row["run_dir"] for row in rows) == [str(sweep_dir / "0"), str(sweep_dir / "1")]


slurm = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM here: bash .ci/slurm/start.sh")


@pytest.mark.slurm
@slurm
def test_an_unknown_partition_is_one_line_before_any_job(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_script(
        "train.py", "-m", *SLURM, "hydra.launcher.partition=nope", *TINY, f"paths.data_dir={mnist_dir}",
        f"hydra.sweep.dir={sweep_dir}", check=False,
    )  # fmt: skip
    assert_one_line_error(result, "hydra.launcher.partition=nope is not a partition", "debug")
    assert not sweep_dir.exists()


@pytest.mark.slurm
@slurm
def test_a_slurm_sweep_of_two_jobs_ends_in_a_summary_of_both(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_script("train.py", "-m", *SLURM, *TINY, "trainer=cpu", f"paths.data_dir={mnist_dir}", "seed=1,2",
               f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["finished", "finished"]
    assert sorted(row["run_dir"] for row in rows) == [str(sweep_dir / "0"), str(sweep_dir / "1")]


@pytest.mark.slurm
@slurm
def test_a_slurm_ddp_job_is_two_tasks_and_one_run(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_script("train.py", "-m", *SLURM, *TINY, "trainer=ddp_cpu", "trainer.max_epochs=2",
               f"paths.data_dir={mnist_dir}", "seed=3", f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    [row] = read_summary(sweep_dir)
    assert row["status"] == "finished"
    job_dir = sweep_dir / "0"
    assert [p.name for p in job_dir.rglob(".hydra")] == [".hydra"]
    logs = (sweep_dir / ".submitit").rglob("*_0_log.err")
    assert "MEMBER: 1/2" in "".join(path.read_text() for path in logs)  # two SLURM tasks joined the run
    assert metrics_of(job_dir)["epochs_run"] == 2


def squeue_state(job: str) -> str:
    shown = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
    return shown.stdout.strip()


@pytest.mark.slurm
@slurm
def test_a_requeued_slurm_job_resumes_its_run_to_the_uninterrupted_numbers(mnist_dir, tmp_path):
    args = [*TINY, "trainer=cpu", "trainer.max_epochs=10", "data.batch_size=4", "model.dropout=0.2", "seed=4",
            f"paths.data_dir={mnist_dir}"]  # fmt: skip
    run_script("train.py", *args, f"hydra.run.dir={tmp_path / 'uninterrupted'}")
    sweep_dir = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "-m", *SLURM, *args, f"hydra.sweep.dir={sweep_dir}"],
        stdout=(tmp_path / "sweep.out").open("w"),
        stderr=subprocess.STDOUT,
    )
    job = None
    try:
        last = sweep_dir / "0" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 180
        while not last.exists() and time.monotonic() < deadline:
            assert sweep.poll() is None, (tmp_path / "sweep.out").read_text()[-3000:]
            time.sleep(0.2)
        [submitted] = [path.name.split("_")[0] for path in (sweep_dir / ".submitit").rglob("*_submitted.pkl")]
        queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
        [job] = [name for name in queued if name.split("_")[0] == submitted]  # 12, or 12_0 in an array
        assert squeue_state(job) == "RUNNING", "the job ended before it could be requeued: make it longer"
        subprocess.run(["scontrol", "requeue", job], check=True)
        while squeue_state(job) != "PENDING" and time.monotonic() < deadline:
            time.sleep(0.5)
        # A requeued job may start again only after about two minutes; let it start now.
        subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)
        assert sweep.wait(timeout=240) == 0, (tmp_path / "sweep.out").read_text()[-3000:]
        job = None
    finally:
        if sweep.poll() is None:
            sweep.kill()
        if job is not None:  # a job the failed test left behind
            subprocess.run(["scancel", job], capture_output=True)
    [row] = read_summary(sweep_dir)
    assert row["status"] == "finished"
    job_dir = sweep_dir / "0"
    assert list(job_dir.glob(".hydra/requeued_*")), "the requeued job did not run in the same dir"
    resumed, full = metrics_of(job_dir), metrics_of(tmp_path / "uninterrupted")
    assert {k: resumed[k] for k in NUMBERS} == {k: full[k] for k in NUMBERS}


@pytest.mark.slurm
@slurm
def test_a_two_node_slurm_job_is_one_run_with_the_numbers_of_one_node(mnist_dir, tmp_path):
    args = [*TINY, "trainer.max_epochs=2", "model.dropout=0.2", "seed=3", f"paths.data_dir={mnist_dir}"]
    sweep_dir = tmp_path / "sweep"
    run_script("train.py", "-m", *SLURM, *args, "trainer=ddp_cpu", "trainer.num_nodes=2", "trainer.devices=1",
               f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    [row] = read_summary(sweep_dir)
    assert row["status"] == "finished"
    job_dir = sweep_dir / "0"
    assert [p.name for p in job_dir.rglob(".hydra")] == [".hydra"]
    assert sorted(p.name for p in (job_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    # One task on each node (submitit's log of each task names its node), joined in one process group.
    [submitted] = (sweep_dir / ".submitit").glob("*/*_submitted.pkl")
    job = submitted.name.split("_")[0]
    logs = {task: (submitted.parent / f"{job}_{task}_log.out").read_text() for task in (0, 1)}
    assert "node=0(2)" in logs[0] and "node=1(2)" in logs[1]
    nodes = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "NumNodes=2 " in nodes
    run_script("train.py", *args, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'one_node'}")
    two, one = metrics_of(job_dir), metrics_of(tmp_path / "one_node")
    for key in ("best_val_loss", "test_loss", "test_acc", "test_acc_per_class"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
