"""IDX files are checked against their own header before torchvision reads them."""

from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx

from mnistlab.core.errors import MnistlabError
from mnistlab.data.idx import check_idx_file


@pytest.fixture
def images(tmp_path: Path) -> Path:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((7, 28, 28), np.uint8))
    return path


def test_a_valid_file_gives_its_item_count(images):
    assert check_idx_file(images, (28, 28)) == 7


@pytest.mark.parametrize("cut", [1, 28 * 28, 28 * 28 * 7])
def test_a_truncated_file_is_named(images, cut):
    images.write_bytes(images.read_bytes()[:-cut])
    with pytest.raises(MnistlabError, match="truncated or corrupt") as error:
        check_idx_file(images, (28, 28))
    assert str(images) in str(error.value)


def test_a_file_too_short_for_its_header_is_named(images):
    images.write_bytes(b"\0\0\x08")
    with pytest.raises(MnistlabError, match="too short for an IDX header") as error:
        check_idx_file(images, (28, 28))
    assert str(images) in str(error.value)


def test_a_file_that_is_not_idx_is_named(images):
    images.write_bytes(b"<html>" + images.read_bytes()[6:])
    with pytest.raises(MnistlabError, match="not an unsigned-byte IDX file") as error:
        check_idx_file(images, (28, 28))
    assert str(images) in str(error.value)


def test_items_of_the_wrong_shape_are_refused(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(MnistlabError, match=r"items of shape \(32, 32\), expected \(28, 28\)"):
        check_idx_file(path, (28, 28))
