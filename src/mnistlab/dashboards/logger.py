"""Lightning's TensorBoard logger, minus the ``epoch`` chart it adds to every logging call, with the test
stage's tags sorted after the training curves."""

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger


# TensorBoard's TIME SERIES tab sorts its tag groups by name and opens the first two, which for `test/`,
# `train/` and `val/` would be the test results (one point each) and train, with val closed. In TensorBoard
# alone the test stage's group is `~test`: `~` sorts after every letter, so train and val open and test comes
# last. Everywhere else (metrics.json, CSV, MLflow, the checkpoint monitor) the names stay `test/...`.
def tensorboard_tag(name: str) -> str:
    """The tag a metric or figure named ``stage/name`` has in TensorBoard."""
    return f"~{name}" if name.startswith("test/") else name


class OrderedTensorBoardLogger(TensorBoardLogger):
    """Lightning adds ``epoch`` to every set of metrics; as a chart it only counts upwards, and TensorBoard
    would open on it before the ``train/`` and ``val/`` groups a user came for."""

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        tagged = {tensorboard_tag(name): value for name, value in metrics.items() if name != "epoch"}
        super().log_metrics(tagged, step)
