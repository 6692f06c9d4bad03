from mnistlab.data.base import InMemoryDataModule
from mnistlab.data.mnist import MNISTDataModule
from mnistlab.data.rings import RingsDataModule

__all__ = ["InMemoryDataModule", "MNISTDataModule", "RingsDataModule"]
