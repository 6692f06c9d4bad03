"""What predict.py reads: images and folders of them, IDX and .npy arrays, CSV points; fatal vs per-file."""

import numpy as np
import pytest
import torch
from conftest import stroke_digits, write_idx
from PIL import Image

from mnistlab.core.errors import MnistlabError
from mnistlab.data.user_inputs import read_user_inputs

SHAPE = (1, 28, 28)


def test_a_folder_is_read_file_by_file_and_bad_files_become_problems(tmp_path):
    images, _ = stroke_digits(2, seed=0)
    Image.fromarray(255 - images[0]).resize((200, 200)).save(tmp_path / "a.png")
    Image.fromarray(255 - images[1]).resize((64, 90)).save(tmp_path / "b.jpg")
    (tmp_path / "c.png").write_bytes((tmp_path / "a.png").read_bytes()[:300])  # truncated
    (tmp_path / "d.txt").write_text("not an image")
    (tmp_path / ".hidden").write_text("skipped")
    (tmp_path / "sub").mkdir()
    found = read_user_inputs(tmp_path, SHAPE, "auto")
    assert [name.rsplit("/", 1)[-1] for name in found.names] == ["a.png", "b.jpg", "c.png", "d.txt"]
    assert sorted(found.problems) == [2, 3]
    assert "truncated" in found.problems[2] and "not an image" in found.problems[3]
    assert found.usable == [0, 1]
    assert found.inputs.shape == (2, *SHAPE)


def test_idx_and_npy_arrays_are_taken_as_model_inputs(tmp_path):
    images, _ = stroke_digits(5, seed=0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    from_idx = read_user_inputs(tmp_path / "t10k-images-idx3-ubyte", SHAPE, "auto")
    assert torch.equal(from_idx.inputs, torch.from_numpy(images).float().div(255)[:, None])
    assert from_idx.names[4] == "t10k-images-idx3-ubyte[4]"

    np.save(tmp_path / "floats.npy", images[:, None].astype(np.float32) / 255)
    np.save(tmp_path / "dark_on_light.npy", 255 - images)
    assert torch.allclose(read_user_inputs(tmp_path / "floats.npy", SHAPE, "auto").inputs, from_idx.inputs)
    inverted = read_user_inputs(tmp_path / "dark_on_light.npy", SHAPE, "auto").inputs
    assert torch.allclose(inverted, from_idx.inputs)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 28, 27), np.uint8), "shape (3, 28, 27)"),
        (np.zeros((3, 2, 28, 28), np.uint8), "N x 1 x 28 x 28"),
        (np.zeros((0, 28, 28), np.uint8), "N at least 1"),
        (np.full((2, 28, 28), 255.0), "floats must lie in [0, 1]"),
        (np.full((2, 28, 28), np.nan), "floats must lie in [0, 1]"),
        (np.zeros((2, 28, 28), np.int64), "dtype int64"),
    ],
)
def test_a_npy_that_does_not_fit_the_model_is_fatal(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(MnistlabError) as error:
        read_user_inputs(tmp_path / "x.npy", SHAPE, "auto")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_fatal_inputs_name_the_problem(tmp_path):
    with pytest.raises(MnistlabError, match="no such file or folder"):
        read_user_inputs(tmp_path / "missing", SHAPE, "auto")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnistlabError, match="holds no files"):
        read_user_inputs(tmp_path / "empty", SHAPE, "auto")
    (tmp_path / "points.csv").write_text("0.1,0.2\n")
    with pytest.raises(MnistlabError, match="this model takes images"):
        read_user_inputs(tmp_path / "points.csv", SHAPE, "auto")
    write_idx(tmp_path / "small-idx3-ubyte", np.zeros((2, 14, 14), np.uint8))
    with pytest.raises(MnistlabError, match=r"items of shape \(14, 14\), expected \(28, 28\)"):
        read_user_inputs(tmp_path / "small-idx3-ubyte", SHAPE, "auto")


def test_a_model_of_points_reads_a_csv_and_refuses_images(tmp_path):
    (tmp_path / "points.csv").write_text("x,y\n0.0,0.0\n0.9, -0.9\n\n0.5,0.5\n")
    found = read_user_inputs(tmp_path / "points.csv", (2,), "auto")
    assert torch.equal(found.inputs, torch.tensor([[0.0, 0.0], [0.9, -0.9], [0.5, 0.5]]))
    (tmp_path / "bad.csv").write_text("0.1,0.2\n0.3\n")
    with pytest.raises(MnistlabError, match=r"point 2 is '0\.3'"):
        read_user_inputs(tmp_path / "bad.csv", (2,), "auto")
    Image.new("L", (28, 28)).save(tmp_path / "digit.png")
    with pytest.raises(MnistlabError, match="takes points of 2 numbers, not images"):
        read_user_inputs(tmp_path / "digit.png", (2,), "auto")
