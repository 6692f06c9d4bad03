"""The real conf/: every option of every group and every experiment composes and builds what it names."""

import functools
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import CONF, SHRINK, loaded_datamodule, training_trainer, write_mnist
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import OmegaConf, open_dict

from mnistlab.commands import train as train_command
from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError
from mnistlab.core.results import RunResult
from mnistlab.data.mnist import DATASETS
from mnistlab.run.best import best_checkpoint_callback
from mnistlab.run.build import build_datamodule, build_model
from mnistlab.sweeps.jobs import LAUNCH_VARIABLES

GROUPS = (
    "data",
    "data/augment",
    "model",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "debug",
)


def options(group: str) -> list[str]:
    """The group's options, those in its subfolders too (experiment=tutorial/small_mlp)."""
    folder = CONF / group
    if group == "data":  # data/augment is a group of its own
        return sorted(path.stem for path in folder.glob("*.yaml"))
    return sorted(str(path.relative_to(folder).with_suffix("")) for path in folder.rglob("*.yaml"))


# Runs of over 10 s here (MLflow's import and store; bf16's first use builds oneDNN kernels; the classic
# tutorials with a CNN or many epochs), kept for the slow group that CI runs, so that the default suite stays
# within its 5 minutes.
SLOW_RUNS = {
    ("logger", "mlflow"),
    ("logger", "all"),
    ("experiment", "mnist_best"),
    ("experiment", "fashion_best"),
    ("experiment", "tutorial/small_mlp"),
    ("experiment", "tutorial/small_mlp_tuned"),
    ("experiment", "tutorial/scratch_mnist"),
}


def marks_of(group: str, option: str) -> list[pytest.MarkDecorator]:
    needs_gpu = {("trainer", "gpu"), ("trainer", "ddp")}
    return [pytest.mark.gpu] * ((group, option) in needs_gpu) + [pytest.mark.slow] * (
        (group, option) in SLOW_RUNS
    )


def group_option_params() -> list:
    return [
        pytest.param(group, option, id=f"{group}={option}", marks=marks_of(group, option))
        for group in GROUPS
        for option in options(group)
    ]


TINY = {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1, "limit_test_batches": 1}


