"""Multirun sweeps: a failing job becomes a row of the summary instead of the end of the sweep, and every
sweep ends in ``<sweep dir>/summary.csv`` and ``summary.md``, best job first."""

import csv
import json
import logging
import math
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mnistlab.distributed import ProcessDied, is_rank_zero, one_job_of_a_sweep
from mnistlab.errors import MnistlabError
from mnistlab.results import write_json

log = logging.getLogger(__name__)

JOB_FILE = "job.json"  # written by SweepSummary.on_job_end: the job's number, overrides and Hydra status
ERROR_FILE = "error.json"  # written by run_sweep_job when the job raised
COLUMNS = [
    "job",
    "overrides",
    "status",
    "best_val_loss",
    "best_epoch",
    "test_acc",
    "seconds",
    "run_dir",
    "error",
]


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def objective(metrics: dict[str, Any]) -> float | None:
    """What a sweeper minimises: the best val/loss of a finished run; None (a failed trial) otherwise.

    None, not nan: the Optuna sweeper (1.3.0) hands a nan on to the study, which rejects it, and the sweeper
    then crashes while recording the trial as failed. None it records as failed directly.
    """
    loss = metrics.get("best_val_loss")
    if metrics.get("status", "finished") != "finished" or loss is None or not math.isfinite(loss):
        return None
    return float(loss)


def run_sweep_job(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> float | None:
    """One job of a multirun. An exception is logged and recorded in the job's run dir, and the job scores
    None: Hydra's basic sweeper would re-raise it and end the sweep; Optuna's marks the trial failed."""
    started = time.perf_counter()
    try:
        with one_job_of_a_sweep():
            return objective(task(cfg))
    except Exception as error:
        if not is_rank_zero() and not isinstance(cause(error), ProcessDied):  # rank zero records it
            return None
        if isinstance(cause(error), MnistlabError):
            log.error(f"error: {cause(error)}")
        else:
            log.exception("this job failed; the sweep goes on")
        record = {
            "error": describe(error),
            "seconds": round(time.perf_counter() - started, 2),
            "traceback": traceback.format_exc(),
        }
        write_json(Path(cfg.paths.output_dir) / ERROR_FILE, record)
        return None


def cause(error: BaseException) -> BaseException:
    """The error itself, not Hydra's wrapper around an error raised while instantiating a config."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return error


def describe(error: BaseException) -> str:
    """One line: the message alone for a user's mistake, with the exception's type for anything else."""
    error = cause(error)
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(error, MnistlabError):
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class HydraConfigAtSweepStart(Callback):
    """Sets Hydra's config for the sweep itself, as Hydra does for a single run and for each job.

    The default ``hydra.sweep.dir`` lies under ``paths.log_dir``, which is ``${hydra:runtime.cwd}/logs``; the
    sweeper reads it before any job starts, when ``${hydra:...}`` could not resolve without this.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)


