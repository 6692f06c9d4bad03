"""The batch loop calls only the callbacks' batch hooks that do something."""

from conftest import loaded_datamodule, training_trainer
from lightning import Callback
from lightning.pytorch.callbacks import ModelCheckpoint

from mnistlab.callbacks.dispatch import BATCH_HOOKS
from mnistlab.run.build import build_model


def test_a_run_calls_only_the_batch_hooks_its_callbacks_override(compose_cfg):
    cfg = compose_cfg("model=mlp", "+trainer.profiler=simple", "trainer.max_epochs=1")
    datamodule = loaded_datamodule(cfg)
    trainer = training_trainer(cfg)
    for callback in trainer.callbacks:
        for hook in BATCH_HOOKS:
            overridden = getattr(type(callback), hook) is not getattr(Callback, hook)
            # The checkpoints here are saved per epoch: their batch hook has nothing to do.
            asked = not (isinstance(callback, ModelCheckpoint) and hook == "on_train_batch_end")
            assert callable(getattr(callback, hook)) == (overridden and asked), (type(callback), hook)
    trainer.fit(build_model(cfg, datamodule), datamodule=datamodule)

    called = {name for name in trainer.profiler.recorded_durations if name.startswith("[Callback]")}
    # Overridden: still called at every step (the divergence check, the bar, the checkpoints' step counter).
    assert "[Callback]StopOnDivergence.on_train_batch_end" in called
    assert "[Callback]ThrottledProgressBar.on_train_batch_end" in called
    assert any(name.endswith("ConfusionMatrixFigure.on_validation_batch_end") for name in called)
    # Only epoch hooks: never called per batch.
    assert not [name for name in called if "SeedEachEpoch" in name and "batch" in name]
    assert not [name for name in called if name.endswith(("on_before_backward", "on_after_backward"))]
    assert "[Callback]SeedEachEpoch.on_train_epoch_start" in called


def test_a_checkpoint_every_n_steps_keeps_its_batch_hook(compose_cfg, tmp_path):
    cfg = compose_cfg("model=mlp", "+callbacks.model_checkpoint.every_n_train_steps=5")
    [saving, last] = [c for c in training_trainer(cfg).callbacks if isinstance(c, ModelCheckpoint)]
    assert callable(saving.on_train_batch_end) and last.on_train_batch_end is None
