"""Which process of a DDP run this is, known before Lightning starts, from each launcher's variables."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistlab.core.errors import MnistlabError
from mnistlab.core.ranks import check_launched_processes, is_rank_zero


def test_rank_zero_is_known_from_each_launchers_variables(monkeypatch):
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert is_rank_zero()
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.setenv(name, "1")
        assert not is_rank_zero(), name
        monkeypatch.setenv(name, "0")
    assert is_rank_zero()


def test_a_torchrun_worker_dies_with_its_agent(tmp_path):
    """A stand-in agent (a shell) starts a worker in a session of its own, as torchrun does, and is killed."""
    pid = None
    worker = (
        "import time; from mnistlab.core.ranks import end_with_the_torchrun_agent; "
        "end_with_the_torchrun_agent(); open('ready', 'w').close(); time.sleep(600)"
    )
    agent = subprocess.Popen(
        ["sh", "-c", f'setsid {sys.executable} -c "{worker}" & echo $! > worker.pid; wait'],
        cwd=tmp_path,
        env={**os.environ, "TORCHELASTIC_RUN_ID": "test"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int((tmp_path / "worker.pid").read_text())
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait()
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)
    finally:
        agent.kill()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


LAUNCH_VARIABLES = ("TORCHELASTIC_RUN_ID", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "SLURM_STEP_NUM_TASKS",
                    "SLURM_STEP_NUM_NODES", "SLURM_JOB_NAME")  # fmt: skip


@pytest.mark.parametrize(
    ("launch", "message"),
    [
        (
            {"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1"},
            "torchrun started 2 processes",
        ),
        (
            {"SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NUM_NODES": "2", "SLURM_JOB_NAME": "train"},
            "srun started 4",
        ),
    ],
    ids=["torchrun", "srun"],
)
def test_processes_a_launcher_started_must_be_the_trainers(monkeypatch, launch, message):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    check_launched_processes(2, 1)  # no launcher: Lightning starts the processes itself
    for name, value in launch.items():
        monkeypatch.setenv(name, value)
    per_node = int(launch.get("LOCAL_WORLD_SIZE", 2))
    check_launched_processes(per_node, 2)  # as launched
    check_launched_processes(-1, 2)  # every visible GPU: Lightning counts
    with pytest.raises(MnistlabError) as error:
        check_launched_processes(2 * per_node, 1)
    assert message in str(error.value) and f"set trainer.devices={per_node} trainer.num_nodes=2" in str(
        error.value
    )


def test_a_shell_on_a_slurm_allocation_is_no_launch(monkeypatch):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "SLURM_STEP_NUM_TASKS": "1",
        "SLURM_STEP_NUM_NODES": "1",
        "SLURM_JOB_NAME": "bash",
    }.items():
        monkeypatch.setenv(name, value)
    check_launched_processes(2, 1)  # `srun --pty bash`, then train.py: Lightning starts its own processes
