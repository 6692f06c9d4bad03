"""``summary.png``: each group's test accuracy, its mean with the spread and every job as a point, best on
top; the same figure in the sweep dir's own TensorBoard run. An Optuna search adds its history."""

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mnistlab.sweeps.groups import Group, labels

FIGURE_FILE = "summary.png"
TENSORBOARD_DIR = "tensorboard"  # <sweep dir>/tensorboard: a run of its own beside the jobs' runs
TAG = "sweep/test_acc_by_group"
HISTORY_FILE = "optimization_history.png"
HISTORY_TAG = "sweep/optimization_history"
LABEL_CHARS = 60  # longer group labels are cut: the axis would squeeze the plot to nothing


def short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def draw_groups(groups: list[Group], title: str) -> Figure:
    """One row per group, the best (lowest mean val/loss) on top: rows stay legible from 2 groups to 40."""
    rows = len(groups)
    figure = Figure(figsize=(9.0, 1.4 + 0.32 * rows), layout="constrained")
    ax = figure.add_subplot()
    for row, group in enumerate(groups):
        y = rows - 1 - row
        accuracies = [100 * job["test_acc"] for job in group.finished if job["test_acc"] is not None]
        # Jobs of a group side by side in its row, so equal values stay visible as separate points.
        offsets = [
            0.24 * (i / max(len(accuracies) - 1, 1) - 0.5 * (len(accuracies) > 1))
            for i in range(len(accuracies))
        ]
        ax.scatter(accuracies, [y + o for o in offsets], s=16, color="tab:blue", alpha=0.6, zorder=2)
        spread = group.spread("test_acc")
        if spread is not None:
            std = 100 * (spread.std or 0.0)
            ax.errorbar(100 * spread.mean, y, xerr=std, fmt="D", color="black", ms=5, capsize=4, zorder=3)
        if group.failed:
            ax.annotate(
                f"{group.failed} not finished",
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color="tab:red",
            )
    ax.set_yticks(range(rows), [short(label) for label in reversed(labels(groups))], fontsize=8)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.set_xlabel("test accuracy (%): ◆ mean ± standard deviation, ● each job")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=10)
    return figure


def write_figure(groups: list[Group], sweep_dir: Path) -> Path:
    title = f"{sweep_dir.name}: {sum(len(g.jobs) for g in groups)} jobs in {len(groups)} groups, best on top"
    figure = draw_groups(groups, title)
    path = sweep_dir / FIGURE_FILE
    figure.savefig(path, dpi=110)
    write_to_tensorboard(figure, sweep_dir / TENSORBOARD_DIR, step=sum(len(g.jobs) for g in groups))
    return path


def write_to_tensorboard(figure: Figure, log_dir: Path, step: int, tag: str = TAG) -> None:
    # Imported here: the summary runs in the sweep's own process, which a launcher may have kept torch-free.
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        writer.add_figure(tag, figure, global_step=step)


def best_so_far(trials: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(trial number, lowest value of the complete trials up to it), from the first complete trial on."""
    best, points = math.inf, []
    for trial in sorted(trials, key=lambda t: t["number"]):
        if trial["state"] == "complete" and trial["value"] is not None:
            best = min(best, trial["value"])
        if math.isfinite(best):
            points.append((trial["number"], best))
    return points


def draw_history(trials: list[dict[str, Any]], title: str) -> Figure:
    """Each trial's val/loss against its number (a pruned one's last, marked x; a failed one a red tick at the
    bottom) and the best so far as a step line."""
    figure = Figure(figsize=(8.0, 4.5), layout="constrained")
    ax = figure.add_subplot()
    for state, style in (
        ("complete", {"marker": "o", "color": "tab:blue", "label": "complete: best val/loss"}),
        ("pruned", {"marker": "x", "color": "tab:orange", "label": "pruned: last val/loss"}),
    ):
        shown = [t for t in trials if t["state"] == state and t["value"] is not None]
        ax.scatter([t["number"] for t in shown], [t["value"] for t in shown], s=24, zorder=3, **style)
    if best := best_so_far(trials):
        ax.step(*zip(*best, strict=True), where="post", color="black", label="best so far", zorder=2)
    failed = [t["number"] for t in trials if t["state"] == "fail"]
    if failed:
        ax.plot(failed, [0.0] * len(failed), "|", color="tab:red", ms=14, mew=2, label="failed",
                transform=ax.get_xaxis_transform())  # fmt: skip
    ax.set_xlabel("trial")
    ax.set_ylabel("val/loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return figure


def write_history(trials: list[dict[str, Any]], sweep_dir: Path) -> Path:
    """An Optuna search's history: HISTORY_FILE in the sweep dir, HISTORY_TAG in its TensorBoard run.
    ``trials``: {number, state ("complete", "pruned", "fail"), value} each."""
    counts = ", ".join(f"{sum(t['state'] == s for t in trials)} {s}" for s in ("complete", "pruned", "fail"))
    figure = draw_history(trials, f"{sweep_dir.name}: {len(trials)} trials ({counts})")
    path = sweep_dir / HISTORY_FILE
    figure.savefig(path, dpi=110)
    write_to_tensorboard(figure, sweep_dir / TENSORBOARD_DIR, step=len(trials), tag=HISTORY_TAG)
    return path
