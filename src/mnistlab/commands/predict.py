"""Predict a user's inputs with a trained model: a CSV of predictions in the predict run's own dir."""

import csv
import warnings
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch import Tensor
from torch.utils.data import DataLoader

from mnistlab.core.cli import warn
from mnistlab.core.errors import MnistlabError
from mnistlab.core.files import atomic_file
from mnistlab.core.results import PREDICTIONS_FILE
from mnistlab.core.run_dir import check_run_dir_is_new, holding
from mnistlab.data.batches import SequentialIndexBatches
from mnistlab.data.user_images import check_invert, normalise
from mnistlab.data.user_inputs import UserInputs, read_user_inputs
from mnistlab.run.trained import CheckpointModel, OnnxModel, load_trained_model


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    output_dir = Path(cfg.paths.output_dir)
    with holding(output_dir):
        check_run_dir_is_new(output_dir, None, resumable=False)
        return predict_in(output_dir, cfg)


def predict_in(output_dir: Path, cfg: DictConfig) -> list[dict[str, Any]]:
    check_invert(cfg.invert)
    trained = load_trained_model(Path(cfg.ckpt_path))
    found = read_user_inputs(Path(cfg.inputs), tuple(trained.card.input_shape), cfg.invert)
    for number, problem in found.problems.items():
        warn(f"warning: {found.names[number]}: {problem}; skipped")
    probabilities = run_model(trained, found.inputs, cfg) if found.inputs is not None else None
    top_k = min(cfg.top_k, len(trained.card.class_names))
    rows = prediction_rows(found, probabilities, trained.card.class_names, top_k)
    output = output_dir / PREDICTIONS_FILE
    write_rows(output, rows, top_k)
    print_rows(rows, cfg.show_rows, output, len(found.problems))
    if probabilities is None:
        raise MnistlabError(f"none of the {len(rows)} inputs could be used (see {output}); give images")
    return rows


def run_model(trained: CheckpointModel | OnnxModel, inputs: Tensor, cfg: DictConfig) -> Tensor:
    if isinstance(trained, OnnxModel):
        return torch.cat([trained.probabilities(batch) for batch in inputs.split(cfg.batch_size)])
    # Lightning's path: predict_step in batches, on the GPU when there is one.
    card = trained.card
    batches = SequentialIndexBatches(len(inputs), cfg.batch_size)
    loader = DataLoader(normalise(inputs, card.mean, card.std), sampler=batches, batch_size=None)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    with warnings.catch_warnings():  # the inputs are in memory: worker processes would only add overhead
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        return torch.cat(trainer.predict(trained.module, dataloaders=loader)).cpu()


def prediction_rows(
    found: UserInputs, probabilities: Tensor | None, class_names: list[str], top_k: int
) -> list[dict[str, Any]]:
    rows = [{"input": name, "class": "", "probability": ""} for name in found.names]
    for row, problem in found.problems.items():
        rows[row]["problem"] = problem
    if probabilities is not None:
        top_probs, top_classes = probabilities.topk(top_k, dim=1)
        for row, probs, classes in zip(found.usable, top_probs.tolist(), top_classes.tolist(), strict=True):
            rows[row]["class"], rows[row]["probability"] = class_names[classes[0]], round(probs[0], 6)
            for rank, (p, c) in enumerate(zip(probs, classes, strict=True), start=1):
                rows[row][f"top{rank}"], rows[row][f"top{rank}_probability"] = class_names[c], round(p, 6)
    return rows


def columns(top_k: int) -> list[str]:
    ranked = [f"top{rank}{suffix}" for rank in range(1, top_k + 1) for suffix in ("", "_probability")]
    return ["input", "class", "probability", *ranked, "problem"]


def write_rows(path: Path, rows: list[dict[str, Any]], top_k: int) -> None:
    with atomic_file(path) as file:
        writer = csv.DictWriter(file, fieldnames=columns(top_k), restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def print_rows(rows: list[dict[str, Any]], show: int, output: Path, problems: int) -> None:
    table = Table(title=f"Predictions (first {min(show, len(rows))} of {len(rows)})")
    for name in ("input", "class", "probability", "next best"):
        table.add_column(name, justify="right" if name == "probability" else "left")
    for row in rows[:show]:
        if "problem" in row:
            table.add_row(Path(row["input"]).name, "-", "-", f"[red]{row['problem']}[/red]")
            continue
        ranks = [rank for rank in range(2, len(row)) if f"top{rank}" in row]
        ranked = [f"{row[f'top{r}']} {row[f'top{r}_probability']:.1%}" for r in ranks]
        table.add_row(Path(row["input"]).name, row["class"], f"{row['probability']:.2%}", ", ".join(ranked))
    console = Console()
    console.print(table)
    console.print(f"{len(rows) - problems} predicted, {problems} skipped: {output}")
