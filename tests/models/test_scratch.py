"""The raw-tensor tutorial's net: raw tensors and gradient descent written by hand."""

import torch
from conftest import loaded_datamodule
from hydra.utils import instantiate

from mnistlab.models import GradientDescent
from mnistlab.run.build import build_datamodule, build_model


def test_gradient_descent_subtracts_lr_times_the_gradient():
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = GradientDescent([weight], lr=0.1)
    (weight**2).sum().backward()  # gradient 2w
    optimizer.step()
    assert torch.allclose(weight.detach(), torch.tensor([0.8, -1.6]))


def test_gradient_descent_runs_the_closure_it_is_given():
    """Lightning's automatic optimization (`optimizer=gd`, any other model) passes the loss as a closure."""
    weight = torch.nn.Parameter(torch.tensor([3.0]))
    optimizer = GradientDescent([weight], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (weight**2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 9.0
    assert weight.item() == 1.5


def test_scratch_parameters_are_plain_weight_matrices_and_bias_vectors(compose_cfg):
    cfg = compose_cfg("experiment=tutorial/scratch_rings")
    net = build_model(cfg, build_datamodule(cfg)).net
    assert [tuple(w.shape) for w in net.weights] == [(2, 100), (100, 100), (100, 3)]
    assert [tuple(b.shape) for b in net.biases] == [(100,), (100,), (3,)]
    assert [name for name, _ in net.named_parameters()][:2] == ["weights.0", "weights.1"]


def test_scratch_steps_its_scheduler_every_batch(compose_cfg):
    """The hand-written optimizer is stepped by Lightning, and so is the scheduler after it."""
    cfg = compose_cfg(
        "model=scratch", "scheduler=onecycle", "logger=none",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=0",
    )  # fmt: skip
    datamodule = loaded_datamodule(cfg)
    trainer = instantiate(cfg.trainer, logger=False)
    trainer.fit(build_model(cfg, datamodule), datamodule=datamodule)
    [config] = trainer.lr_scheduler_configs
    assert trainer.global_step > 0
    assert config.scheduler.last_epoch == trainer.global_step
