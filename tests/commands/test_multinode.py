"""Two nodes on one machine, started as a cluster starts them: two torchrun agents (one per "node", each in
its own folder) meeting through a c10d rendezvous on 127.0.0.1, one process each. The run they make is one
run, with the numbers of two processes on one node (marked `multinode`, run by .ci/run)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SHRINK, free_port, run_script, write_mnist

pytestmark = pytest.mark.multinode

MODEL = ["model=mlp", "model.hidden_sizes=[32]", "model.dropout=0.2", "data.batch_size=8", "seed=5"]
TRAINING = [*SHRINK, *MODEL, "trainer.max_epochs=4"]
# The same two processes, as two nodes of one process each (last: after SHRINK's trainer=cpu).
TWO_NODES = ["trainer=ddp_cpu", "trainer.num_nodes=2", "trainer.devices=1"]
NUMBERS = ["status", "best_val_loss", "best_epoch", "test_loss", "test_acc", "test_acc_per_class", "seed"]


class Node:
    """One node's torchrun agent, started in its own folder (where nothing may be written) and its own
    session, its output in files beside that folder."""

    def __init__(self, root: Path, name: str, port: int, rendezvous: str, script: str, *args: str) -> None:
        self.cwd = root / name
        self.cwd.mkdir()
        self.stdout, self.stderr = root / f"{name}.stdout", root / f"{name}.stderr"
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1"]
        rdzv = ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id={rendezvous}"]
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.agent = subprocess.Popen(
                [*torchrun, *rdzv, str(ROOT / script), *args],
                cwd=self.cwd,
                stdout=out,
                stderr=err,
                # logger=wandb offline (no network here), with W&B settings of its own, not the machine's
                env={**os.environ, "WANDB_MODE": "offline", "WANDB_CONFIG_DIR": str(root / "wandb")},
                start_new_session=True,
            )

    def worker(self) -> int:
        """The pid of the train.py process the agent started."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(self.agent.pid)], capture_output=True, text=True)
            for pid in map(int, children.stdout.split()):
                if script_of(pid).endswith(".py"):
                    return pid
            assert self.agent.poll() is None, self.stderr.read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"{self.cwd.name}'s agent started no worker within 120 s")

    def node_rank(self) -> int:
        """Which node the rendezvous made this one (its worker's GROUP_RANK): the agents race for rank 0."""
        environ = Path(f"/proc/{self.worker()}/environ").read_bytes().split(b"\0")
        [rank] = [item.split(b"=", 1)[1] for item in environ if item.startswith(b"GROUP_RANK=")]
        return int(rank)

    def wait(self, timeout: float = 300) -> int:
        return self.agent.wait(timeout=timeout)

    def kill(self) -> None:
        with_dead_ok(os.killpg, self.agent.pid, signal.SIGKILL)

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.read_text().splitlines() if line.startswith("error: ")]


def script_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2].decode()  # python -u <script>
    except (OSError, IndexError):
        return ""


def with_dead_ok(kill, *args) -> None:
    with contextlib.suppress(ProcessLookupError):
        kill(*args)


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def start_two_nodes(root: Path, script: str, *args: str) -> list[Node]:
    port, rendezvous = free_port(), f"mnistlab-{root.name}"
    return [Node(root, f"node{n}", port, rendezvous, script, *args, *TWO_NODES) for n in (0, 1)]


def run_two_nodes(root: Path, script: str, *args: str) -> list[Node]:
    nodes = start_two_nodes(root, script, *args)
    try:
        for node in nodes:
            assert node.wait() == 0, node.stderr.read_text()[-3000:]
    finally:
        for node in nodes:
            node.kill()
    return nodes


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("data"), n_test=203)  # odd: the two test blocks differ


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory, data) -> tuple[Path, list[Node]]:
    """A run of two nodes, its run dir left to the nodes to agree on: (the shared log dir, its nodes)."""
    root = tmp_path_factory.mktemp("two_nodes")
    args = [
        *TRAINING,
        "logger=[tensorboard,wandb]",
        f"paths.data_dir={data}",
        f"paths.log_dir={root / 'logs'}",
    ]
    nodes = run_two_nodes(root, "train.py", *args)
    return root / "logs", nodes


def test_two_nodes_make_one_run_dir_written_once(two_node_run):
    logs, nodes = two_node_run
    [run_dir] = (logs / "train" / "runs").iterdir()  # both nodes chose the same dir, through the rendezvous
    assert [p.name for p in logs.rglob(".hydra")] == [".hydra"]
    assert [p.relative_to(logs) for p in logs.rglob("metrics.json")] == [
        run_dir.relative_to(logs) / "metrics.json"
    ]
    assert metrics_of(run_dir)["status"] == "finished" and metrics_of(run_dir)["epochs_run"] == 4
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and len({path.name.split(".")[-2] for path in events}) == 1  # one writing process
    [wandb_run] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")  # one W&B run, rank zero's
    assert wandb_run.stem == f"run-{metrics_of(run_dir)['wandb_run_id']}"
    printed = "".join(node.stdout.read_text() for node in nodes)
    assert printed.count("Test results (best checkpoint)") == 1
    for node in nodes:
        assert files_under(node.cwd) == []  # nothing beside the run dir, on either node
        assert node.error_lines() == []


