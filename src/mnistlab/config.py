"""Resolvers the configs use; registered by the entry points (and tests) before Hydra composes."""

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf


def run_dir_of(ckpt_path: str | None, new_run_dir: str) -> str:
    """The run dir a checkpoint lives in (``<run dir>/checkpoints/x.ckpt``); otherwise a new one."""
    if ckpt_path and ckpt_path != "last" and Path(ckpt_path).parent.name == "checkpoints":
        return str(Path(ckpt_path).parent.parent)
    return new_run_dir


def config_subdir_for(ckpt_path: str | None) -> str:
    """Where Hydra saves the composed config: a resume keeps the original run's config intact."""
    if ckpt_path:
        return f".hydra/resume_{datetime.now():%Y-%m-%d_%H-%M-%S_%f}"
    return ".hydra"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("run_dir_of", run_dir_of, replace=True)
    OmegaConf.register_new_resolver("config_subdir_for", config_subdir_for, replace=True)
