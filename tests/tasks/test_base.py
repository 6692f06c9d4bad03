"""What every task shares: its losses as metrics, the mean over examples, whatever the batches' sizes."""

import pytest
import torch
import torch.nn.functional as F
from conftest import loaded_datamodule
from lightning import Trainer

from mnistlab.run.build import build_model
from mnistlab.tasks.base import WeightedMean


def test_a_loss_is_the_mean_over_examples_not_over_batches():
    mean = WeightedMean()
    mean.update(torch.tensor(1.0), torch.tensor(4.0))  # a batch of four
    mean.update(torch.tensor(6.0), torch.tensor(1.0))  # a last batch of one
    mean.update(torch.tensor([1.0, 6.0]), torch.tensor([4.0, 1.0]))  # steps kept together, as in training
    assert mean.compute().item() == pytest.approx(2.0)  # (4 + 6) / 5, not 3.5


def test_the_validation_loss_is_the_loss_over_the_whole_set_at_once(compose_cfg, tmp_path):
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[8]", "data.eval_batch_size=7")  # a smaller last batch
    datamodule = loaded_datamodule(cfg)
    model = build_model(cfg, datamodule)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    [logged] = trainer.validate(model, datamodule=datamodule, verbose=False)
    x, y = datamodule.val_set.inputs, datamodule.val_set.labels
    assert len(y) % 7, "the test needs a last batch smaller than the others"
    with torch.no_grad():
        whole = F.cross_entropy(model.net(x), y).item()
    assert logged["val/loss"] == pytest.approx(whole, rel=1e-5)