def test_two_nodes_give_the_numbers_of_two_processes_on_one_node(two_node_run, data, tmp_path):
    logs, _ = two_node_run
    [run_dir] = (logs / "train" / "runs").iterdir()
    one_node = tmp_path / "one_node"
    args = [*TRAINING, "trainer=ddp_cpu", f"paths.data_dir={data}", "logger=none"]
    run_script("train.py", *args, f"hydra.run.dir={one_node}")
    two, one = metrics_of(run_dir), metrics_of(one_node)
    assert two["status"] == one["status"] == "finished" and two["best_epoch"] == one["best_epoch"]
    for key in ("best_val_loss", "test_loss", "test_acc", "test_acc_per_class"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key


def test_eval_on_two_nodes_equals_one_process(two_node_run, tmp_path):
    logs, _ = two_node_run
    [run_dir] = (logs / "train" / "runs").iterdir()
    best = run_dir / "checkpoints" / "best.ckpt"
    run_two_nodes(tmp_path, "eval.py", f"ckpt_path={best}", f"paths.log_dir={tmp_path / 'logs'}")
    [two_dir] = (tmp_path / "logs" / "eval" / "runs").iterdir()
    run_script("eval.py", f"ckpt_path={best}", "trainer=cpu", f"hydra.run.dir={tmp_path / 'one'}")
    two, one = metrics_of(two_dir), metrics_of(tmp_path / "one")
    for key in ("test_loss", "test_acc", "test_acc_per_class"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key


def last_epoch(run_dir: Path) -> int | None:
    path = run_dir / "checkpoints" / "last.ckpt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["epoch"]
    except (OSError, RuntimeError, EOFError):  # not there yet
        return None


def the_run_dir(logs: Path, nodes: list[Node]) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = list((logs / "train" / "runs").glob("*"))
        if runs:
            return runs[0]
        for node in nodes:
            assert node.agent.poll() is None, node.stderr.read_text()[-3000:]
        time.sleep(0.1)
    raise AssertionError("no run dir within 120 s")


def wait_for_epoch(nodes: list[Node], run_dir: Path, epoch: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for node in nodes:
            assert node.agent.poll() is None, node.stderr.read_text()[-3000:]
        if (last_epoch(run_dir) or -1) >= epoch:
            return
        time.sleep(0.05)
    raise AssertionError(f"{run_dir} did not finish epoch {epoch} within 240 s")


def test_killing_the_second_nodes_agent_ends_the_run_with_one_line_and_failed(data, tmp_path):
    logs = tmp_path / "logs"
    args = [
        *TRAINING,
        "trainer.max_epochs=100",
        "logger=none",
        f"paths.data_dir={data}",
        f"paths.log_dir={logs}",
    ]
    nodes = start_two_nodes(tmp_path, "train.py", *args)
    try:
        run_dir = the_run_dir(logs, nodes)
        wait_for_epoch(nodes, run_dir, 0)
        first, second = sorted(nodes, key=Node.node_rank)
        orphan = second.worker()
        os.kill(second.agent.pid, signal.SIGKILL)  # the agent alone: its worker dies with it
        killed_at = time.monotonic()
        first.wait(timeout=300)  # the process-group timeout (trainer.strategy.timeout: 300 s)
        ended_after = time.monotonic() - killed_at
        assert not alive(orphan)
    finally:
        for node in nodes:
            node.kill()
    assert first.agent.returncode != 0
    assert ended_after < 30, ended_after
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "failed" and "a DDP process of this run stopped" in metrics["error"]
    [line] = first.error_lines()
    assert "ckpt_path=last" in line and str(run_dir) in line


def test_two_nodes_killed_after_an_epoch_resume_to_the_uninterrupted_numbers(two_node_run, data, tmp_path):
    logs, _ = two_node_run
    [uninterrupted] = (logs / "train" / "runs").iterdir()
    args = [*TRAINING, f"paths.data_dir={data}", f"paths.log_dir={tmp_path / 'logs'}"]
    killed = tmp_path / "killed"
    killed.mkdir()
    nodes = start_two_nodes(killed, "train.py", *args)
    try:
        run_dir = the_run_dir(tmp_path / "logs", nodes)
        wait_for_epoch(nodes, run_dir, 0)
        pids = [pid for node in nodes for pid in (node.agent.pid, node.worker())]
        for pid in pids:  # everything at once, as a power cut
            with_dead_ok(os.kill, pid, signal.SIGKILL)
        for node in nodes:
            node.wait(timeout=30)
    finally:
        for node in nodes:
            node.kill()
    assert last_epoch(run_dir) < 3 and not (run_dir / "metrics.json").exists()
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    run_two_nodes(resumed, "train.py", *args, "ckpt_path=last", f"hydra.run.dir={run_dir}")
    after, full = metrics_of(run_dir), metrics_of(uninterrupted)
    assert {k: after[k] for k in NUMBERS} == {k: full[k] for k in NUMBERS}
    weights = [
        torch.load(path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        for path in (run_dir, uninterrupted)
    ]
    for name, tensor in weights[1].items():
        assert torch.equal(weights[0][name], tensor), name


def test_a_trainer_that_does_not_count_the_launched_processes_is_one_line(data, tmp_path):
    """torchrun started one process on each of two nodes; the trainer counts on two on one node."""
    args = [*TRAINING, "logger=none", f"paths.data_dir={data}", f"paths.log_dir={tmp_path / 'logs'}"]
    port, wrong = free_port(), ["trainer=ddp_cpu", "trainer.num_nodes=1", "trainer.devices=2"]
    nodes = [Node(tmp_path, f"node{n}", port, "mismatch", "train.py", *args, *wrong) for n in (0, 1)]
    try:
        codes = [node.wait(timeout=120) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert all(codes)  # both nodes report the failure, and neither waits for the other
    lines = [line for node in nodes for line in node.error_lines()]
    assert lines == [
        "error: torchrun started 2 processes, 1 on each of 2 nodes, but trainer.devices=2 "
        "trainer.num_nodes=1 count on 2 on each of 1: set trainer.devices=1 trainer.num_nodes=2"
    ]
    assert not list((tmp_path / "logs").rglob("*.ckpt"))
