from typing import Any

from lightning import Callback, LightningModule, Trainer

from mnistlab.io.formats import FORMAT, FORMAT_KEY


class RunConfigInCheckpoint(Callback):
    """Stores the run's resolved config (plain values only) and the checkpoint's format in every checkpoint.

    It is what lets ``eval.py ckpt_path=...`` rebuild the right data and model without the training overrides.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["run_config"] = self.config
        checkpoint[FORMAT_KEY] = FORMAT
