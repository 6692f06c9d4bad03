"""Room on disk for a run's checkpoints, asked of the file system before training."""

import resource

import pytest

from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError


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
