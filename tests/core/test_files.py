"""Files written whole or not at all; a disk without room is one line naming the file, never half a file."""

import json

import pytest
import torch
from conftest import fill_disk, small_disk

from mnistlab.core.cli import one_line
from mnistlab.core.files import DiskFull, atomic_file, write_json


def test_a_json_file_is_replaced_whole_or_not_at_all(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"status": "finished"})
    with pytest.raises(ZeroDivisionError), atomic_file(path) as file:
        file.write('{"status": "fail')
        1 / 0  # noqa: B018 - a crash halfway through the write
    assert json.loads(path.read_text()) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left beside it


@pytest.mark.parametrize("writer", ["json", "torch.save"])
def test_a_full_disk_names_the_file_and_its_room_and_keeps_what_was_there(tmp_path, writer):
    with small_disk(tmp_path / "disk", "4m") as disk:
        path = disk / "checkpoints" / "last.ckpt"
        path.parent.mkdir()
        torch.save({"epoch": 0}, path)
        before = path.read_bytes()
        fill_disk(disk, leave=4096)
        with pytest.raises(DiskFull) as error:
            if writer == "json":
                write_json(path, {"weights": "x" * 100_000})
            else:  # torch's zip writer says only "unexpected pos ...": the free space says the rest
                with atomic_file(path, "wb") as file:
                    torch.save({"weights": torch.zeros(100_000)}, file)
        message = str(error.value)
        assert message.startswith(f"cannot write {path}: its disk is full (")
        assert "paths.log_dir=... or hydra.run.dir=..." in message and "ckpt_path=last" in message
        assert path.read_bytes() == before  # the file it was to replace is whole
        assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # and nothing half-written
        assert one_line(error.value) == message  # what the entry points print


def test_an_os_error_of_a_full_disk_from_elsewhere_is_one_line_naming_its_file(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        fill_disk(disk)
        with pytest.raises(OSError) as error, (disk / "metrics.csv").open("w") as file:
            file.write("x" * 100_000)
            file.flush()
        assert one_line(error.value).startswith("cannot write")
        assert "its disk is full" in one_line(error.value) or "a disk is full" in one_line(error.value)
