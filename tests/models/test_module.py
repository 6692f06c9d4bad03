"""The NetModule's compiled net (model.compile): compiled before the first step and timed apart from the fit,
checkpoints that load into a plain net and predict the same, and a resume as exact as without compiling.
The steps wait for nothing on the device: no step reads a value back or makes a tensor of host data."""

import json
import traceback
from pathlib import Path

import pytest
import torch
from conftest import loaded_datamodule, training_trainer
from lightning import Callback
from torch.utils._python_dispatch import TorchDispatchMode

from mnistlab.callbacks import StopOnDivergence
from mnistlab.commands.train import train
from mnistlab.run.build import build_model
from mnistlab.run.trained import load_trained

COMPILED = ["model=mlp", "model.hidden_sizes=[32]", "scheduler=none", "trainer.max_epochs=3"]


@pytest.mark.slow  # compiling takes tens of seconds on two CPU cores
@pytest.mark.parametrize("mode", ["true", "reduce-overhead"])
def test_a_compiled_run_is_compiled_apart_from_its_fit_and_predicts_as_the_plain_net(compose_cfg, mode):
    cfg = compose_cfg(*COMPILED, f"model.compile={mode}")
    result = train(cfg)
    assert result.status == "finished" and result.compile_seconds > 0
    assert result.fit_seconds > 0
    best = Path(result.best_checkpoint)
    trained = load_trained(best)  # a plain net, as eval.py, predict.py and export.py load it
    assert not [name for name in trained.model.state_dict() if "_orig_mod" in name]
    trained.datamodule.setup("test")
    images = trained.datamodule.test_set.inputs
    compiled = load_trained(best).model
    compiled.compile_net()
    with torch.no_grad():
        assert torch.allclose(compiled.predict_step(images), trained.model.predict_step(images), atol=1e-5)


@pytest.mark.slow  # three compiled runs
def test_a_compiled_run_resumes_to_the_numbers_of_one_never_stopped(compose_cfg, tmp_path):
    whole = train(compose_cfg(*COMPILED, "model.compile=true", output_dir=tmp_path / "whole"))
    stopped = compose_cfg(
        *COMPILED, "model.compile=true", "trainer.max_epochs=1", output_dir=tmp_path / "part"
    )
    train(stopped)
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed = train(
        compose_cfg(*COMPILED, "model.compile=true", f"ckpt_path={last}", output_dir=tmp_path / "part")
    )
    for key in ("best_val_loss", "best_epoch", "test_loss", "test_acc", "test_acc_per_class"):
        assert getattr(resumed, key) == getattr(whole, key), key
    assert json.loads((tmp_path / "part" / "metrics.json").read_text())["epochs_run"] == 3


# What waits for the device: reading a value back (.item(), bool(tensor), .tolist(), .cpu() of a result) is
# _local_scalar_dense or a copy to the CPU; a tensor of host data is lift_fresh (a copy to the device); an op
# whose output's size depends on its values (nonzero, boolean indexing, unique) waits to know it. On a
# CPU all tensors are on the host, so every one counts, but torch.optim's own: it keeps its step counts on the
# host on any device (a fused update, on CUDA, keeps them on the device).
WAITS = (
    "_local_scalar_dense",
    "lift_fresh",
    "_to_copy",
    "nonzero",
    "masked_select",
    "_unique2",
    "unique_dim",
)


class Watch(TorchDispatchMode):
    """Records every op that would wait for the device; reading a value that was copied to the host without
    waiting (``copy_(..., non_blocking=True)`` into a host tensor) is no wait."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.host_copies: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        kwargs = kwargs or {}
        if name == "copy_" and (kwargs.get("non_blocking") or args[2:3] == (True,)):
            self.host_copies.add(args[0].data_ptr())
        elif name == "_local_scalar_dense" and args[0].data_ptr() in self.host_copies:
            pass
        elif name in WAITS:
            stack = traceback.extract_stack()
            if not any("/torch/optim/" in frame.filename for frame in stack):
                self.seen.append(
                    f"{name} in " + " <- ".join(f"{f.name} ({f.filename}:{f.lineno})" for f in stack[-6:-1])
                )
        return func(*args, **kwargs)


class WatchEachStep(Callback):
    """Everything from a training batch's start to its end (the step, backward, the optimizer, every
    callback's batch hooks: this one comes last), on the steps that log nothing."""

    def __init__(self) -> None:
        self.watch = Watch()
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.watch.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.watch.__exit__(None, None, None)
        self.steps += 1


@pytest.mark.parametrize("model", [["model=mlp"], ["model=cnn", "model.channels=[4,8]"]])
def test_a_training_step_never_waits_for_the_device(compose_cfg, monkeypatch, model):
    # No logging step in the epoch (Lightning reads the logged values back then), no bar; the divergence
    # check asks the device every 5 steps instead of every 100.
    monkeypatch.setattr(StopOnDivergence, "check_every", 5)
    cfg = compose_cfg(*model, "trainer.max_epochs=1", "trainer.log_every_n_steps=1000")
    datamodule = loaded_datamodule(cfg)
    trainer = training_trainer(cfg)
    watcher = WatchEachStep()
    trainer.callbacks.append(watcher)  # last: its batch end comes after every other callback's
    trainer.fit(build_model(cfg, datamodule), datamodule=datamodule)
    assert watcher.steps == 17  # 540 training images in batches of 32
    assert watcher.watch.seen == []


def test_adding_kept_steps_to_the_metrics_and_an_evaluation_step_never_wait(compose_cfg):
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[8]")
    datamodule = loaded_datamodule(cfg)
    model = build_model(cfg, datamodule)
    x, y = datamodule.train_set[torch.arange(64)]
    model._kept_steps = [
        (torch.tensor(0.5), model.net(x[:32]).detach(), y[:32]),
        (torch.tensor(0.7), model.net(x[32:]).detach(), y[32:]),
    ]
    with Watch() as watch:
        model._count_kept_steps()
        model.task.update("val", model.net(x), y, model.task.loss(model.net(x), y), torch.full((), 64.0))
    assert watch.seen == []


class NoWaitEachStep(Callback):
    """torch's own check on a GPU: any wait for the device between a training batch's start and its end
    (every callback's batch hooks included: this one comes last) raises."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.filterwarnings("ignore:Synchronization debug mode is a prototype")
@pytest.mark.parametrize("model", [["model=mlp"], ["model=cnn", "model.channels=[8,16]"]])
def test_on_a_gpu_a_whole_epoch_of_training_steps_never_waits_for_the_device(compose_cfg, model):
    cfg = compose_cfg("trainer=gpu", *model, "trainer.max_epochs=1", "trainer.log_every_n_steps=1000")
    datamodule = loaded_datamodule(cfg)
    trainer = training_trainer(cfg)
    trainer.callbacks.append(NoWaitEachStep())
    try:
        trainer.fit(build_model(cfg, datamodule), datamodule=datamodule)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.global_step == 17
