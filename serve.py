"""Draw a digit for a checkpoint: `python serve.py ckpt_path=<ckpt>`, then open http://127.0.0.1:8000/."""

import sys

import hydra
from omegaconf import DictConfig

from mnistlab.cli import run
from mnistlab.config import register_resolvers
from mnistlab.errors import MnistlabError
from mnistlab.run.serve import serve

register_resolvers()


@hydra.main(config_path="conf", config_name="serve", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        serve(cfg)
    except MnistlabError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run(main)  # Hydra's own errors (an unknown key) as one line too
