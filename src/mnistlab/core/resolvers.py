"""The resolvers the configs use (``${run_dir_of:...}``, ...), registered by the entry points and the tests
before Hydra composes."""

from omegaconf import OmegaConf

from mnistlab.core.errors import MnistlabError
from mnistlab.core.ranks import run_stamp
from mnistlab.core.run_dir import (
    config_subdir_for,
    run_dir_of,
    run_name,
    run_tags,
    sweep_name,
    sweep_setting,
    wandb_run_of,
)


def slurm_tasks_per_node(devices: int | str) -> int:
    """One SLURM task per device: Lightning's SLURM environment expects ntasks-per-node = trainer.devices."""
    if not isinstance(devices, int) or devices < 1:
        raise MnistlabError(
            f"trainer.devices={devices} does not say how many tasks a SLURM job needs: "
            "set trainer.devices=N (the GPUs or processes per node)"
        )
    return devices


def slurm_gpus_per_node(accelerator: str, devices: int | str) -> int | None:
    return slurm_tasks_per_node(devices) if accelerator in ("gpu", "cuda") else None


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("run_dir_of", run_dir_of, replace=True)
    OmegaConf.register_new_resolver("config_subdir_for", config_subdir_for, replace=True)
    # Cached, as Hydra's `now`: the run dir resolves to one name however often it is read.
    OmegaConf.register_new_resolver("run_stamp", run_stamp, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("slurm_tasks_per_node", slurm_tasks_per_node, replace=True)
    OmegaConf.register_new_resolver("slurm_gpus_per_node", slurm_gpus_per_node, replace=True)
    OmegaConf.register_new_resolver("run_tags", run_tags, replace=True)
    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("sweep_name", sweep_name, replace=True)
    OmegaConf.register_new_resolver("sweep_setting", sweep_setting, replace=True)
    # Cached: a new run's id is drawn once, however often the config is read.
    OmegaConf.register_new_resolver("wandb_run_of", wandb_run_of, replace=True, use_cache=True)
