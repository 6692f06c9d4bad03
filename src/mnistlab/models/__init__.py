from mnistlab.models.base import ImageClassifier
from mnistlab.models.cnn import CNN
from mnistlab.models.mlp import MLP
from mnistlab.models.optim import GradientDescent
from mnistlab.models.scratch import ScratchMLP

__all__ = ["CNN", "MLP", "GradientDescent", "ImageClassifier", "ScratchMLP"]
