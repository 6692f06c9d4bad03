"""The function datamodule: y = f(x) for x from U[-1, 1); training, validation and test sets each drawn on
their own, of their own sizes, from data_seed alone. No files."""

import math

import pytest
import torch
from conftest import loaded_datamodule

from mnistlab.core.errors import MnistlabError
from mnistlab.data.function import draw_function
from mnistlab.run.build import build_datamodule

SMALL = ("data=function", "data.train_size=1000", "data.val_size=400", "data.test_size=300")


@pytest.mark.parametrize(
    ("name", "target"),
    [("square", lambda x: x * x), ("cubic", lambda x: x * x * x), ("sine", lambda x: torch.sin(math.pi * x))],
)
def test_targets_are_the_named_function_of_inputs_drawn_from_minus_one_to_one(name, target):
    x, y = draw_function(name, 5000, seed=3, stream=0)
    assert (x.shape, y.shape, x.dtype, y.dtype) == ((5000, 1), (5000, 1), torch.float32, torch.float32)
    assert -1 <= x.min() < -0.99 and 0.99 < x.max() < 1
    assert abs(x.mean().item()) < 0.05  # uniform: its mean is 0 within a few standard errors (0.008)
    assert torch.allclose(y, target(x))


def test_the_three_sets_have_their_own_sizes_and_are_drawn_apart(compose_cfg, tmp_path):
    # paths.data_dir points at a folder that does not exist: the data needs no files.
    dm = loaded_datamodule(compose_cfg(*SMALL, f"paths.data_dir={tmp_path}/none"))
    dm.setup("test")
    assert (dm.task, dm.num_outputs, tuple(dm.class_names), dm.input_shape) == ("regression", 1, (), (1,))
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (1000, 400, 300)
    inputs = [set(tensors.inputs.flatten().tolist()) for tensors in (dm.train_set, dm.val_set, dm.test_set)]
    assert [len(values) for values in inputs] == [1000, 400, 300]
    assert not inputs[0] & inputs[1] and not inputs[0] & inputs[2] and not inputs[1] & inputs[2]
    # Validation is not cut from the training draw: a larger training set leaves it as it was.
    larger = loaded_datamodule(compose_cfg(*SMALL, "data.train_size=2000"))
    assert torch.equal(larger.val_set.inputs, dm.val_set.inputs)
    assert torch.equal(larger.train_set.inputs[:1000], dm.train_set.inputs)
    x, y = next(iter(dm.train_dataloader()))
    assert (x.shape, y.shape, y.dtype) == ((32, 1), (32, 1), torch.float32)  # SHRINK's batch of 32


def test_the_data_depends_on_data_seed_only_and_the_batch_order_on_seed(compose_cfg):
    first, second = (loaded_datamodule(compose_cfg(*SMALL, f"seed={seed}")) for seed in (1, 2))
    assert torch.equal(first.train_set.inputs, second.train_set.inputs)
    assert not torch.equal(next(iter(first.train_dataloader()))[0], next(iter(second.train_dataloader()))[0])
    other = loaded_datamodule(compose_cfg(*SMALL, "data.data_seed=4"))
    assert not torch.equal(first.train_set.inputs, other.train_set.inputs)
    # Neighbouring seeds share no stream: seed 4's training set is not seed 3's validation set.
    assert not torch.equal(other.train_set.inputs[:400], first.val_set.inputs)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.function=tan", "data.function='tan' is not allowed: it must be 'square', 'cubic' or 'sine'"),
        ("data.val_size=0", "data.val_size=0 is not allowed: it must be greater than or equal to 1"),
        ("data.train_size=0", "data.train_size=0 is not allowed: it must be greater than or equal to 1"),
    ],
)
def test_an_unknown_function_or_an_empty_set_is_a_clear_error(compose_cfg, override, message):
    with pytest.raises(MnistlabError) as error:
        build_datamodule(compose_cfg(*SMALL, override))
    assert str(error.value) == message
