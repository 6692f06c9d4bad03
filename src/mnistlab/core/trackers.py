"""The Weights & Biases run of a run dir, known from the files W&B writes there (torch- and wandb-free)."""

import secrets
import string
from pathlib import Path

# conf/logger/wandb.yaml's save_dir is the run dir: W&B keeps each of its runs' files in
# <run dir>/wandb/run-<time>-<id>/ (online) or offline-run-<time>-<id>/, around run-<id>.wandb.
WANDB_DIR = "wandb"


def wandb_run_in(run_dir: Path) -> str | None:
    """The id of the W&B run whose files are in ``run_dir`` (the newest, should a resume have added some)."""
    records = (run_dir / WANDB_DIR).glob("*run-*/run-*.wandb")
    newest = max(records, key=lambda path: path.parent.name.split("run-", 1)[1], default=None)
    return newest.stem.removeprefix("run-") if newest else None


def new_wandb_run_id() -> str:
    """A run id as W&B makes them: eight lowercase letters and digits."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
