from mnistlab.callbacks.confusion_matrix import ConfusionMatrixFigure
from mnistlab.callbacks.hparams import HParamsTable
from mnistlab.callbacks.learning_rate import LearningRateMonitor
from mnistlab.callbacks.mistakes import ConfidentMistakesFigure
from mnistlab.callbacks.model_graph import ModelGraph
from mnistlab.callbacks.predictions import PredictionsGrid
from mnistlab.callbacks.run_config import RunConfigInCheckpoint

__all__ = [
    "ConfidentMistakesFigure",
    "ConfusionMatrixFigure",
    "HParamsTable",
    "LearningRateMonitor",
    "ModelGraph",
    "PredictionsGrid",
    "RunConfigInCheckpoint",
]
