"""Lightning's TensorBoard logger, minus the ``epoch`` chart it adds to every logging call."""

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning adds ``epoch`` to every set of metrics; as a chart it only counts upwards, and TensorBoard
    would open on it before the ``test/``, ``train/`` and ``val/`` groups a user came for."""

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics({name: value for name, value in metrics.items() if name != "epoch"}, step)
