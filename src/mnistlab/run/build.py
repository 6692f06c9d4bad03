"""A run's parts, built from its config: the datamodule, the model (a net and the data's task), the trainer.

Every part checks its own settings as it is built (core/checks.py); nothing here reads data.
"""

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from omegaconf import DictConfig, OmegaConf
from pydantic import ValidationError

from mnistlab.callbacks import (
    EndOnDeadProcess,
    RunConfigInCheckpoint,
    SeedEachEpoch,
    StopOnDivergence,
    StopTogetherOnSigterm,
)
from mnistlab.callbacks.dispatch import skip_empty_batch_hooks
from mnistlab.callbacks.optuna_trial import trial_callbacks
from mnistlab.core.checks import not_allowed
from mnistlab.core.errors import MnistlabError, causes
from mnistlab.core.files import disk_full, is_disk_full
from mnistlab.data.base import InMemoryDataModule
from mnistlab.io.checkpoint_io import AtomicCheckpointIO
from mnistlab.models import NetModule
from mnistlab.tasks import make_task

# The data is in memory and batches are cut by indexing: worker processes would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning's own all_gather (DDP: divergence checks, the mistakes figure) calls a torch function that warns
# of its successor, once per process and call site; nothing here can change that.
warnings.filterwarnings("ignore", "torch.distributed.nn.functional.all_gather is deprecated")

# What model.* holds besides the net's own arguments: what the net's outputs are (for the task) and
# whether the net is compiled (for the module). conf/shared/model.yaml gives their defaults.
TASK_OPTIONS = ("output", "label_smoothing")
MODULE_OPTIONS = ("compile",)


def build(cfg: DictConfig | Mapping[str, Any], key: str, **kwargs: Any) -> Any:
    """``instantiate(cfg, **kwargs)``, a setting its class refuses told as one line naming its key, and a
    disk too full for what it makes (a logger's database, say) as the place it writes."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as error:
        if is_disk_full(error):
            raise disk_full(place_in(cfg)) from error
        raise checked_error(error, key) from None


def place_in(cfg: DictConfig | Mapping[str, Any]) -> Path:
    """Where a part writes, as its config says: a SQLite database (MLflow's), or its folder."""
    uri = str(cfg.get("tracking_uri") or "")
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///"))
    return Path(str(cfg.get("save_dir") or cfg.get("dirpath") or "."))


def checked_error(error: Exception, key: str) -> Exception:
    """The one-line error for a refused setting; ``error`` itself for anything else."""
    for cause in causes(error):
        if isinstance(cause, MnistlabError):
            return cause
        if isinstance(cause, ValidationError):
            # Hydra names the node that failed when it is nested (data.augment inside data).
            inner = str(error).rsplit("full_key: ", 1)
            return not_allowed(cause, inner[1].strip() if len(inner) == 2 else key)
    return error


def build_datamodule(cfg: DictConfig, data: DictConfig | None = None) -> InMemoryDataModule:
    """The run's datamodule, its data not yet read; ``data`` replaces ``cfg.data`` (eval.py's overrides)."""
    return build(cfg.data if data is None else data, "data", shuffle_seed=cfg.seed)


def load_data(datamodule: InMemoryDataModule) -> InMemoryDataModule:
    """Reads the data for training: missing or broken files fail here, each in one line."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig, datamodule: InMemoryDataModule, train: bool = True) -> NetModule:
    """The net of ``cfg.model``, shaped by the data, in a NetModule for the data's task; with ``train``, the
    optimizer and scheduler too."""
    settings = OmegaConf.to_container(cfg.model, resolve=True)
    net_class = get_class(settings.pop("_target_"))
    task_options = {key: settings.pop(key) for key in TASK_OPTIONS}
    module_options = {key: settings.pop(key) for key in MODULE_OPTIONS}
    factories = {}
    if train:
        factories["optimizer"] = instantiate(cfg.optimizer)
        factories["scheduler"] = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    try:
        net = net_class(
            input_shape=list(datamodule.input_shape), num_outputs=datamodule.num_outputs, **settings
        )
        return NetModule(net, make_task(datamodule, **task_options), **factories, **module_options)
    except ValidationError as error:
        raise not_allowed(error, "model") from None


def check_accelerator(accelerator: str) -> None:
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise MnistlabError(
            f"trainer.accelerator={accelerator}, but no CUDA device is visible on this machine: use "
            "trainer=cpu, or trainer.accelerator=auto (a GPU when there is one)"
        )


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """The config's callbacks."""
    return [build(c, f"callbacks.{name}") for name, c in (cfg.get("callbacks") or {}).items()]


def training_callbacks(cfg: DictConfig) -> list[Callback]:
    """The config's callbacks, then those that keep every training run correct: not options, because a
    resume must be exact and a NaN loss must stop before it reaches a checkpoint."""
    return [
        *build_callbacks(cfg),
        RunConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)),
        SeedEachEpoch(cfg.seed),
        StopOnDivergence(),
        StopTogetherOnSigterm(),
        EndOnDeadProcess(cfg.paths.output_dir, cfg.seed),
        *trial_callbacks(cfg),  # an Optuna trial's job reports to its trial, which may prune it
    ]


def build_trainer(cfg: DictConfig, callbacks: list[Callback], **settings: Any) -> Trainer:
    """The trainer of ``cfg.trainer`` (``settings`` replace some), with the config's loggers.

    Lightning's switches keep their meaning: ``trainer.enable_progress_bar=false`` drops the bar, and
    ``trainer.enable_checkpointing=false`` the checkpoints, that the callbacks config adds (Lightning would
    refuse the pair); ``trainer.logger=false`` drops the loggers.
    """
    check_accelerator(cfg.trainer.accelerator)
    switches = {ProgressBar: "enable_progress_bar", ModelCheckpoint: "enable_checkpointing"}
    dropped = tuple(kind for kind, switch in switches.items() if cfg.trainer.get(switch) is False)
    callbacks = [callback for callback in callbacks if not isinstance(callback, dropped)]
    loggers = []
    if cfg.trainer.get("logger") is not False:
        loggers = [build(lg, f"logger.{name}") for name, lg in (cfg.get("logger") or {}).items()]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()], **settings
    )
    skip_empty_batch_hooks(trainer)  # also the callbacks the Trainer adds itself (bar, model summary)
    return trainer
