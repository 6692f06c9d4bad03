"""Which process of a DDP run this is, known before Lightning starts, from each launcher's variables."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mnistlab.core.ranks import is_rank_zero


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