class SweepSummary(Callback):
    """A Hydra callback (conf/hydra/default.yaml): each job leaves ``job.json`` in its run dir, and the end of
    the multirun gathers the sweep dir's jobs into summary.csv and summary.md and prints the best."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not is_rank_zero():
            return
        record = {"job": config.hydra.job.num, "overrides": list(job_return.overrides or [])}
        if job_return.status == JobStatus.FAILED:  # raised past run_sweep_job: another task function
            record["error"] = describe(job_return._return_value)
        write_json(Path(config.hydra.runtime.output_dir) / JOB_FILE, record)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = sorted((job_row(path.parent) for path in sweep_dir.rglob(JOB_FILE)), key=row_order)
        if not rows:
            return
        write_csv(sweep_dir / "summary.csv", rows)
        (sweep_dir / "summary.md").write_text(markdown(rows, sweep_dir))
        if rows[0]["status"] == "finished":  # sorted: a finished job comes first if there is one
            print_best(rows, sweep_dir)
        else:
            # Hydra turns a callback's exception into a warning: only an exit makes the exit status say it.
            sys.exit(
                f"error: none of the {len(rows)} jobs of the sweep finished (first error: "
                f"{rows[0]['error']}); see {sweep_dir / 'summary.md'} and each job's train.log"
            )


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def job_row(run_dir: Path) -> dict[str, Any]:
    job, metrics, error = (read_json(run_dir / name) for name in (JOB_FILE, "metrics.json", ERROR_FILE))
    failure = error.get("error") or job.get("error")
    status = metrics.get("status", "finished") if metrics else "no result"
    if failure and status in ("finished", "no result"):
        status = "failed"  # a diverged or interrupted run says so itself in its metrics.json
    return {
        "job": job.get("job"),
        "overrides": " ".join(job.get("overrides", [])),
        "status": status,
        "best_val_loss": metrics.get("best_val_loss"),
        "best_epoch": metrics.get("best_epoch"),
        "test_acc": metrics.get("test_acc"),
        "seconds": metrics.get("seconds", error.get("seconds")),
        "run_dir": str(run_dir.resolve()),
        "error": failure or "",
    }


def row_order(row: dict[str, Any]) -> tuple[float, bool, int]:
    """Lowest val/loss first; then finished jobs without one; then failed, diverged, interrupted ones."""
    loss, finished = row["best_val_loss"], row["status"] == "finished"
    usable = finished and loss is not None and math.isfinite(loss)
    return (loss if usable else math.inf, not finished, row["job"] if row["job"] is not None else -1)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def varying_overrides(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The overrides every job shares, and per job the ones that tell it apart."""
    per_job = [row["overrides"].split() for row in rows]
    common = [o for o in per_job[0] if all(o in overrides for overrides in per_job)] if len(rows) > 1 else []
    return common, [" ".join(o for o in overrides if o not in common) for overrides in per_job]


def cells(row: dict[str, Any]) -> dict[str, str]:
    """A row as text: losses to 4 decimals, accuracy as a percentage, blanks for what a job did not reach."""

    def number(value: Any, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    return {
        "status": row["status"],
        "best val/loss": number(row["best_val_loss"], ".4f"),
        "best epoch": number(row["best_epoch"], "d"),
        "test acc": number(row["test_acc"], ".2%"),
        "seconds": number(row["seconds"], ".1f"),
    }


def markdown(rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    common, varying = varying_overrides(rows)
    lines = [
        f"# Sweep summary: {sweep_dir}",
        "",
        f"{count_by_status(rows)}; sorted by best val/loss (lowest first).",
    ]
    if common:
        lines += ["", f"Overrides common to all jobs: `{' '.join(common)}`"]
    header = ["job", "overrides", *cells(rows[0]), "run dir", "error"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, overrides in zip(rows, varying, strict=True):
        run_dir = Path(row["run_dir"])
        if run_dir.is_relative_to(sweep_dir.resolve()):
            run_dir = run_dir.relative_to(sweep_dir.resolve())
        shown_overrides = f"`{overrides}`" if overrides else ""
        values = [str(row["job"]), shown_overrides, *cells(row).values(), str(run_dir)]
        values.append(row["error"].replace("|", "\\|"))
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def print_best(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    best = rows[0]
    _, varying = varying_overrides(rows)
    # One line per field: a row of eight columns would fold into a tall strip in an 80-column terminal.
    table = Table(title=f"Best of {len(rows)} jobs (lowest best val/loss)", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    fields = {"job": str(best["job"]), "overrides": varying[0], **cells(best), "run dir": best["run_dir"]}
    for name, value in fields.items():
        table.add_row(name, value)
    console = Console()
    console.print(table)
    console.print(f"{count_by_status(rows)}; summary: {sweep_dir / 'summary.md'} and summary.csv")


def count_by_status(rows: list[dict[str, Any]]) -> str:
    """E.g. '4 jobs: 3 finished, 1 failed'."""
    counts = Counter(row["status"] for row in rows)
    return f"{len(rows)} jobs: " + ", ".join(f"{n} {status}" for status, n in counts.most_common())
