"""A run's results: the keys of metrics.json, defined once, and the table printed at a run's end."""

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from rich.console import Console
from rich.table import Table

from mnistlab.io.atomic import write_json
from mnistlab.io.checkpoints import saved_epoch

METRICS_FILE = "metrics.json"


@dataclass
class RunResult:
    """What a training run or an evaluation ends with; a key that does not apply to a run is null."""

    status: str  # finished, diverged, interrupted or failed (a DDP process died)
    seed: int | None = None
    epochs_run: int | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None
    best_checkpoint: str | None = None
    checkpoint: str | None = None  # the checkpoint that eval.py tested
    test_loss: float | None = None
    test_acc: float | None = None
    test_acc_per_class: list[float] | None = None
    interrupted_by: str | None = None  # Ctrl-C or SIGTERM
    last_checkpoint: str | None = None  # where an interrupted run resumes from
    last_checkpoint_epoch: int | None = None
    error: str | None = None  # what ended a failed run
    fit_seconds: float | None = None  # training and validation alone: what a speedrun is timed by
    seconds: float | None = None  # the whole run, data loading and the test included

    def write(self, run_dir: Path) -> None:
        write_json(run_dir / METRICS_FILE, dataclasses.asdict(self))

    @classmethod
    def read(cls, run_dir: Path) -> "RunResult | None":
        path = run_dir / METRICS_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        return cls(**{field.name: saved.get(field.name) for field in dataclasses.fields(cls)})

    def add_test(self, logged: Mapping[str, Any], class_names: list[str]) -> None:
        """The test metrics as the model logged them (``trainer.callback_metrics``: ``test/loss``, and
        ``test/acc_per_class/<class>``, which the loggers do not get).

        A regression (no class names) logs its mean squared error as ``test/loss`` and no accuracy.
        """
        self.test_loss = float(logged["test/loss"])
        self.test_acc = float(logged["test/acc"]) if "test/acc" in logged else None
        per_class = [float(logged[f"test/acc_per_class/{name}"]) for name in class_names]
        self.test_acc_per_class = per_class or None

    def add_best(self, trainer: Trainer) -> None:
        """The best checkpoint by val/loss, if the run keeps one (``callbacks=none`` does not)."""
        callback = best_checkpoint_callback(trainer)
        if callback is None or not callback.best_model_path:
            return
        self.best_checkpoint = callback.best_model_path
        self.best_val_loss = float(callback.best_model_score)
        self.best_epoch = saved_epoch(Path(callback.best_model_path))


def best_checkpoint_callback(trainer: Trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that keeps the best val/loss; Lightning's own default monitors nothing."""
    monitoring = [callback for callback in trainer.checkpoint_callbacks if callback.monitor == "val/loss"]
    return monitoring[0] if monitoring else None


def print_test_results(result: RunResult, class_names: list[str]) -> None:
    tested = "best checkpoint" if result.best_checkpoint or result.checkpoint else "final weights"
    summary = Table(title=f"Test results ({tested})")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    loss = ".4f" if result.test_acc is not None else ".4g"  # a regression's MSE may lie far below 1e-4
    summary.add_row("test/loss", format(result.test_loss, loss))
    if result.test_acc is not None:
        summary.add_row("test/acc", f"{result.test_acc:.2%}")
    if result.best_val_loss is not None:
        summary.add_row("best val/loss", f"{format(result.best_val_loss, loss)} (epoch {result.best_epoch})")
    tables = [summary]
    if result.test_acc_per_class is not None:  # a classification
        per_class = Table(title="Test accuracy per class")
        per_class.add_column("class")
        per_class.add_column("accuracy", justify="right")
        for name, acc in zip(class_names, result.test_acc_per_class, strict=True):
            per_class.add_row(str(name), f"{acc:.2%}")
        tables.append(per_class)
    Console().print(*tables)
