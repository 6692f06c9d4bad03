"""The MNIST datamodule on small synthetic IDX files: the split, the test set, batches, bad input."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import N_TEST, N_TRAIN, loaded_datamodule, write_mnist
from hydra.utils import instantiate
from lightning import Callback

from mnistlab.core.errors import MnistlabError
from mnistlab.data import MNISTDataModule
from mnistlab.run.build import build_datamodule, build_model


def read_idx(path: Path) -> np.ndarray:
    """An IDX file read with numpy alone, to compare the datamodule against."""
    raw = path.read_bytes()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def pixels(images: torch.Tensor, dm: MNISTDataModule) -> torch.Tensor:
    """The file's bytes back from the datamodule's normalised floats."""
    return (images * dm.std + dm.mean).mul_(255).round_().to(torch.uint8)


def rows(images: torch.Tensor) -> list[bytes]:
    """One hashable key per image, so that sets of images can be compared."""
    return [image.numpy().tobytes() for image in images.reshape(len(images), -1)]


@pytest.mark.parametrize(("n_train", "val_fraction"), [(N_TRAIN, 0.1), (537, 0.1), (537, 0.25)])
def test_validation_is_a_disjoint_fraction_of_the_training_file(compose_cfg, tmp_path, n_train, val_fraction):
    data_dir = write_mnist(tmp_path / f"data{n_train}", n_train=n_train)
    dm = loaded_datamodule(compose_cfg(f"data.data_dir={data_dir}", f"data.val_fraction={val_fraction}"))

    n_val = round(n_train * val_fraction)
    assert (len(dm.train_set), len(dm.val_set)) == (n_train - n_val, n_val)
    train_rows, val_rows = rows(pixels(dm.train_set.inputs, dm)), rows(pixels(dm.val_set.inputs, dm))
    assert not set(train_rows) & set(val_rows)
    file_images = torch.from_numpy(read_idx(data_dir / "MNIST/raw/train-images-idx3-ubyte").copy())
    assert Counter(train_rows + val_rows) == Counter(rows(file_images))
    # Every image keeps its own label.
    file_labels = read_idx(data_dir / "MNIST/raw/train-labels-idx1-ubyte").tolist()
    label_of = dict(zip(rows(file_images), file_labels, strict=True))
    for split in (dm.train_set, dm.val_set):
        assert [label_of[key] for key in rows(pixels(split.inputs, dm))] == split.labels.tolist()


def test_k_folds_are_disjoint_cover_the_training_file_and_differ_in_size_by_at_most_one(
    compose_cfg, tmp_path
):
    n_train, folds = 601, 4  # not a multiple of 4: folds of 151, 150, 150, 150
    data_dir = write_mnist(tmp_path / "data601", n_train=n_train)
    modules = [
        loaded_datamodule(
            compose_cfg(f"data.data_dir={data_dir}", f"data.folds={folds}", f"data.fold={fold}")
        )
        for fold in range(folds)
    ]
    val_sets = [rows(pixels(dm.val_set.inputs, dm)) for dm in modules]
    file_images = torch.from_numpy(read_idx(data_dir / "MNIST/raw/train-images-idx3-ubyte").copy())
    assert Counter(key for val_set in val_sets for key in val_set) == Counter(rows(file_images))
    sizes = [len(val_set) for val_set in val_sets]
    assert sum(sizes) == n_train and max(sizes) - min(sizes) <= 1
    for dm, val_set in zip(modules, val_sets, strict=True):
        dm.setup("test")
        train_rows = rows(pixels(dm.train_set.inputs, dm))
        assert not set(train_rows) & set(val_set)
        assert Counter(train_rows + val_set) == Counter(rows(file_images))
        assert torch.equal(dm.test_set.inputs, modules[0].test_set.inputs)  # the test set stays the test set
        assert len(dm.test_set) == N_TEST
    # Fixed by data.split_seed alone: another seed validates on the same fold, another split_seed not.
    again = loaded_datamodule(
        compose_cfg(f"data.data_dir={data_dir}", "data.folds=4", "data.fold=2", "seed=7")
    )
    assert torch.equal(again.val_set.inputs, modules[2].val_set.inputs)
    other = loaded_datamodule(
        compose_cfg(f"data.data_dir={data_dir}", "data.folds=4", "data.fold=2", "data.split_seed=1")
    )
    assert not torch.equal(other.val_set.inputs, modules[2].val_set.inputs)


def test_split_is_the_same_for_every_global_seed(compose_cfg):
    val_sets = [loaded_datamodule(compose_cfg(f"seed={seed}")).val_set.inputs for seed in (0, 1, 12345)]
    assert all(torch.equal(val_sets[0], other) for other in val_sets[1:])


def test_split_changes_with_split_seed(compose_cfg):
    first, second = (loaded_datamodule(compose_cfg(f"data.split_seed={s}")).val_set.inputs for s in (1, 2))
    assert first.shape == second.shape
    assert not torch.equal(first, second)


def test_test_set_is_the_t10k_file_untouched(compose_cfg, mnist_dir):
    dm = loaded_datamodule(compose_cfg())
    dm.setup("test")
    raw = mnist_dir / "MNIST" / "raw"
    assert dm.test_set.inputs.shape == (N_TEST, 1, 28, 28)
    assert np.array_equal(
        pixels(dm.test_set.inputs, dm).squeeze(1).numpy(), read_idx(raw / "t10k-images-idx3-ubyte")
    )
    assert np.array_equal(dm.test_set.labels.numpy(), read_idx(raw / "t10k-labels-idx1-ubyte"))
    assert not set(rows(dm.test_set.inputs)) & set(rows(dm.train_set.inputs) + rows(dm.val_set.inputs))


def test_images_are_normalised_once_with_the_configured_mean_and_std(compose_cfg, mnist_dir):
    dm = loaded_datamodule(compose_cfg("data.mean=0.5", "data.std=0.25"))
    dm.setup("test")
    file_pixels = torch.from_numpy(read_idx(mnist_dir / "MNIST/raw/t10k-images-idx3-ubyte").copy())
    expected = (file_pixels.double().unsqueeze(1) / 255 - 0.5) / 0.25
    assert dm.test_set.inputs.dtype == torch.float32
    assert torch.allclose(dm.test_set.inputs.double(), expected, atol=1e-6)


def test_train_batches_have_the_configured_size_and_come_from_the_training_split(compose_cfg):
    dm = loaded_datamodule(compose_cfg("data.batch_size=32"))
    batches = list(dm.train_dataloader())

    n_train = len(dm.train_set)
    assert [len(labels) for _, labels in batches] == [32] * (n_train // 32) + [n_train % 32]
    images, labels = batches[0]
    assert (images.dtype, images.shape[1:], labels.dtype) == (torch.float32, (1, 28, 28), torch.int64)
    assert set(rows(images)) <= set(rows(dm.train_set.inputs))


def test_data_own_mean_and_std_normalise_to_zero_mean_unit_std(compose_cfg):
    unit = loaded_datamodule(compose_cfg("data.mean=0", "data.std=1")).train_set.inputs.double()
    mean, std = unit.mean().item(), unit.std().item()
    dm = loaded_datamodule(compose_cfg(f"data.mean={mean}", f"data.std={std}"))
    normalised = torch.cat([dm.on_after_batch_transfer(batch, 0)[0] for batch in dm.train_dataloader()])
    assert normalised.mean().item() == pytest.approx(0, abs=1e-4)
    assert normalised.std().item() == pytest.approx(1, abs=1e-4)


def test_eval_batches_cover_each_set_once_in_order(compose_cfg):
    dm = loaded_datamodule(compose_cfg("data.eval_batch_size=25"))
    dm.setup("test")
    for loader, tensors in ((dm.val_dataloader(), dm.val_set), (dm.test_dataloader(), dm.test_set)):
        images = torch.cat([images for images, _ in loader])
        assert torch.equal(images, tensors.inputs)


class BatchRecorder(Callback):
    """Records the images of every batch the Trainer hands the model: per epoch in training, and in
    validation, each as the model receives it (after the datamodule's batch hooks)."""

    def __init__(self) -> None:
        self.epochs: dict[int, list[bytes]] = {}
        self.validation: list[bytes] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.epochs.setdefault(trainer.current_epoch, []).extend(rows(batch[0]))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.validation.extend(rows(batch[0]))


def record_training_batches(cfg) -> tuple[BatchRecorder, MNISTDataModule]:
    dm = loaded_datamodule(cfg)
    recorder = BatchRecorder()
    trainer = instantiate(cfg.trainer, callbacks=[recorder], logger=False, enable_checkpointing=False)
    trainer.fit(build_model(cfg, dm), datamodule=dm)
    return recorder, dm


# data/augment=none: these tests follow which images arrive, in which order, not how they are distorted.
FAST_FIT = (
    "model=mlp",
    "model.hidden_sizes=[8]",
    "+trainer.limit_val_batches=0",
    "scheduler=none",
    "data/augment=none",
)


def test_every_training_sample_once_per_epoch_in_an_order_set_by_seed_and_epoch(compose_cfg):
    recorder, dm = record_training_batches(compose_cfg(*FAST_FIT, "trainer.max_epochs=2", "seed=1"))
    everything = dm.on_after_batch_transfer((dm.train_set.inputs, dm.train_set.labels), 0)[0]
    assert set(recorder.epochs) == {0, 1}
    for order in recorder.epochs.values():
        assert Counter(order) == Counter(rows(everything))
    assert recorder.epochs[0] != recorder.epochs[1]

    # The order depends on (seed, epoch) alone: not on the global torch RNG, the model or its init.
    torch.manual_seed(999)
    again, _ = record_training_batches(
        compose_cfg(*FAST_FIT, "trainer.max_epochs=2", "seed=1", "model.dropout=0.5")
    )
    assert again.epochs == recorder.epochs
    other_seed, _ = record_training_batches(compose_cfg(*FAST_FIT, "trainer.max_epochs=1", "seed=2"))
    assert other_seed.epochs[0] != recorder.epochs[0]


def test_overfit_debug_trains_on_the_same_few_batches_every_epoch(compose_cfg):
    # Augmentation on, as by default: it must not change those batches either.
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[8]", "debug=overfit")
    n_batches = cfg.trainer.overfit_batches
    cfg.trainer.max_epochs = 3
    recorder, _ = record_training_batches(cfg)
    assert len(recorder.epochs[0]) == n_batches * 32
    assert recorder.epochs[0] == recorder.epochs[1] == recorder.epochs[2]


@pytest.mark.parametrize(
    ("dataset", "folder", "first_class"),
    [
        ("fashion_mnist", "FashionMNIST", "T-shirt/top"),
        ("kmnist", "KMNIST", "o"),
    ],
)
def test_sibling_datasets_read_their_own_folder(compose_cfg, mnist_dir, dataset, folder, first_class):
    write_mnist(mnist_dir, dataset=folder, n_train=100, n_test=50)
    dm = loaded_datamodule(compose_cfg(f"data={dataset}"))
    dm.setup("test")
    assert (len(dm.train_set) + len(dm.val_set), len(dm.test_set)) == (100, 50)
    assert (dm.num_classes, dm.class_names[0]) == (10, first_class)


@pytest.mark.parametrize(
    ("val_fraction", "message"),
    [
        ("0", "data.val_fraction=0 is not allowed: it must be greater than 0"),
        ("1", "data.val_fraction=1 is not allowed: it must be less than 1"),
        ("-0.1", "data.val_fraction=-0.1 is not allowed: it must be greater than 0"),
        ("abc", "data.val_fraction='abc' is not allowed: it must be a number"),
        ("0.0001", "data.val_fraction=0.0001 leaves 0 of 600 training examples for validation"),
    ],
)
def test_val_fraction_outside_0_1_or_leaving_an_empty_set_is_refused(compose_cfg, val_fraction, message):
    with pytest.raises(MnistlabError) as error:
        loaded_datamodule(compose_cfg(f"data.val_fraction={val_fraction}"))
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("key", ["batch_size", "eval_batch_size"])
@pytest.mark.parametrize(
    ("value", "shown", "expected"),
    [("0", "0", "greater than or equal to 1"), ("true", "true", "a whole number")],
)
def test_batch_size_below_one_is_refused(compose_cfg, key, value, shown, expected):
    with pytest.raises(MnistlabError) as error:
        build_datamodule(compose_cfg(f"data.{key}={value}"))
    assert str(error.value) == f"data.{key}={shown} is not allowed: it must be {expected}"


def test_missing_files_without_download_name_the_folder_and_the_fix(compose_cfg, tmp_path):
    dm = build_datamodule(compose_cfg(f"data.data_dir={tmp_path}", "data.download=false"))
    with pytest.raises(MnistlabError, match=r"data\.data_dir=") as error:
        dm.prepare_data()
    assert str(tmp_path / "MNIST" / "raw") in str(error.value)


def test_labels_outside_the_classes_are_refused(compose_cfg, mnist_dir):
    labels = mnist_dir / "MNIST/raw/train-labels-idx1-ubyte"
    corrupted = bytearray(labels.read_bytes())
    corrupted[-1] = 10
    labels.write_bytes(bytes(corrupted))
    with pytest.raises(MnistlabError, match=r"labels must lie in 0\.\.9") as error:
        loaded_datamodule(compose_cfg())
    assert str(labels) in str(error.value)


def test_images_and_labels_of_different_counts_are_refused(compose_cfg, mnist_dir):
    raw = mnist_dir / "MNIST/raw"
    write_mnist(mnist_dir / "other", n_train=N_TRAIN - 1)
    (raw / "train-labels-idx1-ubyte").write_bytes(
        (mnist_dir / "other/MNIST/raw/train-labels-idx1-ubyte").read_bytes()
    )
    with pytest.raises(MnistlabError, match=f"holds {N_TRAIN} images but .* holds {N_TRAIN - 1} labels"):
        loaded_datamodule(compose_cfg())
