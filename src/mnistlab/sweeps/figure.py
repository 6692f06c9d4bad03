"""``summary.png``: each group's test accuracy, its mean with the spread and every job as a point, best on
top; the same figure in the sweep dir's own TensorBoard run."""

from pathlib import Path

from matplotlib.figure import Figure

from mnistlab.sweeps.groups import Group, labels

FIGURE_FILE = "summary.png"
TENSORBOARD_DIR = "tensorboard"  # <sweep dir>/tensorboard: a run of its own beside the jobs' runs
TAG = "sweep/test_acc_by_group"
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


def write_to_tensorboard(figure: Figure, log_dir: Path, step: int) -> None:
    # Imported here: the summary runs in the sweep's own process, which a launcher may have kept torch-free.
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        writer.add_figure(TAG, figure, global_step=step)
