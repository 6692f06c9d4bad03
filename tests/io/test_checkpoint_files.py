"""Checkpoints: written atomically, loaded only as plain tensors and values, and refused in one clear line."""

import os
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import Payload

import mnistlab.core.files
from mnistlab.core.errors import MnistlabError
from mnistlab.io.checkpoint_io import AtomicCheckpointIO
from mnistlab.io.checkpoints import load_checkpoint
from mnistlab.run.resume import check_resumable


def plain_checkpoint(**extra) -> dict:
    return {"state_dict": {"net.weight": torch.arange(6.0).reshape(2, 3)}, "epoch": 0, **extra}


@pytest.fixture
def payload_ckpt(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint like ours carrying a pickled payload, and the file that the payload would make."""
    marker = tmp_path / "payload_ran"
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(plain_checkpoint(run_config={}, hyper_parameters=Payload(marker)), path)
    return path, marker


def test_a_pickled_payload_is_refused_and_never_runs(payload_ckpt):
    path, marker = payload_ckpt
    with pytest.raises(MnistlabError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert str(path) in message and "refused" in message and "pickled" in message and "open" in message
    assert "\n" not in message
    assert not marker.exists()
    # The payload is live: loading without weights_only runs it. This is what the refusal prevents.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_resuming_from_a_pickled_payload_is_refused_before_it_runs(payload_ckpt):
    path, marker = payload_ckpt
    with pytest.raises(MnistlabError, match="refused"):
        check_resumable(path, {})
    assert not marker.exists()


def damaged(tmp_path: Path, how: str) -> Path:
    path = tmp_path / f"{how}.ckpt"
    torch.save(plain_checkpoint(), path)
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped":  # one bit of a stored tensor: torch.load alone would not notice
        with zipfile.ZipFile(path) as archive:
            member = next(info for info in archive.infolist() if "/data/" in info.filename)
        header = member.header_offset  # a zip entry's local header: 30 bytes, then its name and extra field
        name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
        data[header + 30 + name_length + extra_length] ^= 0x40
    elif how == "empty":
        data = b""
    elif how == "text":
        data = b"model weights: see attached\n"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("truncated", "truncated"),
        ("flipped", "corrupt: flipped/data/0 does not match its stored checksum"),
        ("empty", "empty (0 bytes)"),
        ("text", "cannot be read as a checkpoint"),
    ],
)
def test_a_broken_checkpoint_is_one_line_naming_the_file_and_the_problem(tmp_path, how, problem):
    path = damaged(tmp_path, how)
    with pytest.raises(MnistlabError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_a_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(MnistlabError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nowhere.ckpt")


def test_saving_goes_through_a_temporary_file_renamed_in_its_own_folder(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:  # os.replace, watched
        renames.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(mnistlab.core.files.os, "replace", replace)
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(plain_checkpoint(), path)
    [(temporary, target)] = renames
    assert Path(target) == path and Path(temporary).parent == path.parent  # one file system: an atomic rename
    assert Path(temporary).name.startswith(".last.ckpt.")  # hidden from Lightning's `last*.ckpt` search
    assert torch.equal(load_checkpoint(path)["state_dict"]["net.weight"], torch.arange(6.0).reshape(2, 3))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_a_save_that_fails_part_way_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(plain_checkpoint(), path)
    before = path.read_bytes()
    # A lambda cannot be pickled: torch.save fails after it has begun writing the file it was given.
    with pytest.raises(Exception, match="lambda"):
        io.save_checkpoint(plain_checkpoint(epoch=1, broken=lambda: None), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_one_training_state_is_written_once_and_given_both_names(tmp_path):
    io = AtomicCheckpointIO()
    state = {"epoch": 3, "global_step": 120, "state_dict": {"w": torch.ones(3)}}
    io.save_checkpoint(state, tmp_path / "best.ckpt")
    io.save_checkpoint({**state, "callbacks": {"last": 1}}, tmp_path / "last.ckpt")  # the same step: a link
    assert os.stat(tmp_path / "best.ckpt").st_ino == os.stat(tmp_path / "last.ckpt").st_ino
    io.save_checkpoint(
        {**state, "epoch": 4, "global_step": 160}, tmp_path / "last.ckpt"
    )  # a new state: written
    assert os.stat(tmp_path / "best.ckpt").st_ino != os.stat(tmp_path / "last.ckpt").st_ino
    assert torch.load(tmp_path / "best.ckpt", weights_only=True)["epoch"] == 3  # the link never changed it
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_run_writes_an_improving_epochs_state_once(compose_cfg, tmp_path):
    from mnistlab.commands.train import train

    result = train(compose_cfg("model=mlp", "model.hidden_sizes=[16]", "trainer.max_epochs=1", "logger=none"))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert result.best_epoch == 0  # one epoch: the best is the last
    assert os.stat(checkpoints / "best.ckpt").st_ino == os.stat(checkpoints / "last.ckpt").st_ino
