"""Every architecture, built from conf/model: its forward pass, a few steps that learn, its checkpoints."""

import re

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from lightning import Trainer
from torch.utils.data import DataLoader, TensorDataset

from mnistlab.errors import MnistlabError
from mnistlab.run.train import build_datamodule, build_model

ARCHITECTURES = {
    "mlp": ["model=mlp"],
    "mlp_log_softmax": ["model=mlp", "model.output=log_softmax", "model.activations=[relu,sigmoid]"],
    "mlp_softmax_init_std": ["model=mlp", "model.output=softmax", "model.init_std=0.01"],
    "mlp_dropout_batch_norm": ["model=mlp", "model.dropout=0.2", "model.batch_norm=true"],
    "cnn": ["model=cnn"],
    "cnn_no_hidden_layer_smoothed": [
        "model=cnn",
        "model.channels=[8,16]",
        "model.hidden_size=null",
        "model.dropout=0",
        "model.label_smoothing=0.1",
    ],
    "scratch_gd": ["model=scratch", "optimizer=gd", "optimizer.lr=0.05"],
}


@pytest.fixture(params=ARCHITECTURES.values(), ids=ARCHITECTURES.keys())
def built(request, compose_cfg):
    """(model, a fixed normalised batch of 64 synthetic digits) from the real conf/."""
    cfg = compose_cfg(*request.param, "scheduler=none", "data.batch_size=64")
    datamodule = build_datamodule(cfg)
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    return build_model(cfg, datamodule), batch


def loss_on(model, batch) -> float:
    model.eval()
    with torch.no_grad():
        return model.loss_fn(model(batch[0]), batch[1]).item()


def test_forward_gives_one_output_per_class(built):
    model, (images, _) = built
    model.eval()
    out = model(images)
    assert out.shape == (64, 10)
    probabilities = {"log_softmax": out.exp(), "softmax": out}.get(model.hparams.output)
    if probabilities is not None:
        assert torch.allclose(probabilities.sum(dim=1), torch.ones(64), atol=1e-5)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(built, tmp_path):
    model, batch = built
    before = loss_on(model, batch)
    trainer = Trainer(
        accelerator="cpu", max_epochs=5, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(*batch), batch_size=64))
    assert trainer.global_step == 5
    assert loss_on(model, batch) < 0.95 * before

    # The trained model round-trips through a checkpoint that holds no pickled objects.
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    assert "state_dict" in torch.load(path, weights_only=True)
    restored = type(model).load_from_checkpoint(path)
    restored.eval()
    assert torch.equal(restored(batch[0]), model(batch[0]))


def test_label_smoothing_shapes_the_training_loss_only(compose_cfg):
    cfg = compose_cfg("model=mlp", "model.label_smoothing=0.2", "scheduler=none")
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    images, labels = datamodule.train_set[torch.arange(64)]
    logits = model(images)
    smoothed = F.cross_entropy(logits, labels, label_smoothing=0.2)
    assert torch.equal(model.train_loss_fn(logits, labels), smoothed)
    assert torch.equal(model.loss_fn(logits, labels), F.cross_entropy(logits, labels))
    assert not torch.isclose(smoothed, F.cross_entropy(logits, labels))


@pytest.mark.parametrize("override", ["model.output=log_softmax", "model.output=softmax"])
def test_label_smoothing_needs_logits(compose_cfg, override):
    cfg = compose_cfg("model=mlp", "model.label_smoothing=0.1", override)
    with pytest.raises(InstantiationException) as error:  # Hydra's wrapper; the entry points print the cause
        build_model(cfg, build_datamodule(cfg))
    assert isinstance(error.value.__cause__, MnistlabError)
    assert re.search(r"model.label_smoothing=0.1 smooths .* model.output=logits", str(error.value.__cause__))
