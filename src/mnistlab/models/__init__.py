"""The nets (plain ``nn.Module``s: mlp, cnn, scratch; conf/model/ builds them) and the LightningModule that
trains one for a task (module.py)."""

from mnistlab.models.cnn import CNN
from mnistlab.models.mlp import MLP
from mnistlab.models.module import NetModule
from mnistlab.models.optim import GradientDescent
from mnistlab.models.scratch import ScratchMLP

__all__ = ["CNN", "MLP", "GradientDescent", "NetModule", "ScratchMLP"]
