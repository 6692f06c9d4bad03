"""Lightning calls every hook of every callback at every batch, whether the callback overrides it or not, each
call inside a profiler context keyed by an f-string of the callback's ``state_key`` (docs/benchmarks.md).
It skips a hook that is not callable: a callback's batch hooks that only ``Callback``'s empty defaults fill
are set to None on the instance, so that the batch loop calls only the hooks that do something."""

from lightning import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

BATCH_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def overrides(callback: Callback, hook: str) -> bool:
    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


def idle(callback: Callback, hook: str) -> bool:
    """A batch hook that is written but has nothing to do in this run: ModelCheckpoint saves at a batch's
    end only every ``every_n_train_steps`` steps or every ``train_time_interval``, and neither was asked."""
    return (
        isinstance(callback, ModelCheckpoint)
        and hook == "on_train_batch_end"
        and callback._every_n_train_steps < 1
        and callback._train_time_interval is None
    )


def skip_empty_batch_hooks(trainer: Trainer) -> None:
    for callback in trainer.callbacks:
        for hook in BATCH_HOOKS:
            if not overrides(callback, hook) or idle(callback, hook):
                setattr(callback, hook, None)
