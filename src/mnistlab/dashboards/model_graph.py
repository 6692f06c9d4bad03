"""TensorBoard's GRAPHS tab: the model traced on one input of the data's shape."""

import warnings

import torch
from lightning import Callback, LightningModule, Trainer

from mnistlab.dashboards.tensorboard import tensorboard_writer


class ModelGraph(Callback):
    """Traces the model itself, not through the data hooks as the logger's ``log_graph`` does.

    ``log_graph`` would pass ``example_input_array`` through the datamodule's ``on_after_batch_transfer``,
    which expects an (images, labels) batch; a zero input of the data's shape needs no data at all.
    """

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        writer = tensorboard_writer(trainer)
        if writer is None:
            return
        example = torch.zeros(1, *trainer.datamodule.input_shape, device=pl_module.device)
        was_training = pl_module.training
        pl_module.eval()  # a deterministic trace: no dropout, batch norm on its running statistics
        try:
            # add_graph traces with torch.jit, which warns of its own future, and the trace reads every
            # attribute of the module, deprecated properties of its torchmetrics included.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", ".*torch.jit.trace.* is deprecated", FutureWarning)
                warnings.filterwarnings("ignore", "This property will be removed", DeprecationWarning)
                writer.add_graph(pl_module, example)
        finally:
            pl_module.train(was_training)
