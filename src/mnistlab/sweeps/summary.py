"""Every sweep ends in summary.csv and summary.md in its sweep dir, best job first; failed jobs are rows."""

import csv
import json
import math
import re
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mnistlab.core.errors import MnistlabError, describe
from mnistlab.core.files import write_json
from mnistlab.core.ranks import is_rank_zero
from mnistlab.core.results import RunResult, Status
from mnistlab.core.run_dir import claim_or_refuse
from mnistlab.core.trials import TRIAL_KEY
from mnistlab.sweeps.figure import write_figure
from mnistlab.sweeps.groups import (
    group_jobs,
    groups_markdown,
    is_repeated,
    print_groups,
    split_common,
    write_groups_csv,
)
from mnistlab.sweeps.jobs import ERROR_FILE

JOB_FILE = "job.json"  # written by SweepSummary.on_job_end: the job's number, overrides and Hydra status
COLUMNS = [
    "job",
    "overrides",
    "status",
    "best_val_loss",
    "best_epoch",
    "epochs_run",
    "last_val_loss",
    "test_loss",
    "test_acc",
    "seconds",
    "run_dir",
    "error",
]


class HydraConfigAtSweepStart(Callback):
    """Sets Hydra's config for the sweep itself, as Hydra does for a single run and for each job.

    The default ``hydra.sweep.dir`` lies under ``paths.log_dir``, which is ``${hydra:runtime.cwd}/logs``; the
    sweeper reads it before any job starts, when ``${hydra:...}`` could not resolve without this.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)


class OneSweepPerDir(Callback):
    """Two sweeps started into one sweep dir would number their jobs alike and write each other's runs: the
    second stops before its first job, in one line naming the first (the lock of core/run_dir.py)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            claim_or_refuse(Path(config.hydra.sweep.dir), key="hydra.sweep.dir")
        except MnistlabError as error:
            sys.exit(f"error: {error}")  # Hydra turns a callback's exception into a warning


class SweepSummary(Callback):
    """A Hydra callback (conf/hydra/default.yaml): each job leaves ``job.json`` in its run dir, and the end of
    the multirun gathers the sweep dir's jobs into summary.csv and summary.md, its groups (repeats over seeds
    and folds) into summary_groups.csv, summary_groups.md and summary.png, and prints the answer."""

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
        groups = group_jobs(rows)
        write_groups_csv(sweep_dir / "summary_groups.csv", groups)
        (sweep_dir / "summary_groups.md").write_text(groups_markdown(groups, sweep_dir))
        write_figure(groups, sweep_dir)
        if rows[0]["status"] != Status.FINISHED:  # sorted: a finished job comes first if there is one
            # Hydra turns a callback's exception into a warning: only an exit makes the exit status say it.
            sys.exit(
                f"error: none of the {len(rows)} jobs of the sweep finished (first error: "
                f"{rows[0]['error']}); see {sweep_dir / 'summary.md'} and each job's train.log"
            )
        if is_repeated(groups):
            print_groups(groups, sweep_dir)
        else:  # every setting ran once (an Optuna search, a grid without seeds): the best job is the answer
            print_best(rows, sweep_dir)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def job_row(run_dir: Path) -> dict[str, Any]:
    job, error = read_json(run_dir / JOB_FILE), read_json(run_dir / ERROR_FILE)
    result = RunResult.read(run_dir) or RunResult(status=Status.NO_RESULT, seconds=error.get("seconds"))
    failure = error.get("error") or job.get("error")
    status = result.status
    if failure and status in (Status.FINISHED, Status.NO_RESULT):
        status = Status.FAILED  # a diverged or interrupted run says so itself in its metrics.json
    return {
        "job": job.get("job"),
        "overrides": without_passwords(" ".join(job.get("overrides", []))),
        "status": status,
        "best_val_loss": result.best_val_loss,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,  # where a pruned trial stopped, with its last val/loss
        "last_val_loss": result.last_val_loss,
        "test_loss": result.test_loss,
        "test_acc": result.test_acc,
        "seconds": result.seconds,
        "run_dir": str(run_dir.resolve()),
        "error": failure or "",
    }


def without_passwords(text: str) -> str:
    """URLs' passwords as ***: an Optuna trial's overrides name its study's database (+optuna.storage)."""
    return re.sub(r"(://[^/:@\s]+:)[^@\s]+@", r"\1***@", text)


def row_order(row: dict[str, Any]) -> tuple[float, bool, int]:
    """Lowest val/loss first; then finished jobs without one; then failed, diverged, interrupted ones."""
    loss, finished = row["best_val_loss"], row["status"] == Status.FINISHED
    usable = finished and loss is not None and math.isfinite(loss)
    return (loss if usable else math.inf, not finished, row["job"] if row["job"] is not None else -1)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def varying_overrides(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The overrides every job shares, and per job the ones that tell it apart."""
    return split_common([row["overrides"].split() for row in rows])


def cells(row: dict[str, Any]) -> dict[str, str]:
    """A row as text: losses to 4 significant digits, accuracy as a percentage, blanks for what a job did
    not reach (or, as test accuracy for a regression, does not have)."""

    def number(value: Any, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    return {
        "status": row["status"],
        "best val/loss": number(row["best_val_loss"], ".4g"),
        "best epoch": number(row["best_epoch"], "d"),
        "epochs": number(row["epochs_run"], "d"),
        "last val/loss": number(row["last_val_loss"], ".4g"),
        "test loss": number(row["test_loss"], ".4g"),
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
    fields["train it again"] = retrain_command(best["overrides"].split())
    for name, value in fields.items():
        table.add_row(name, value)
    console = Console()
    console.print(table)
    console.print(f"{count_by_status(rows)}; summary: {sweep_dir / 'summary.md'} and summary.csv")


def retrain_command(overrides: list[str]) -> str:
    """The command that trains a sweep's job again from scratch, as one run: its overrides, without those
    that made it one trial of an Optuna study (``+optuna.*``)."""
    kept = [o for o in overrides if not o.lstrip("+").startswith(f"{TRIAL_KEY}.")]
    return shlex.join(["python", "train.py", *kept])


def count_by_status(rows: list[dict[str, Any]]) -> str:
    """E.g. '4 jobs: 3 finished, 1 failed'."""
    counts = Counter(row["status"] for row in rows)
    return f"{len(rows)} jobs: " + ", ".join(f"{n} {status}" for status, n in counts.most_common())
