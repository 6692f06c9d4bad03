"""A run's results: the keys of metrics.json and a run's status, defined once, and the table printed at a
run's end."""

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mnistlab.core.files import write_json
from mnistlab.core.trackers import wandb_run_in

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"  # predict.py's results


class Status(str, Enum):
    """How a run ended; metrics.json holds its value."""

    FINISHED = "finished"
    DIVERGED = "diverged"  # the training loss became NaN or infinite
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    PRUNED = "pruned"  # an Optuna trial its study's pruner stopped (hydra/sweeper/pruner)
    FAILED = "failed"  # an error ended it: a dead DDP process, a full disk, ...
    NO_RESULT = "no result"  # a sweep job that left no metrics.json

    def __str__(self) -> str:
        return self.value


@dataclass
class RunResult:
    """What a training run or an evaluation ends with; a key that does not apply to a run is null."""

    status: Status
    seed: int | None = None
    epochs_run: int | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None
    best_checkpoint: str | None = None
    last_val_loss: float | None = None  # of the last validation: what a pruner judged a pruned trial by
    checkpoint: str | None = None  # the checkpoint that eval.py tested
    test_loss: float | None = None
    test_acc: float | None = None  # a classifier's; its task says which test keys it fills
    test_acc_per_class: list[float] | None = None
    interrupted_by: str | None = None  # Ctrl-C or SIGTERM
    last_checkpoint: str | None = None  # where an interrupted run resumes from
    last_checkpoint_epoch: int | None = None
    error: str | None = None  # what ended a failed run
    compile_seconds: float | None = None  # model.compile's compiling, before the fit (and apart from it)
    fit_seconds: float | None = None  # training and validation alone: what a speedrun is timed by
    seconds: float | None = None  # the whole run, data loading and the test included
    wandb_run_id: str | None = None  # the run's W&B run (logger=wandb), which a resume continues

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    def write(self, run_dir: Path) -> None:
        """metrics.json, written whole or not at all: the one place it is written. It names the W&B run
        whose files are in the run dir, whichever process and path of the run writes it."""
        self.wandb_run_id = self.wandb_run_id or wandb_run_in(run_dir)
        write_json(run_dir / METRICS_FILE, dataclasses.asdict(self))

    @classmethod
    def read(cls, run_dir: Path) -> "RunResult | None":
        path = run_dir / METRICS_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        return cls(**{field.name: saved.get(field.name) for field in dataclasses.fields(cls)})

    def add(self, values: dict[str, Any]) -> None:
        """Results by their metrics.json keys, e.g. a task's test results; an unknown key is a bug."""
        for key, value in values.items():
            if key not in FIELDS:
                raise KeyError(f"{key} is not a key of metrics.json")
            setattr(self, key, value)


FIELDS = frozenset(field.name for field in dataclasses.fields(RunResult))


def print_test_results(result: RunResult, class_names: list[str]) -> None:
    tested = "best checkpoint" if result.best_checkpoint or result.checkpoint else "final weights"
    summary = Table(title=f"Test results ({tested})")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("test/loss", f"{result.test_loss:.4g}")  # a regression's MSE may lie far below 1e-4
    if result.test_acc is not None:
        summary.add_row("test/acc", f"{result.test_acc:.2%}")
    if result.best_val_loss is not None:
        summary.add_row("best val/loss", f"{result.best_val_loss:.4g} (epoch {result.best_epoch})")
    tables = [summary]
    if result.test_acc_per_class is not None:
        per_class = Table(title="Test accuracy per class")
        per_class.add_column("class")
        per_class.add_column("accuracy", justify="right")
        for name, acc in zip(class_names, result.test_acc_per_class, strict=True):
            per_class.add_row(str(name), f"{acc:.2%}")
        tables.append(per_class)
    Console().print(*tables)
