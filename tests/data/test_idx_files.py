"""Broken IDX files, in the training or the test set, fail in one line naming the file before any training."""

from pathlib import Path

import numpy as np
import pytest
from conftest import N_TEST, write_idx

from mnistlab.core.errors import MnistlabError
from mnistlab.run.build import build_datamodule


def raw(mnist_dir: Path, name: str) -> Path:
    return mnist_dir / "MNIST" / "raw" / name


def claim_billions(path: Path) -> None:
    """Keep the file, but make its header promise 4 billion images."""
    data = bytearray(path.read_bytes())
    data[4:8] = (4_000_000_000).to_bytes(4, "big")
    path.write_bytes(bytes(data))


def wrong_magic(path: Path) -> None:
    path.write_bytes(
        b"\x1f\x8b\x08\x00" + path.read_bytes()[4:]
    )  # a gzip header: the file was never unpacked


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def label_out_of_range(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[20] = 12
    path.write_bytes(bytes(data))


def one_label_short(path: Path) -> None:
    write_idx(path, np.zeros(N_TEST - 1, np.uint8))


CASES = [  # how the file is broken, which file, what the message says
    (claim_billions, "train-images-idx3-ubyte", "the header promises 4,000,000,000 items"),
    (
        wrong_magic,
        "train-labels-idx1-ubyte",
        "not an unsigned-byte IDX file with 1 dimensions (magic number 1f8b0800",
    ),
    (truncate, "t10k-images-idx3-ubyte", "truncated or corrupt"),
    (label_out_of_range, "t10k-labels-idx1-ubyte", "labels must lie in 0..9, found 12 (item 12)"),
    (one_label_short, "t10k-labels-idx1-ubyte", f"holds {N_TEST:,} images but"),
]


@pytest.mark.parametrize(("breaks", "name", "problem"), CASES, ids=[case[0].__name__ for case in CASES])
def test_a_broken_idx_file_is_one_line_naming_it_when_the_data_is_prepared(
    compose_cfg, mnist_dir, breaks, name, problem
):
    path = raw(mnist_dir, name)
    breaks(path)
    with pytest.raises(MnistlabError) as error:
        # prepare_data is the run flow's first step with data: the test files are checked here too, not
        # only after training, when the test set is first read.
        build_datamodule(compose_cfg("data.download=false")).prepare_data()
    message = str(error.value)
    assert str(path) in message and problem in message, message
    assert "\n" not in message
