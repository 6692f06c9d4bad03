"""What a user looks at: in TensorBoard the logger, figures, the HPARAMS row, model graph and LR chart; in the
terminal the progress bar."""

from mnistlab.dashboards.confusion_matrix import ConfusionMatrixFigure
from mnistlab.dashboards.hparams import HParamsTable
from mnistlab.dashboards.learning_rate import LearningRateChart
from mnistlab.dashboards.logger import OrderedTensorBoardLogger
from mnistlab.dashboards.mistakes import ConfidentMistakesFigure
from mnistlab.dashboards.model_graph import ModelGraph
from mnistlab.dashboards.predictions import PredictionsGrid
from mnistlab.dashboards.progress_bar import ThrottledProgressBar
from mnistlab.dashboards.regression_fit import RegressionFitFigure

__all__ = [
    "ConfidentMistakesFigure",
    "ConfusionMatrixFigure",
    "HParamsTable",
    "LearningRateChart",
    "ModelGraph",
    "OrderedTensorBoardLogger",
    "PredictionsGrid",
    "RegressionFitFigure",
    "ThrottledProgressBar",
]
