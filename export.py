"""Export a checkpoint to ONNX or TorchScript: `python export.py ckpt_path=<ckpt>` (see conf/export.yaml)."""

import hydra
from omegaconf import DictConfig

from mnistlab.core.cli import run
from mnistlab.core.resolvers import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mnistlab.commands.export import export  # the stack loads here: --help and --cfg need no torch

    export(cfg)


if __name__ == "__main__":
    run(main)  # every error a user can fix, Hydra's own included, as one line
