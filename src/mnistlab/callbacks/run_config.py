from typing import Any

from lightning import Callback, LightningModule, Trainer


class RunConfigInCheckpoint(Callback):
    """Stores the run's resolved config (plain values only) in every checkpoint.

    It is what lets ``eval.py ckpt_path=...`` rebuild the right data and model without the training overrides.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["run_config"] = self.config
