"""Run dirs: never reused by a new run, written by one process at a time; a resume goes to its checkpoint's
run dir, and its config beside the run's; a run dir keeps its W&B run."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import CONF, SHRINK, Run, assert_one_line_error, write_mnist
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from mnistlab.core.errors import MnistlabError
from mnistlab.core.results import RunResult, Status
from mnistlab.core.run_dir import (
    JOB_TYPE_LENGTH,
    check_run_dir_is_new,
    claim,
    claim_or_refuse,
    config_subdir_for,
    release,
    run_dir_of,
    wandb_run_of,
    within,
)
from mnistlab.core.run_dir import holder as holder_of


def test_a_dir_holding_a_killed_or_finished_run_is_refused_unless_resumed(tmp_path):
    check_run_dir_is_new(tmp_path, None)  # empty: fine
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")  # a killed run leaves no metrics.json
    with pytest.raises(MnistlabError) as error:
        check_run_dir_is_new(tmp_path, None)
    assert f"{tmp_path} already holds a run (checkpoints/last.ckpt)" in str(error.value)
    assert f"ckpt_path=last hydra.run.dir={tmp_path}" in str(error.value)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(MnistlabError, match=r"metrics\.json"):
        check_run_dir_is_new(tmp_path, None)
    check_run_dir_is_new(tmp_path, str(tmp_path / "checkpoints" / "last.ckpt"))  # a resume: fine


def test_resume_path_gives_the_checkpoints_own_run_dir():
    assert run_dir_of("/runs/a/checkpoints/last.ckpt", "/runs/new") == "/runs/a"
    assert run_dir_of(None, "/runs/new") == "/runs/new"
    assert run_dir_of("last", "/runs/new") == "/runs/new"  # `last` goes with hydra.run.dir=<run dir>
    assert run_dir_of("/elsewhere/model.ckpt", "/runs/new") == "/runs/new"


def test_config_goes_to_dot_hydra_and_never_over_a_run_already_in_the_dir(tmp_path):
    # A command that failed before training left only its config: the next one may take the dir over.
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 1\n")
    assert config_subdir_for(None, str(tmp_path)) == ".hydra"
    (tmp_path / "metrics.json").write_text("{}\n")
    for ckpt_path in (None, str(tmp_path / "checkpoints" / "last.ckpt")):
        subdir = config_subdir_for(ckpt_path, str(tmp_path))
        assert subdir.startswith(".hydra/") and not (tmp_path / subdir).exists()


def test_hydra_run_dir_of_a_resume_is_the_checkpoints_run_dir(tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        resume = compose(
            "train", [f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt"], return_hydra_config=True
        )
        fresh = compose("train", [f"paths.log_dir={tmp_path}/logs"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    HydraConfig.instance().set_config(resume)  # paths resolve from Hydra's runtime, as in a run
    assert resume.hydra.run.dir == f"{tmp_path}/run"
    HydraConfig.instance().set_config(fresh)
    assert fresh.hydra.run.dir.startswith(f"{tmp_path}/logs/train/runs/")


def test_two_runs_started_together_in_one_dir_one_trains_and_the_other_stops_naming_it(tmp_path):
    data = write_mnist(tmp_path / "data")
    run_dir = tmp_path / "one_dir"
    # Long enough that the one that takes the dir still trains when the other (started together, a double
    # Enter) reaches it, however the machine's load delays either; it is stopped once the other has ended.
    args = [*SHRINK, "model=mlp", "logger=none", "trainer.max_epochs=1000", f"data.data_dir={data}"]
    runs = [Run(tmp_path, name, *args, f"hydra.run.dir={run_dir}") for name in ("first", "second")]
    deadline = time.monotonic() + 300
    while all(run.process.poll() is None for run in runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    loser = next(n for n, run in enumerate(runs) if run.process.poll() is not None)
    winner = runs[1 - loser]
    winner.process.send_signal(signal.SIGTERM)
    assert winner.result().returncode == 1  # interrupted, as it was asked
    assert_one_line_error(
        runs[loser].result(),
        f"{run_dir} is in use by another run (process {winner.process.pid} on {socket.gethostname()},",
        "wait for it to end, or choose another hydra.run.dir",
    )
    assert json.loads((run_dir / "metrics.json").read_text())["interrupted_by"] == "SIGTERM"  # the one writer
    # The refused run's config went beside the run's, never over it.
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert len(list((run_dir / ".hydra").glob("refused_*/config.yaml"))) == 1


def hold(run_dir, seconds: float, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Another process that takes ``run_dir`` and keeps it ``seconds`` (or until it is killed)."""
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom mnistlab.core.run_dir import claim\n"
        f"assert claim(Path({str(run_dir)!r}))\nprint('held', flush=True)\ntime.sleep({seconds})\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_dir_whose_run_was_killed_is_free_again(tmp_path):
    holder = hold(tmp_path, 60)
    assert not claim(tmp_path)
    assert holder_of(tmp_path)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)  # kill -9: the kernel drops its lock
    holder.wait()
    assert claim(tmp_path)
    release(tmp_path)


