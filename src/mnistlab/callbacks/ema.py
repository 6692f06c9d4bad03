from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging

from mnistlab.core.checks import OpenFraction, checked


class ExponentialMovingAverage(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights, for a Trainer that tests after it fits.

    Lightning keeps its average model after ``fit``; loading best.ckpt for the test then restores the live
    weights the checkpoint keeps beside the average (``current_model_state``), so the test would score other
    weights than the ones validation chose the checkpoint by. Outside a fit, the checkpoint's ``state_dict``
    (the average) is what is loaded, as eval.py, predict.py and export.py load it.
    """

    @checked
    def __init__(self, *, decay: OpenFraction) -> None:
        super().__init__(decay=decay)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self._average_model = None

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._average_model is not None:  # a resumed fit: the average and the live weights both come back
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
