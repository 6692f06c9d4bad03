"""Predict your own images: `python predict.py ckpt_path=<ckpt> inputs=<path>` (see conf/predict.yaml)."""

import hydra
from omegaconf import DictConfig

from mnistlab.core.cli import run
from mnistlab.core.resolvers import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mnistlab.commands.predict import predict  # the stack loads here: --help and --cfg need no torch

    predict(cfg)


if __name__ == "__main__":
    run(main)  # every error a user can fix, Hydra's own included, as one line
