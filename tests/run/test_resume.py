"""A killed run resumes to the very numbers of the run never stopped; SIGTERM and Ctrl-C stop cleanly.

Real processes, real signals: train.py runs in subprocesses, and each is signalled once its last.ckpt holds a
finished epoch. They all start at once (most of their time goes to importing torch), then the killed run is
resumed from the path of its last.ckpt.
"""

import json
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import SHRINK, Run, assert_one_line_error, write_mnist

from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError
from mnistlab.io.formats import FORMAT, FORMAT_KEY
from mnistlab.run.resume import check_resumable, resolve_ckpt_path

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
        launched.append(Run(root, name, *args, *extra, env=ENV))
        launched[-1].run_dir = root / name
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


# The runs fixture's five trainings in subprocesses are the default suite's largest burst: the slow group.
@pytest.mark.slow
def test_a_run_killed_after_an_epoch_resumes_to_the_numbers_of_the_uninterrupted_run(runs):
    runs.full.succeeded()
    assert runs.killed.stopped.returncode == -signal.SIGKILL
    assert STOP_AFTER_EPOCH <= runs.killed.stopped_at < EPOCHS - 1  # killed mid-run, not after its end
    assert runs.killed.stopped_metrics is None
    runs.killed_resumed.succeeded()
    assert_same_run(runs.root / "killed", runs.root / "full")


@pytest.mark.slow
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


def training_state(run_config: dict, step: int = 10) -> dict:
    """What Lightning saves at the end of an epoch, reduced to what a resume reads."""
    weights = {"net.weight": torch.zeros(2, 3)}
    return {"state_dict": weights, "epoch": 0, "global_step": step, "loops": {}, "optimizer_states": [],
            "run_config": run_config, FORMAT_KEY: FORMAT}  # fmt: skip


def test_only_a_whole_training_state_of_the_same_run_can_be_resumed(tmp_path):
    weights_only = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}, "epoch": 0}, weights_only)
    with pytest.raises(MnistlabError, match="it lacks loops, optimizer_states, global_step, run_config"):
        check_resumable(weights_only, {})

    run_config = {"seed": 7, "model": {"dropout": 0.3}, "data": {"data_dir": "/a", "batch_size": 32}}
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(training_state(run_config), path)
    moved = {**run_config, "data": {"data_dir": "/b", "batch_size": 32}, "trainer": {"max_epochs": 9}}
    check_resumable(path, moved)  # the data may move and the run may grow longer
    written_before = tmp_path / "format1.ckpt"
    torch.save(
        {key: value for key, value in training_state(run_config).items() if key != FORMAT_KEY}, written_before
    )
    with pytest.raises(MnistlabError, match=r"it was written by an earlier mnistlab \(checkpoint format 1\)"):
        check_resumable(written_before, run_config)
    with pytest.raises(MnistlabError) as error:
        check_resumable(path, {**run_config, "model": {"dropout": 0.5}})
    message = str(error.value)
    assert "model.dropout=0.3" in message and "model.dropout=0.5" in message
    assert str(tmp_path / "run" / ".hydra" / "overrides.yaml") in message


def test_a_schedule_planned_for_the_run_length_cannot_be_stretched_by_a_resume(tmp_path):
    onecycle = {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "_partial_": True, "max_lr": 0.01}
    run_config = {"seed": 7, "scheduler": onecycle, "trainer": {"max_epochs": 1}}
    path = tmp_path / "last.ckpt"
    torch.save(training_state(run_config), path)
    check_resumable(path, run_config)
    # Lightning would restore the one-epoch schedule and fail in the second epoch ("Tried to step 18 times").
    with pytest.raises(MnistlabError) as error:
        check_resumable(path, {**run_config, "trainer": {"max_epochs": 2}})
    assert "planned for trainer.max_epochs=1, and a resume cannot stretch it to 2" in str(error.value)


@pytest.mark.parametrize(
    ("key", "then", "now"),
    [
        ("precision", "32-true", "bf16-mixed"),
        ("gradient_clip_val", None, 1.0),
        ("accumulate_grad_batches", 1, 2),
        ("deterministic", False, True),
    ],
)
def test_a_resume_keeps_the_trainer_settings_that_change_every_step(tmp_path, key, then, now):
    run_config = {"seed": 7, "trainer": {key: then, "max_epochs": 1}}
    path = tmp_path / "last.ckpt"
    torch.save(training_state(run_config), path)
    check_resumable(path, run_config)
    with pytest.raises(MnistlabError) as error:
        check_resumable(path, {**run_config, "trainer": {key: now, "max_epochs": 1}})
    assert f"trainer.{key}={then!r} but this resume has {now!r}" in str(error.value)


def test_a_resume_from_a_checkpoint_the_run_went_on_past_is_refused(tmp_path):
    run_config = {"seed": 7}
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(training_state(run_config, step=20), checkpoints / "best.ckpt")
    torch.save(training_state(run_config, step=60), checkpoints / "last.ckpt")
    check_resumable(checkpoints / "last.ckpt", run_config)
    with pytest.raises(MnistlabError) as error:
        check_resumable(checkpoints / "best.ckpt", run_config)
    message = str(error.value)
    assert "would rewind it" in message and f"resume with ckpt_path={checkpoints / 'last.ckpt'}" in message
    assert "eval.py" in message


def test_ckpt_path_last_is_the_newest_last_checkpoint_of_the_run_dir(tmp_path):
    with pytest.raises(MnistlabError, match=r"holds no last.ckpt; add hydra.run.dir=<the run dir to resume>"):
        resolve_ckpt_path("last", tmp_path)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for age, name in enumerate(["last-v1.ckpt", "last.ckpt", "best.ckpt"]):
        (folder / name).write_bytes(b"")
        os.utime(folder / name, (time.time() - 100 * age,) * 2)
    assert resolve_ckpt_path("last", tmp_path) == str(folder / "last-v1.ckpt")


def test_ckpt_path_last_resumes_the_run_and_only_the_same_run(compose_cfg, tmp_path):
    run = ["model=mlp", "seed=3", "scheduler=none"]  # no schedule planned for the run's length: it may grow
    train(compose_cfg(*run, "trainer.max_epochs=1"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0
    with pytest.raises(MnistlabError) as error:
        train(compose_cfg("model=mlp", "seed=4", "scheduler=none", "trainer.max_epochs=2", "ckpt_path=last"))
    assert f"ckpt_path={last}: the run was trained with seed=3 but this resume has seed=4" in str(error.value)
    assert torch.load(last, weights_only=True)["epoch"] == 0  # the refused resume trained nothing
    assert train(compose_cfg(*run, "trainer.max_epochs=2", "ckpt_path=last")).epochs_run == 2
    assert torch.load(last, weights_only=True)["epoch"] == 1
