"""Test a checkpoint: `python eval.py ckpt_path=<run dir>/checkpoints/best.ckpt` (see conf/eval.yaml)."""

import hydra
from omegaconf import DictConfig

from mnistlab.core.cli import run
from mnistlab.core.resolvers import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mnistlab.commands.evaluate import evaluate  # the stack loads here: --help and --cfg need no torch

    evaluate(cfg)


if __name__ == "__main__":
    run(main)  # every error a user can fix, Hydra's own included, as one line
