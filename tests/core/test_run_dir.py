"""Run dirs: never reused by a new run; a resume goes to its checkpoint's run dir, its config beside the
run's."""

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from mnistlab.core.errors import MnistlabError
from mnistlab.core.run_dir import check_run_dir_is_new, config_subdir_for, run_dir_of


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
