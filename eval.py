"""Test a checkpoint: `python eval.py ckpt_path=<run dir>/checkpoints/best.ckpt` (see conf/eval.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from mnistlab.cli import run
from mnistlab.config import register_resolvers
from mnistlab.errors import MnistlabError
from mnistlab.evaluate import evaluate

register_resolvers()


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except MnistlabError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run(main)  # Hydra's own errors (an unknown model=..., an unwritable run dir) as one line too
