"""Predict your own images: `python predict.py ckpt_path=<ckpt> inputs=<path>` (see conf/predict.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from mnistlab.cli import run
from mnistlab.config import register_resolvers
from mnistlab.errors import MnistlabError
from mnistlab.run.predict import predict

register_resolvers()


@hydra.main(config_path="conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        predict(cfg)
    except MnistlabError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run(main)  # Hydra's own errors (an unknown key, an unwritable run dir) as one line too
