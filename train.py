"""Train a model: `python train.py model=cnn optimizer.lr=3e-3` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from mnistlab.core.cli import run
from mnistlab.core.resolvers import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from mnistlab.commands.train import main  # the stack loads here: --help and --cfg need no torch

    return main(cfg)  # a sweep's score: the best val/loss


if __name__ == "__main__":
    run(main)  # every error a user can fix, Hydra's own included, as one line
