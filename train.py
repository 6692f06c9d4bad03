"""Train a model: `python train.py model=cnn optimizer.lr=3e-3` (see conf/train.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from mnistlab.cli import run
from mnistlab.config import register_resolvers
from mnistlab.errors import MnistlabError
from mnistlab.sweeps import is_multirun, run_sweep_job
from mnistlab.train import train

register_resolvers()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    if is_multirun():  # a failing job is recorded in its run dir and scores None: the sweep goes on
        return run_sweep_job(train, cfg)
    try:
        return train(cfg)["best_val_loss"]
    except MnistlabError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run(main)  # Hydra's own errors (an unknown model=..., an unwritable run dir) as one line too
