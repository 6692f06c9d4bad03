"""What every datamodule here shares: in-memory batching and, for data with an official training set, a
seeded train/val split of it."""

from abc import abstractmethod
from collections.abc import Sequence
from typing import Annotated

import torch
from lightning import LightningDataModule
from pydantic import Field
from torch import Tensor
from torch.utils.data import DataLoader

from mnistlab.core.checks import OpenFraction, Positive, Seed, checked
from mnistlab.core.errors import MnistlabError
from mnistlab.data.batches import IndexBatches, SequentialIndexBatches, TensorPairs


def split_indices(
    size: int, val_fraction: float, seed: int, folds: int | None = None, fold: int | None = None
) -> tuple[Tensor, Tensor]:
    """Train and validation indices: a random ``val_fraction`` of ``size``, or with ``folds`` the ``fold``-th
    of ``folds`` disjoint parts of it (sizes differing by at most one); either fixed by ``seed`` alone."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    if folds is not None:
        if folds > size:
            raise MnistlabError(
                f"data.folds={folds} cannot split {size} training examples: "
                f"choose data.folds from 2 to {size}"
            )
        parts = torch.tensor_split(order, folds)
        return torch.cat([*parts[:fold], *parts[fold + 1 :]]), parts[fold]
    n_val = round(size * val_fraction)
    if not 0 < n_val < size:
        raise MnistlabError(
            f"data.val_fraction={val_fraction} leaves {n_val} of {size} training examples for validation: "
            "choose a fraction that keeps both sets non-empty"
        )
    return order[n_val:], order[:n_val]


def check_folds(folds: int | None, fold: int | None) -> None:
    """k-fold's keys only make sense together."""
    if folds is None and fold is not None:
        raise MnistlabError(f"data.fold={fold} needs data.folds (how many folds): e.g. data.folds=5")
    if folds is not None and fold is None:
        raise MnistlabError(
            f"data.folds={folds} needs data.fold (which fold validates): e.g. -m 'data.fold=range({folds})'"
        )
    if folds is not None and fold >= folds:
        raise MnistlabError(
            f"data.fold={fold} is not allowed with data.folds={folds}: it must be 0 to {folds - 1}"
        )


class InMemoryDataModule(LightningDataModule):
    """Holds train/val/test tensors in memory and serves shuffled batches by indexing them.

    Subclasses say what the data is (``task``, ``class_names``, ``input_shape``) and how to load its sets.
    ``shuffle_seed`` (the run's seed, given by run/build.py) alone orders the training batches.
    """

    task = "classification"  # or "regression": it chooses the model's task (mnistlab.tasks)
    class_names: Sequence[str]
    input_shape: tuple[int, ...]

    @checked
    def __init__(self, *, batch_size: Positive, eval_batch_size: Positive, shuffle_seed: Seed) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.shuffle_seed = shuffle_seed
        self.train_set: TensorPairs | None = None
        self.val_set: TensorPairs | None = None
        self.test_set: TensorPairs | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_outputs(self) -> int:
        """The model's output width: a score per class."""
        return self.num_classes

    @abstractmethod
    def load_train_and_val(self) -> tuple[TensorPairs, TensorPairs]:
        """The training and validation sets."""

    @abstractmethod
    def load_test(self) -> TensorPairs:
        """The test set."""

    def setup(self, stage: str | None = None) -> None:
        # Loading is cheap but not free: the run flow calls setup early to fail fast, Lightning calls it
        # again.
        if self.train_set is None:
            self.train_set, self.val_set = self.load_train_and_val()
        if self.test_set is None and stage in (None, "test", "predict"):
            self.test_set = self.load_test()
        if self.trainer is not None and self.trainer.strategy.root_device.type == "cuda":
            self._move_to(self.trainer.strategy.root_device)

    def _move_to(self, device: torch.device) -> None:
        # The whole data set fits on any GPU: keeping it there leaves only indexing in the training step.
        for tensors in (self.train_set, self.val_set, self.test_set):
            if tensors is not None:
                tensors.inputs, tensors.labels = tensors.inputs.to(device), tensors.labels.to(device)

    def _loader(
        self, tensors: TensorPairs | None, batch_size: int, shuffle: bool, training: bool = False
    ) -> DataLoader:
        assert tensors is not None, "setup() must run before the dataloaders are asked for"
        device = tensors.inputs.device
        # Each DDP process serves its own share (trainer.use_distributed_sampler is off: see IndexBatches).
        ranks = (
            {"rank": self.trainer.global_rank, "world_size": self.trainer.world_size} if self.trainer else {}
        )
        if shuffle:
            batches = IndexBatches(len(tensors), batch_size, shuffle, self.shuffle_seed, device, **ranks)
        else:  # training in order (overfit_batches) needs equal shares too: DDP steps all ranks together
            batches = SequentialIndexBatches(len(tensors), batch_size, device, **ranks, equal_shares=training)
        # Its own generator: making an iterator draws a (workerless, unused) seed from it instead of from the
        # global RNG, which dropout and augmentation use and a resumed run must find as the first run left it.
        return DataLoader(tensors, sampler=batches, batch_size=None, generator=torch.Generator())

    def train_dataloader(self) -> DataLoader:
        # Overfitting (debug=overfit) means the same few batches every epoch.
        overfitting = self.trainer is not None and self.trainer.overfit_batches > 0
        return self._loader(self.train_set, self.batch_size, shuffle=not overfitting, training=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)


class SplitDataModule(InMemoryDataModule):
    """Data with an official training and test set: validation is cut from the training set, never from the
    test set, by ``split_seed`` alone (so that every job of a sweep validates on the same examples)."""

    @checked
    def __init__(
        self,
        *,
        val_fraction: OpenFraction,
        split_seed: Seed,
        folds: Annotated[int, Field(ge=2)] | None,
        fold: Annotated[int, Field(ge=0)] | None,
        **batching,
    ) -> None:
        super().__init__(**batching)
        check_folds(folds, fold)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.folds, self.fold = folds, fold

    @abstractmethod
    def load_official_split(self, train: bool) -> tuple[Tensor, Tensor]:
        """The official training (``train=True``) or test set as (inputs, labels)."""

    def load_train_and_val(self) -> tuple[TensorPairs, TensorPairs]:
        """Validation is a seeded random ``val_fraction`` of the official training set, or fold ``fold`` of
        ``folds`` of it."""
        inputs, labels = self.load_official_split(train=True)
        train_idx, val_idx = split_indices(
            len(labels), self.val_fraction, self.split_seed, self.folds, self.fold
        )
        return TensorPairs(inputs[train_idx], labels[train_idx]), TensorPairs(
            inputs[val_idx], labels[val_idx]
        )

    def load_test(self) -> TensorPairs:
        return TensorPairs(*self.load_official_split(train=False))
