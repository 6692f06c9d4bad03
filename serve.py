"""Draw a digit for a checkpoint: `python serve.py ckpt_path=<ckpt>`, then open http://127.0.0.1:8000/."""

import hydra
from omegaconf import DictConfig

from mnistlab.core.cli import run
from mnistlab.core.resolvers import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="serve", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mnistlab.commands.serve import serve  # the stack loads here: --help and --cfg need no torch

    serve(cfg)


if __name__ == "__main__":
    run(main)  # every error a user can fix, Hydra's own included, as one line