def tiny_run(cfg, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> RunResult:
    """The whole run the config names (fit, test of the best checkpoint, results), on two batches an epoch;
    with ``monkeypatch``, the run's trainer and model are kept in ``BUILT``."""
    with open_dict(cfg):
        cfg.trainer.update(TINY)
    if cfg.data._target_.endswith("MNISTDataModule"):
        write_mnist(mnist_dir, dataset=DATASETS[cfg.data.dataset].__name__, n_train=100, n_test=50)
    if monkeypatch is not None:
        keep("build_trainer", monkeypatch)
        keep("build_model", monkeypatch)
    result = train(cfg)
    assert result.status == "finished"
    assert RunResult.read(Path(cfg.paths.output_dir)) == result
    # A regression (data=function) has no classes and no per-class accuracy.
    assert result.test_loss is not None and len(result.test_acc_per_class or []) == cfg_classes(cfg)
    return result


BUILT: dict[str, object] = {}


def keep(builder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    built = getattr(train_command, builder)
    monkeypatch.setattr(train_command, builder, lambda *a, **k: BUILT.setdefault(builder, built(*a, **k)))


def parts_of_the_run() -> list[object]:
    trainer, model = BUILT["build_trainer"], BUILT["build_model"]
    datamodule = trainer.datamodule
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    return [trainer, datamodule, getattr(datamodule, "augment", None), model.net, *trainer.optimizers,
            *schedulers, *trainer.callbacks, *trainer.loggers, trainer.strategy]  # fmt: skip


def assert_the_run_built_what_the_option_names(cfg, group: str) -> None:
    """Each class the option names (its own, its entries' and their nested ones') is a part of the run; an
    empty option (none) leaves the run without the group's parts; debug's settings reach the trainer."""
    selected = OmegaConf.select(cfg, group.replace("/", "."))
    node = OmegaConf.to_container(selected, resolve=True) if OmegaConf.is_config(selected) else {}
    if group == "debug":
        node = OmegaConf.to_container(cfg.trainer)
    parts = parts_of_the_run()
    named = [node] if "_target_" in node else [entry for entry in node.values() if isinstance(entry, dict)]
    named += [child for entry in named for child in entry.values() if isinstance(child, dict)]
    for target in (entry["_target_"] for entry in named if "_target_" in entry):
        if target != "datetime.timedelta":  # the DDP strategy's timeout: a value, not a part
            assert any(isinstance(part, get_class(target)) for part in parts), target
    trainer = BUILT["build_trainer"]
    empty = {
        "scheduler": not trainer.lr_scheduler_configs,
        "logger": not trainer.loggers,
        # Lightning's own default checkpoint remains; it monitors nothing, so the run tests its last weights.
        "callbacks": best_checkpoint_callback(trainer) is None
        and not [c for c in trainer.callbacks if type(c).__module__.startswith("mnistlab.dashboards")],
        "data/augment": getattr(trainer.datamodule, "augment", None) is None,
    }
    if not node:
        assert empty[group], group
    if group == "debug":  # what the option sets on the trainer, beyond the tiny run's own limits
        written = OmegaConf.load(CONF / "debug" / f"{cfg_choice(cfg, 'debug')}.yaml").get("trainer", {})
        for key in set(written) - set(TINY):
            assert getattr(trainer, key) == written[key], key


def cfg_choice(cfg, group: str) -> str:
    return HydraConfig.get().runtime.choices[group]


def cfg_classes(cfg) -> int:
    return len(build_datamodule(cfg).class_names)


# Plain gradient descent has no momentum for the default one-cycle schedule to cycle.
COMPANIONS = {
    ("optimizer", "gd"): ["scheduler=none"],
    # One process here: more would have Lightning start this pytest again as their command
    # (tests/run/test_ddp.py runs DDP of two processes as train.py).
    ("trainer", "ddp"): ["trainer.devices=1"],
    ("trainer", "ddp_cpu"): ["trainer.devices=1"],
}


@pytest.mark.parametrize(("group", "option"), group_option_params())
def test_every_group_option_runs_a_whole_training_run(compose_cfg, mnist_dir, monkeypatch, group, option):
    overrides = [f"{group}={option}"] if group == "model" else ["model=mlp", f"{group}={option}"]
    cfg = compose_cfg(*overrides, *COMPANIONS.get((group, option), []))
    BUILT.clear()
    try:
        tiny_run(cfg, mnist_dir, monkeypatch)
        assert_the_run_built_what_the_option_names(cfg, group)
    finally:  # a DDP trainer's process group and its launcher's variables outlive the Trainer
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name in LAUNCH_VARIABLES:
            os.environ.pop(name, None)


def test_a_scheduler_that_cannot_drive_the_optimizer_is_a_clear_error(compose_cfg, mnist_dir):
    with pytest.raises(MnistlabError, match=r"choose another scheduler=\.\.\. or optimizer=\.\.\."):
        tiny_run(compose_cfg("model=mlp", "optimizer=gd", "scheduler=onecycle"), mnist_dir)


def experiment_leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from experiment_leaves(value, f"{prefix}{key}.")
        elif key != "defaults":
            yield f"{prefix}{key}", value


@pytest.mark.parametrize(
    "experiment", [pytest.param(name, marks=marks_of("experiment", name)) for name in options("experiment")]
)
def test_every_experiment_composes_as_written_and_runs_a_whole_training_run(
    compose_cfg, mnist_dir, experiment
):
    cfg = compose_cfg(f"experiment={experiment}")
    # Every value the experiment file sets itself is in the composed config (unless the tests' shrink set it).
    shrunk = {override.split("=")[0] for override in SHRINK}
    written = OmegaConf.to_container(OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml"))
    composed = OmegaConf.to_container(cfg)  # unresolved: an interpolation the file writes reads as written
    for key, value in experiment_leaves(written):
        if key not in shrunk:
            assert functools.reduce(dict.__getitem__, key.split("."), composed) == value, key
    # ... and so is every group option it chooses (`override /callbacks: ema`).
    choices = HydraConfig.get().runtime.choices
    overrides = [entry for entry in written.get("defaults", []) if isinstance(entry, dict)]
    for group, option in (item for entry in overrides for item in entry.items()):
        assert choices[group.removeprefix("override /")] == option, group
    tiny_run(cfg, mnist_dir)


def test_the_speedrun_validates_only_its_last_epoch_and_trains_with_smoothed_targets(compose_cfg, mnist_dir):
    cfg = compose_cfg("experiment=speedrun", "trainer.max_epochs=3", "data.batch_size=100")
    model = build_model(cfg, loaded_datamodule(cfg))
    assert not any(isinstance(layer, torch.nn.Dropout) for layer in model.net)
    assert [type(layer).__name__ for layer in model.net[-2:]] == ["Flatten", "Linear"]  # no hidden layer
    z, y = torch.randn(8, 10), torch.randint(10, (8,))
    assert torch.equal(model.task.training_loss(z, y), F.cross_entropy(z, y, label_smoothing=0.1))
    result = train(cfg)
    assert (result.status, result.epochs_run) == ("finished", 3)
    # One validation, after the last of the three epochs: the best checkpoint is that epoch's.
    assert result.best_epoch == 2
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert best["epoch"] == 2


def test_classic_experiments_build_their_tutorials_pieces(compose_cfg):
    rings = compose_cfg("experiment=tutorial/scratch_rings")
    assert rings.data._target_.endswith("RingsDataModule")
    assert rings.model._target_.endswith("ScratchMLP")
    assert rings.optimizer._target_.endswith("GradientDescent")
    softmax_cfg = compose_cfg("experiment=tutorial/softmax_mlp")
    softmax = build_model(softmax_cfg, build_datamodule(softmax_cfg))
    linear_weights = [p for name, p in softmax.named_parameters() if name.endswith("weight")]
    assert all(w.std().item() == pytest.approx(0.01, rel=0.1) for w in linear_weights)
    assert compose_cfg("experiment=tutorial/log_softmax_mlp").model.output == "log_softmax"


def test_default_seed_is_fixed_and_drives_shuffling_but_not_the_split(compose_cfg):
    default = compose_cfg()
    written = OmegaConf.load(CONF / "train.yaml").seed
    assert isinstance(written, int) and default.seed == written == build_datamodule(default).shuffle_seed
    zero = compose_cfg("seed=0")
    assert build_datamodule(zero).shuffle_seed == 0
    assert build_datamodule(zero).split_seed == build_datamodule(default).split_seed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:Synchronization debug mode is a prototype")
def test_gpu_trainer_places_the_data_on_the_device(compose_cfg):
    cfg = compose_cfg("trainer=gpu", "model=mlp", "+trainer.fast_dev_run=1")
    datamodule = loaded_datamodule(cfg)
    cpu_order = next(iter(datamodule.train_dataloader().sampler))
    training_trainer(cfg).fit(build_model(cfg, datamodule), datamodule=datamodule)
    assert datamodule.train_set.inputs.device.type == "cuda"
    # The batch indices live there too (no copy and wait per step), in the order the CPU would draw.
    gpu_order = next(iter(datamodule.train_dataloader().sampler))
    assert gpu_order.device.type == "cuda"
    assert torch.equal(gpu_order.cpu(), cpu_order)
    batches = iter(datamodule.train_dataloader())
    assert next(batches)[0].device.type == "cuda"  # the epoch's one copy of the order to the GPU
    torch.cuda.set_sync_debug_mode("error")  # any later wait for the GPU raises
    try:
        next(batches)
    finally:
        torch.cuda.set_sync_debug_mode("default")
