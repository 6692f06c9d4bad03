"""Seed 003's rings: generated from a seed, no files, with the same split and batching as MNIST."""

import torch
from conftest import loaded_datamodule

from mnistlab.data.rings import make_rings


def test_points_are_labelled_by_radius():
    points, labels = make_rings(5000, seed=3)
    radius2 = points.pow(2).sum(dim=1)
    assert points.dtype == torch.float32
    assert points.abs().max() <= 1
    assert torch.equal(labels == 0, radius2 >= 1)
    assert torch.equal(labels == 1, radius2 < 0.25)
    assert set(labels.tolist()) == {0, 1, 2}


def test_rings_build_from_config_without_files(compose_cfg, tmp_path):
    # paths.data_dir points at a folder that does not exist: rings need no files.
    cfg = compose_cfg(
        "data=rings", "data.train_size=1000", "data.test_size=300", f"paths.data_dir={tmp_path}/none"
    )
    dm = loaded_datamodule(cfg)
    dm.setup("test")
    assert (dm.num_classes, dm.input_shape) == (3, (2,))
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (900, 100, 300)
    train_points = {tuple(p) for p in dm.train_set.inputs.tolist()}
    assert not train_points & {tuple(p) for p in dm.val_set.inputs.tolist()}
    assert not train_points & {tuple(p) for p in dm.test_set.inputs.tolist()}
    images, labels = next(iter(dm.train_dataloader()))
    assert (images.shape, images.dtype, labels.dtype) == ((32, 2), torch.float32, torch.int64)


def test_rings_are_the_same_for_every_global_seed_and_change_with_data_seed(compose_cfg):
    small = ("data=rings", "data.train_size=500", "data.test_size=100")
    first, second = (loaded_datamodule(compose_cfg(*small, f"seed={seed}")) for seed in (1, 2))
    assert torch.equal(first.train_set.inputs, second.train_set.inputs)
    other = loaded_datamodule(compose_cfg(*small, "data.data_seed=4"))
    assert not torch.equal(first.train_set.inputs, other.train_set.inputs)
