"""Resuming a run: only from where it stopped (its latest checkpoint), and only as the same run."""

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class

from mnistlab.core.errors import MnistlabError
from mnistlab.io.checkpoints import load_checkpoint
from mnistlab.io.formats import FORMAT, format_of
from mnistlab.models.module import RUN_LENGTH_ARGS

# What a resumed run must share with the run that wrote its checkpoint for the two to be one run.
# Where the data lives and the test batch size may change; so may the run's length, unless the scheduler
# was planned for it (onecycle, cosine): then the settings that make the run's step count must stay.
RESUME_MUST_MATCH = ("seed", "model", "optimizer", "scheduler", "data")
RESUME_MAY_DIFFER = {"data.data_dir", "data.download", "data.eval_batch_size"}
# Trainer settings that change what every step computes.
TRAINER_MUST_MATCH = (
    "precision",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "accumulate_grad_batches",
    "deterministic",
)
RUN_LENGTH = ("max_epochs", "max_steps", "limit_train_batches")


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    if ckpt_path == "last":
        lasts = sorted((output_dir / "checkpoints").glob("last*.ckpt"), key=lambda path: path.stat().st_mtime)
        if not lasts:
            raise MnistlabError(
                f"ckpt_path=last: {output_dir / 'checkpoints'} holds no last.ckpt; "
                "add hydra.run.dir=<the run dir to resume>"
            )
        ckpt_path = str(lasts[-1])  # the newest, should Lightning have versioned it (last-v1.ckpt)
    if ckpt_path and not Path(ckpt_path).is_file():
        raise MnistlabError(f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a last.ckpt")
    return ckpt_path


def check_resumable(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint to resume from, after checking it holds a whole training state of this same run."""
    checkpoint = load_checkpoint(path)
    missing = [
        key
        for key in ("loops", "optimizer_states", "epoch", "global_step", "run_config")
        if key not in checkpoint
    ]
    if missing:
        raise MnistlabError(
            f"{path}: cannot resume from it: it lacks {', '.join(missing)}, so it was not written by "
            "mnistlab's train.py; resume from a last.ckpt of a run (test other checkpoints with eval.py)"
        )
    if (version := format_of(checkpoint)) != FORMAT:
        raise MnistlabError(
            f"{path}: cannot resume from it: it was written by an earlier mnistlab (checkpoint format "
            f"{version}), and a resume continues a run of this version (format {FORMAT}); start the run "
            "again, or test the checkpoint with eval.py"
        )
    check_is_latest(path, checkpoint["global_step"])
    saved = checkpoint["run_config"]
    for key in RESUME_MUST_MATCH:
        for name, then, now in differences(saved.get(key), config.get(key), key):
            raise MnistlabError(
                f"ckpt_path={path}: the run was trained with {name}={then!r} but this resume has "
                f"{name}={now!r}; a resume continues the same run, so repeat the run's own overrides "
                f"(see {path.parent.parent / '.hydra' / 'overrides.yaml'})"
            )
    trainer_then, trainer_now = saved.get("trainer", {}), config.get("trainer", {})
    for key in TRAINER_MUST_MATCH:
        if trainer_then.get(key) != trainer_now.get(key):
            raise MnistlabError(
                f"ckpt_path={path}: the run was trained with trainer.{key}={trainer_then.get(key)!r} but "
                f"this resume has {trainer_now.get(key)!r}; a resume continues the same run, so keep "
                f"trainer.{key}={trainer_then.get(key)!r}"
            )
    if plans_for_run_length(saved.get("scheduler")):
        for key in RUN_LENGTH:
            then, now = trainer_then.get(key), trainer_now.get(key)
            if then != now:
                raise MnistlabError(
                    f"ckpt_path={path}: the run's learning-rate schedule was planned for "
                    f"trainer.{key}={then!r}, and a resume cannot stretch it to {now!r}: keep "
                    f"trainer.{key}={then!r} (a run meant to grow trains with scheduler=none)"
                )
    return checkpoint


def check_is_latest(path: Path, step: int) -> None:
    """Resuming from an earlier checkpoint (best.ckpt) would rewind the run and overwrite its last.ckpt."""
    for other in sorted(path.parent.glob("*.ckpt")):
        try:
            other_step = torch.load(other, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        except Exception:  # not a checkpoint of this run: it cannot be the run's latest either
            continue
        if other_step > step:
            raise MnistlabError(
                f"ckpt_path={path}: the run went on past this checkpoint (step {step}) to {other.name} "
                f"(step {other_step}), and resuming from here would rewind it and overwrite that; resume "
                f"with ckpt_path={other}, or test this checkpoint with eval.py ckpt_path={path}"
            )


def plans_for_run_length(scheduler: dict[str, Any] | None) -> bool:
    """Whether the scheduler was given the run's step count (one-cycle, cosine), as base.py gives it."""
    if not scheduler or "_target_" not in scheduler:
        return False
    return any(
        arg in inspect.signature(get_class(scheduler["_target_"])).parameters for arg in RUN_LENGTH_ARGS
    )


def differences(then: Any, now: Any, name: str) -> Iterator[tuple[str, Any, Any]]:
    if name in RESUME_MAY_DIFFER:
        return
    if isinstance(then, dict) and isinstance(now, dict):
        for key in sorted(then.keys() | now.keys()):
            yield from differences(then.get(key), now.get(key), f"{name}.{key}")
    elif then != now:
        yield name, then, now
