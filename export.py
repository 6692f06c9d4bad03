"""Export a checkpoint to ONNX or TorchScript: `python export.py ckpt_path=<ckpt>` (see conf/export.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from mnistlab.cli import run
from mnistlab.config import register_resolvers
from mnistlab.errors import MnistlabError
from mnistlab.run.export import export

register_resolvers()


@hydra.main(config_path="conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        export(cfg)
    except MnistlabError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run(main)  # Hydra's own errors (an unknown key) as one line too
