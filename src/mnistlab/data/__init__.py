from mnistlab.data.base import InMemoryDataModule
from mnistlab.data.function import FunctionDataModule
from mnistlab.data.mnist import MNISTDataModule
from mnistlab.data.rings import RingsDataModule

__all__ = ["FunctionDataModule", "InMemoryDataModule", "MNISTDataModule", "RingsDataModule"]
