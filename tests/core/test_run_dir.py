"""Run dirs: never reused by a new run; a resume goes to its checkpoint's run dir, its config beside the
run's."""

import os
import re
import subprocess
import sys

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from mnistlab.core.errors import MnistlabError
from mnistlab.core.results import RunResult, Status
from mnistlab.core.run_dir import (
    JOB_TYPE_LENGTH,
    check_run_dir_is_new,
    config_subdir_for,
    run_dir_of,
    wandb_run_of,
    within,
)


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
    assert resume.hydra.run.dir == f"{tmp_path}/run"
    assert fresh.hydra.run.dir.startswith(f"{tmp_path}/logs/train/runs/")


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
