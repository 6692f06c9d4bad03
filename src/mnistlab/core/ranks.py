"""Which process of a DDP run this is, known before Lightning starts (torch-free: the resolvers use it)."""

import ctypes
import os
import signal
import sys
from datetime import datetime, timedelta
from typing import Any

from mnistlab.core.errors import MnistlabError

# What the launchers set in each process they start, before any of our code runs: torchrun (RANK), SLURM's
# tasks (SLURM_PROCID), Lightning's own DDP children (LOCAL_RANK and NODE_RANK).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


def is_rank_zero() -> bool:
    """Whether this is rank zero of a DDP run, or the only process: the one that writes the run's files."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)


def run_stamp(pattern: str) -> str:
    """The time stamp of a new run dir, the same in every process of a DDP run that a launcher started.

    Each process composes its own config, and ``${now:...}`` would give each its own dir. Under torchrun, rank
    zero's time reaches the others through the store torchrun's agent keeps for its workers; SLURM tasks
    started by srun name the dir after their job and step. (Lightning's own launcher hands its children
    rank zero's dir; submitit's jobs run in their sweep's dirs.)
    """
    if (
        int(os.environ.get("WORLD_SIZE") or 1) > 1
        and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    ):
        return torchrun_rank_zero_time(pattern)
    if int(os.environ.get("SLURM_STEP_NUM_TASKS") or 1) > 1 and "SUBMITIT_FOLDER" not in os.environ:
        return f"slurm_{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', 0)}"
    return datetime.now().strftime(pattern)


def torchrun_rank_zero_time(pattern: str) -> str:
    import torch.distributed  # torchrun has started torch's processes: it is there to be loaded

    store = torch.distributed.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=timedelta(seconds=60),
    )
    key = f"mnistlab/run_stamp/{os.environ.get('TORCHELASTIC_RESTART_COUNT', 0)}"
    if int(os.environ["RANK"]) == 0:
        store.set(key, datetime.now().strftime(pattern))
    return store.get(key).decode()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def started_by_torchrun() -> bool:
    """Whether torchrun's agent started this process (it names the run of its workers)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def end_with_the_torchrun_agent() -> None:
    """A worker that torchrun's agent started dies with its agent (Linux).

    The agent starts each worker in a session of its own, and a worker whose agent was killed (kill -9, the
    OOM killer) would train on unsupervised: its node would hold the job half alive, and nothing would report
    its end. Dying with the agent makes a lost agent a lost node: the other nodes' next collective fails, and
    they end with one line and ``status: failed`` (callbacks/dead_process.py).
    """
    if not started_by_torchrun() or not sys.platform.startswith("linux"):
        return
    # Asked of the kernel, for this process: it fails only where prctl is not allowed (then nothing changes).
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def launched_processes() -> tuple[str, int, int] | None:
    """(launcher, processes per node, nodes) of the torchrun or srun launch this process is one of; None when
    no launcher started it (Lightning starts its own processes then), as Lightning's environments tell."""
    if started_by_torchrun():
        world, per_node = int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_WORLD_SIZE"])
        return "torchrun", per_node, world // per_node
    interactive = os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")  # a shell on an allocation
    if "SLURM_STEP_NUM_TASKS" in os.environ and not interactive:
        tasks, nodes = int(os.environ["SLURM_STEP_NUM_TASKS"]), int(os.environ["SLURM_STEP_NUM_NODES"])
        return "srun", tasks // nodes, nodes
    return None


def check_launched_processes(devices: Any, num_nodes: Any) -> None:
    """The processes a launcher started are those the trainer counts on: otherwise Lightning fails deep in its
    set-up (an IndexError under torchrun), on every process."""
    launched = launched_processes()
    if launched is None or not isinstance(devices, int) or devices < 1 or not isinstance(num_nodes, int):
        return  # devices=-1 or auto: Lightning counts the devices itself
    launcher, per_node, nodes = launched
    if (devices, num_nodes) != (per_node, nodes):
        raise MnistlabError(
            f"{launcher} started {per_node * nodes} processes, {per_node} on each of {nodes} nodes, but "
            f"trainer.devices={devices} trainer.num_nodes={num_nodes} count on {devices} on each of "
            f"{num_nodes}: set trainer.devices={per_node} trainer.num_nodes={nodes}"
        )
