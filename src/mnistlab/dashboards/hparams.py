"""TensorBoard's HPARAMS tab: what the user set for this run, against the metrics a sweep is judged by."""

from collections.abc import Mapping, Sequence
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf
from torch.utils.tensorboard.summary import hparams

from mnistlab.dashboards.logger import tensorboard_tag
from mnistlab.dashboards.tensorboard import tensorboard_writer


class HParamsTable(Callback):
    """Writes one HPARAMS row for the run: the columns named in the config, and ``metrics``; the other
    loggers (CSV's hparams.yaml, MLflow's params) get the same columns.

    Lightning would log the model's constructor arguments, which differ between models; TensorBoard takes the
    columns from one run's summary, so every run writes the same keys and runs of any model line up. The
    metric values shown are the last ones each run logged under those tags.
    """

    def __init__(self, hparams: Mapping[str, Any], metrics: Sequence[str]) -> None:
        self.hparams = {name: table_value(value) for name, value in hparams.items()}
        self.metrics = list(metrics)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for logger in trainer.loggers:
            if not isinstance(logger, TensorBoardLogger):
                logger.log_hyperparams(self.hparams)
        writer = tensorboard_writer(trainer)
        if writer is None:
            return
        # Straight to the run's own event file, as Lightning's log_hyperparams does: add_hparams would
        # open a new run for it. No metric value is written here, so no placeholder (hp_metric -1) appears.
        file_writer = writer._get_file_writer()
        for summary in hparams(self.hparams, dict.fromkeys(map(tensorboard_tag, self.metrics))):
            file_writer.add_summary(summary)


def table_value(value: Any) -> bool | int | float | str:
    """Numbers and text as they are; lists and null as text; a group of settings as one text cell."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return " ".join(f"{key}={table_value(item)}" for key, item in value.items() if item is not None)
    if isinstance(value, bool | int | float | str):
        return value
    return "none" if value is None else str(value)
