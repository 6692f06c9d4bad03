"""Every architecture, built from conf/model: its forward pass, a few steps that learn, its checkpoints."""

import pytest
import torch
import torch.nn.functional as F
from conftest import loaded_datamodule
from lightning import Trainer
from torch.utils.data import DataLoader, TensorDataset

from mnistlab.core.errors import MnistlabError
from mnistlab.run.build import build_datamodule, build_model

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
    "cnn_two_convs_per_block": ["model=cnn", "model.channels=[8,16]", "model.convs_per_block=2"],
    "cnn_channels_last": ["model=cnn", "model.channels=[8,16]", "model.channels_last=true"],
    "scratch_gd": ["model=scratch", "optimizer=gd", "optimizer.lr=0.05"],
}


@pytest.fixture(params=ARCHITECTURES.values(), ids=ARCHITECTURES.keys())
def built(request, compose_cfg):
    """(config, model, a fixed normalised batch of 64 synthetic digits) from the real conf/."""
    cfg = compose_cfg(*request.param, "scheduler=none", "data.batch_size=64")
    datamodule = loaded_datamodule(cfg)
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    return cfg, build_model(cfg, datamodule), batch


def loss_on(model, batch) -> float:
    model.eval()
    with torch.no_grad():
        return model.task.loss(model.net(batch[0]), batch[1]).item()


def test_forward_gives_one_output_per_class(built):
    cfg, model, (images, _) = built
    model.eval()
    out = model(images)
    assert out.shape == (64, 10)
    probabilities = {"log_softmax": out.exp(), "softmax": out}.get(cfg.model.output)
    if probabilities is not None:
        assert torch.allclose(probabilities.sum(dim=1), torch.ones(64), atol=1e-5)
    # Whatever the output, a prediction is the class probabilities.
    assert torch.allclose(model.predict_step(images).sum(dim=1), torch.ones(64), atol=1e-5)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(built, tmp_path):
    cfg, model, batch = built
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
    restored = build_model(cfg, loaded_datamodule(cfg))
    restored.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    restored.eval()
    assert torch.equal(restored(batch[0]), model(batch[0]))


def test_label_smoothing_shapes_the_training_loss_only(compose_cfg):
    cfg = compose_cfg("model=mlp", "model.label_smoothing=0.2", "scheduler=none")
    datamodule = loaded_datamodule(cfg)
    model = build_model(cfg, datamodule)
    images, labels = datamodule.train_set[torch.arange(64)]
    logits = model(images)
    smoothed = F.cross_entropy(logits, labels, label_smoothing=0.2)
    assert torch.equal(model.task.training_loss(logits, labels), smoothed)
    assert torch.equal(model.task.loss(logits, labels), F.cross_entropy(logits, labels))
    assert not torch.isclose(smoothed, F.cross_entropy(logits, labels))


def test_each_block_has_as_many_convolutions_as_asked_and_one_block_keeps_its_weight_names(compose_cfg):
    cfg = compose_cfg("model=cnn", "model.channels=[8,16]")
    datamodule = loaded_datamodule(cfg)
    one = build_model(cfg, datamodule)
    cfg.model.convs_per_block = 3
    three = build_model(cfg, datamodule)
    for model, convs in ((one, 1), (three, 3)):
        for block in model.net[:2]:
            assert sum(isinstance(layer, torch.nn.Conv2d) for layer in block) == convs
    # One convolution a block is the layout of checkpoints made before the option existed.
    first_block = [name for name in one.state_dict() if name.startswith("net.0.")][:3]
    assert first_block == ["net.0.0.weight", "net.0.1.weight", "net.0.1.bias"]


def test_channels_last_changes_the_layout_only(compose_cfg):
    cfg = compose_cfg("model=cnn", "model.channels=[8,16]")
    datamodule = loaded_datamodule(cfg)
    plain = build_model(cfg, datamodule)
    cfg.model.channels_last = True
    nhwc = build_model(cfg, datamodule)
    assert nhwc.state_dict().keys() == plain.state_dict().keys()  # checkpoints of either load into the other
    nhwc.load_state_dict(plain.state_dict())
    conv = nhwc.net[1][0].weight  # the second block: with one input channel both layouts are the same
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    images = datamodule.train_set[torch.arange(16)][0]
    plain.eval(), nhwc.eval()
    assert torch.allclose(nhwc(images), plain(images), atol=1e-5)


@pytest.mark.parametrize("override", ["model.output=log_softmax", "model.output=softmax"])
def test_label_smoothing_needs_logits(compose_cfg, override):
    cfg = compose_cfg("model=mlp", "model.label_smoothing=0.1", override)
    with pytest.raises(MnistlabError, match=r"model.label_smoothing=0.1 smooths .* model.output=logits"):
        build_model(cfg, build_datamodule(cfg))
