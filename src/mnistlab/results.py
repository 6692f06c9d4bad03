"""A run's results: metrics.json (written atomically) and the table printed at its end."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        json.dump(data, tmp, indent=2)
        tmp.write("\n")
    os.replace(tmp.name, path)


def print_test_results(metrics: dict[str, Any], class_names: list[str]) -> None:
    summary = Table(title="Test results (best checkpoint)")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("test/loss", f"{metrics['test_loss']:.4f}")
    summary.add_row("test/acc", f"{metrics['test_acc']:.2%}")
    if "best_val_loss" in metrics:
        summary.add_row("best val/loss", f"{metrics['best_val_loss']:.4f} (epoch {metrics['best_epoch']})")
    per_class = Table(title="Test accuracy per class")
    per_class.add_column("class")
    per_class.add_column("accuracy", justify="right")
    for name, acc in zip(class_names, metrics["test_acc_per_class"], strict=True):
        per_class.add_row(str(name), f"{acc:.2%}")
    console = Console()
    console.print(summary, per_class)