def test_a_requeued_slurm_job_takes_its_dir_over_from_its_earlier_self(tmp_path, monkeypatch):
    holder = hold(tmp_path, 2, env={"SLURM_JOB_ID": "77"})
    monkeypatch.setenv("SLURM_JOB_ID", "78")  # another job: refused at once
    with pytest.raises(MnistlabError, match="is in use by another run"):
        claim_or_refuse(tmp_path)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the same job, requeued: it waits for the dir
    started = time.monotonic()
    claim_or_refuse(tmp_path)
    assert holder.poll() is not None and time.monotonic() - started < 30
    release(tmp_path)


@pytest.mark.slow  # two eval.py and two sweeps, started together
def test_two_evaluations_or_sweeps_started_together_in_one_dir_are_refused_but_one(tmp_path):
    data = write_mnist(tmp_path / "data")
    trained = tmp_path / "trained"
    Run(
        tmp_path, "train", *SHRINK, "model=mlp", f"data.data_dir={data}", f"hydra.run.dir={trained}"
    ).succeeded()
    ckpt = trained / "checkpoints" / "best.ckpt"
    evaluations = [
        Run(tmp_path, f"eval{n}", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}", script="eval.py")
        for n in range(2)
    ]
    sweep = [
        "-m",
        *SHRINK,
        "model=mlp",
        "seed=1,2",
        f"data.data_dir={data}",
        f"hydra.sweep.dir={tmp_path / 'sw'}",
    ]
    sweeps = [Run(tmp_path, f"sweep{n}", *sweep) for n in range(2)]
    for runs, key in ((evaluations, "hydra.run.dir"), (sweeps, "hydra.sweep.dir")):
        results = [run.result() for run in runs]
        assert sorted(result.returncode for result in results) == [0, 1], [r.stderr[-2000:] for r in results]
        refused = next(result for result in results if result.returncode)
        assert_one_line_error(refused, "is in use by another run (process", f"choose another {key}")
    assert sorted(path.name for path in (tmp_path / "sw").glob("*/metrics.json")) == ["metrics.json"] * 2


def write_offline_wandb_run(run_dir, run_id: str) -> None:
    """A real (offline) W&B run's files in run_dir/wandb, as logger=wandb leaves them."""
    start = f"import wandb; wandb.init(mode='offline', dir={str(run_dir)!r}, id={run_id!r}).finish()"
    environment = {**os.environ, "WANDB_CONFIG_DIR": str(run_dir / "wandb_config"), "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", start], check=True, env=environment, timeout=120)


def test_a_run_dir_keeps_its_wandb_run_and_a_new_one_gets_a_new_id(tmp_path):
    new = wandb_run_of(str(tmp_path / "new"))
    assert re.fullmatch("[a-z0-9]{8}", new) and wandb_run_of(str(tmp_path / "new")) != new
    killed = tmp_path / "killed"  # killed before it wrote metrics.json: its W&B files say which run it was
    write_offline_wandb_run(killed, "first001")
    assert wandb_run_of(str(killed)) == "first001"
    write_offline_wandb_run(killed, "second01")  # the newest of its W&B runs
    assert wandb_run_of(str(killed)) == "second01"
    RunResult(status=Status.INTERRUPTED, wandb_run_id="fromjson").write(killed)  # metrics.json says it
    assert wandb_run_of(str(killed)) == "fromjson"
    RunResult(status=Status.FINISHED).write(tmp_path / "written")
    assert RunResult.read(tmp_path / "written").wandb_run_id is None  # no W&B there
    RunResult(status=Status.FINISHED).write(killed)  # metrics.json names the W&B run of its run dir
    assert RunResult.read(killed).wandb_run_id == "second01"


def test_a_long_job_type_is_cut_to_what_wandb_takes_and_stays_apart_from_others():
    assert within("model=mlp", JOB_TYPE_LENGTH) == "model=mlp"
    long = "data.data_dir=/a/long/path/" + "x" * 80
    cut = [within(long + end, JOB_TYPE_LENGTH) for end in ("a", "b")]
    assert [len(text) for text in cut] == [JOB_TYPE_LENGTH] * 2 and cut[0] != cut[1]
    assert within(long + "a", JOB_TYPE_LENGTH) == cut[0]  # the same setting, the same job type
