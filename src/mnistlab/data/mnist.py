"""MNIST and its drop-in siblings (Fashion-MNIST, KMNIST), read through torchvision."""

from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import BeforeValidator, Field
from torch import Tensor
from torchvision.datasets import KMNIST, MNIST, FashionMNIST

from mnistlab.core.checks import checked
from mnistlab.core.errors import MnistlabError
from mnistlab.data.augment import RandomAffine
from mnistlab.data.base import SplitDataModule
from mnistlab.data.idx import check_idx_file, check_labels

DATASETS: dict[str, type[MNIST]] = {"mnist": MNIST, "fashion_mnist": FashionMNIST, "kmnist": KMNIST}
IMAGE_SIZE = (28, 28)


class MNISTDataModule(SplitDataModule):
    """28x28 grey images, normalised once when loaded and held in memory as float32 (220 MB for MNIST's
    70,000): a training batch is then one indexing operation, as in a hand-written loop."""

    input_shape = (1, *IMAGE_SIZE)

    @checked
    def __init__(
        self,
        *,
        data_dir: str,
        dataset: Literal[tuple(DATASETS)],
        mean: float,
        std: Annotated[float, Field(gt=0)],
        download: bool,
        augment: Annotated[RandomAffine | None, BeforeValidator(lambda value: value or None)],  # {}: none
        **split_and_batching,
    ) -> None:
        super().__init__(**split_and_batching)
        self.data_dir = Path(data_dir)
        self.dataset_class = DATASETS[dataset]
        self.mean = mean
        self.std = std
        self.download = download
        self.augment = augment  # applied to training batches only
        self.class_names = tuple(self.dataset_class.classes)

    @property
    def raw_folder(self) -> Path:
        return self.data_dir / self.dataset_class.__name__ / "raw"

    def raw_files(self, train: bool) -> tuple[Path, Path]:
        """The (images, labels) IDX files of the official training or test set."""
        prefix = "train" if train else "t10k"
        names = [Path(url).stem for url, _ in self.dataset_class.resources]  # drops ".gz"
        images, labels = sorted(name for name in names if name.startswith(prefix))
        return self.raw_folder / images, self.raw_folder / labels

    def prepare_data(self) -> None:
        missing = [path for train in (True, False) for path in self.raw_files(train) if not path.exists()]
        if missing:
            self.download_or_fail(missing)
        for train in (True, False):  # the test files too: a broken one must fail before training, not after
            self.check_files(train)

    def download_or_fail(self, missing: list[Path]) -> None:
        if not self.download:
            raise MnistlabError(
                f"{missing[0]} is missing: put the {self.dataset_class.__name__} IDX files in "
                f"{self.raw_folder} "
                "or set data.data_dir=... to the folder that holds them (or data.download=true)"
            )
        try:
            for train in (True, False):
                self.dataset_class(str(self.data_dir), train=train, download=True)
        except Exception as error:  # torchvision raises several kinds, all meaning "no files"
            raise MnistlabError(
                f"{self.dataset_class.__name__} is not in {self.raw_folder} and could not be downloaded "
                f"({type(error).__name__}): set data.data_dir=... to a folder that holds "
                f"{self.dataset_class.__name__}/raw/ with the IDX files"
            ) from error

    def check_files(self, train: bool) -> None:
        """One clear line for a missing, truncated or inconsistent file: torchvision would trust them."""
        image_file, label_file = self.raw_files(train)
        for path in (image_file, label_file):
            if not path.exists():
                raise MnistlabError(f"{path} is missing: run prepare_data() or set data.data_dir=...")
        n_images = check_idx_file(image_file, IMAGE_SIZE)
        n_labels = check_idx_file(label_file, ())
        if n_images != n_labels:
            raise MnistlabError(
                f"{image_file} holds {n_images:,} images but {label_file} holds {n_labels:,} labels; "
                "the two files must come from the same set"
            )
        check_labels(label_file, self.num_classes)

    def load_official_split(self, train: bool) -> tuple[Tensor, Tensor]:
        self.check_files(train)
        data = self.dataset_class(str(self.data_dir), train=train, download=False)
        images = data.data.unsqueeze(1).to(torch.float32).div_(255)
        return images.sub_(self.mean).div_(self.std), data.targets.long()

    @property
    def background(self) -> float:
        """A blank (zero) pixel, normalised."""
        return -self.mean / self.std

    def on_after_batch_transfer(
        self, batch: tuple[Tensor, Tensor], dataloader_idx: int
    ) -> tuple[Tensor, Tensor]:
        # Not while overfitting (debug=overfit): those few batches must be the same every epoch.
        overfitting = self.trainer is not None and self.trainer.overfit_batches > 0
        if self.augment and self.trainer is not None and self.trainer.training and not overfitting:
            images, labels = batch
            return self.augment(images, background=self.background), labels
        return batch
