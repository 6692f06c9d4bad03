"""Run dirs: never reused by a new run, found by `ckpt_path=last`, checked for room before training."""

import os
import resource
import time

import pytest
import torch

from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError
from mnistlab.core.run_dir import check_run_dir_is_new
from mnistlab.run.resume import resolve_ckpt_path


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


def test_ckpt_path_last_is_the_newest_last_checkpoint_of_the_run_dir(tmp_path):
    with pytest.raises(MnistlabError, match=r"holds no last.ckpt; add hydra.run.dir=<the run dir to resume>"):
        resolve_ckpt_path("last", tmp_path)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for age, name in enumerate(["last-v1.ckpt", "last.ckpt", "best.ckpt"]):
        (folder / name).write_bytes(b"")
        os.utime(folder / name, (time.time() - 100 * age,) * 2)
    assert resolve_ckpt_path("last", tmp_path) == str(folder / "last-v1.ckpt")


def test_a_folder_without_room_for_the_checkpoints_fails_before_training(compose_cfg, tmp_path):
    cfg = compose_cfg("model=mlp")
    # The kernel refuses this process any file over 1 MB, as a full disk refuses any new byte; checkpoints of
    # this MLP need more. (Python ignores SIGXFSZ, so writes fail with EFBIG instead of killing pytest.)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, hard))
    try:
        with pytest.raises(MnistlabError) as error:
            train(cfg)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'run'}: cannot hold this run's checkpoints (File too large")
    assert "paths.log_dir=" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


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
