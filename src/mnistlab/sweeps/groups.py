"""The answer of a sweep: jobs whose overrides differ only in their seed (or data fold) are one group, and a
group's numbers are a mean with its spread, not one lucky run."""

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mnistlab.core.repeats import REPEAT_KEYS, setting_of
from mnistlab.core.results import Status

# The numbers a group is judged by: the summary row's key, and how the group table shows it.
MEASURES = {
    "best_val_loss": "best val/loss",
    "test_loss": "test loss",
    "test_acc": "test acc",
    "seconds": "seconds",
}
GROUP_COLUMNS = [
    "group",
    "overrides",
    "n",
    "failed",
    *(f"{key}_{stat}" for key in MEASURES for stat in ("mean", "std", "min", "max")),
    "jobs",
]


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (None for a single value), min and max of a group's values."""

    n: int
    mean: float
    std: float | None
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> "Spread | None":
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(len(values), statistics.fmean(values), std, min(values), max(values))


@dataclass
class Group:
    overrides: list[str]  # what its jobs share: their overrides without the repeat keys
    jobs: list[dict[str, Any]] = field(default_factory=list)  # summary rows (sweeps/summary.py job_row)

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [job for job in self.jobs if job["status"] == Status.FINISHED]

    @property
    def failed(self) -> int:
        """Jobs that did not finish (failed, diverged, interrupted, pruned): counted apart, never averaged."""
        return len(self.jobs) - len(self.finished)

    def spread(self, measure: str) -> Spread | None:
        values = [job[measure] for job in self.finished if job[measure] is not None]
        return Spread.of([value for value in values if math.isfinite(value)])

    def order(self) -> tuple[float, str]:
        """Lowest mean best val/loss first; groups with no finished job last."""
        loss = self.spread("best_val_loss")
        return (loss.mean if loss else math.inf, " ".join(self.overrides))


def group_jobs(rows: list[dict[str, Any]]) -> list[Group]:
    """One group per setting, best first; each job once, in its group in job order."""
    groups: dict[tuple[str, ...], Group] = {}
    for row in sorted(rows, key=lambda row: row["job"] if row["job"] is not None else -1):
        shared = setting_of(row["overrides"].split())
        groups.setdefault(tuple(sorted(shared)), Group(shared)).jobs.append(row)
    return sorted(groups.values(), key=Group.order)


def split_common(per_item: list[list[str]]) -> tuple[list[str], list[str]]:
    """The overrides every item shares, and per item the ones that tell it apart."""
    common = (
        [o for o in per_item[0] if all(o in overrides for overrides in per_item)] if len(per_item) > 1 else []
    )
    return common, [" ".join(o for o in overrides if o not in common) for overrides in per_item]


def labels(groups: list[Group]) -> list[str]:
    """What tells each group apart; a lone group is every job of the sweep."""
    _, varying = split_common([group.overrides for group in groups])
    return [label or "all jobs" for label in varying]


def is_repeated(groups: list[Group]) -> bool:
    """Whether any setting ran more than once: only then is a group more than a job."""
    return any(len(group.jobs) > 1 for group in groups)


def percent(spread: Spread | None) -> str:
    """E.g. ``98.91 ± 0.07 % (n=3)``; a single job has no spread."""
    if spread is None:
        return ""
    spread_text = "" if spread.std is None else f" ± {100 * spread.std:.2f}"
    return f"{100 * spread.mean:.2f}{spread_text} % (n={spread.n})"


def plain(spread: Spread | None, fmt: str) -> str:
    if spread is None:
        return ""
    spread_text = "" if spread.std is None else f" ± {spread.std:{fmt}}"
    return f"{spread.mean:{fmt}}{spread_text}"


def cells(group: Group) -> dict[str, str]:
    return {
        "test acc": percent(group.spread("test_acc")),
        "test loss": plain(group.spread("test_loss"), ".4g"),
        "best val/loss": plain(group.spread("best_val_loss"), ".4g"),
        "seconds": plain(group.spread("seconds"), ".1f"),
        "failed": str(group.failed) if group.failed else "",
    }


def csv_row(group: Group, label: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "group": label,
        "overrides": " ".join(group.overrides),
        "n": len(group.finished),
        "failed": group.failed,
        "jobs": " ".join(str(job["job"]) for job in group.jobs),
    }
    for measure in MEASURES:
        spread = group.spread(measure)
        for stat in ("mean", "std", "min", "max"):
            row[f"{measure}_{stat}"] = getattr(spread, stat) if spread else None
    return row


def write_groups_csv(path: Path, groups: list[Group]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=GROUP_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_row(group, label) for group, label in zip(groups, labels(groups), strict=True))


def groups_markdown(groups: list[Group], sweep_dir: Path) -> str:
    common, _ = split_common([group.overrides for group in groups])
    jobs = sum(len(group.jobs) for group in groups)
    lines = [
        f"# Sweep groups: {sweep_dir}",
        "",
        f"{len(groups)} groups of {jobs} jobs (jobs that differ only in {' or '.join(REPEAT_KEYS)} are one "
        "group); mean ± standard deviation over each group's finished jobs, sorted by mean best val/loss "
        "(lowest first). Jobs that did not finish are counted apart.",
    ]
    if common:
        lines += ["", f"Overrides common to all groups: `{' '.join(common)}`"]
    header = ["group", *cells(groups[0]), "min-max test acc", "jobs"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, label in zip(groups, labels(groups), strict=True):
        acc = group.spread("test_acc")
        extremes = f"{acc.min:.2%} - {acc.max:.2%}" if acc else ""
        job_numbers = " ".join(str(job["job"]) for job in group.jobs)
        lines.append("| " + " | ".join([f"`{label}`", *cells(group).values(), extremes, job_numbers]) + " |")
    return "\n".join(lines) + "\n"


def print_groups(groups: list[Group], sweep_dir: Path) -> None:
    table = Table(title=f"{len(groups)} groups, best first (mean ± std over seeds and folds)")
    table.add_column("group", overflow="fold")
    # Four columns fit 80: a classifier's groups by test accuracy, a regression's (no accuracy) by test loss.
    scored_by = "test acc" if any(group.spread("test_acc") for group in groups) else "test loss"
    columns = (scored_by, "best val/loss", "failed")
    for name in columns:
        table.add_column(name, justify="right", no_wrap=True)
    for group, label in zip(groups, labels(groups), strict=True):
        shown = cells(group)
        table.add_row(label, *(shown[name] for name in columns))
    console = Console()
    console.print(table)
    console.print(f"groups: {sweep_dir / 'summary_groups.md'}, summary_groups.csv and summary.png")
