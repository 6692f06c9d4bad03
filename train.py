"""Train a model: `python train.py model=cnn optimizer.lr=3e-3` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from mnistlab.run.cli import run
from mnistlab.run.run_dir import register_resolvers
from mnistlab.sweeps.jobs import is_multirun, run_sweep_job

register_resolvers()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from mnistlab.run.train import train  # the training stack loads here: --help and --cfg need no torch

    if is_multirun():  # a failing job is recorded in its run dir and scores None: the sweep goes on
        return run_sweep_job(train, cfg)
    return train(cfg).best_val_loss


if __name__ == "__main__":
    run(main)  # every error a user can fix, Hydra's own included, as one line
