"""Speed: the project's own training path against a plain PyTorch loop, alternating in one process.

    python benchmarks/speed.py --data-dir ../shared/data [--quick] [--json PATH] [--trainer gpu]
    python benchmarks/speed.py --profile --cases small         # where the project's epoch goes
    python benchmarks/speed.py --cases small callbacks=none    # any Hydra overrides, for both sides
    python benchmarks/speed.py --speedrun --seeds 0 1 2 3 4    # experiment=speedrun: fit s, test accuracy

For each case the project side is a normal run: the real conf/ composed with Hydra's compose API, then
``build_datamodule``, ``build_model`` and ``build_trainer`` as ``mnistlab.commands.train`` calls them, with
the default callbacks (checkpoints, progress bar, figures) and TensorBoard logging on, writing to a temporary
folder. The plain side is what one would write by hand: the same network, batch size, optimizer (and
scheduler) and data as in-memory tensors, with train and validation loss/accuracy tracked per epoch, and no
framework. A third side, "Lightning alone", is the least Lightning can do: the same datamodule, net, optimizer
and scheduler in a LightningModule with nothing but a training and validation step, in a Trainer with no
callbacks, logger or progress bar; it tells what Lightning itself costs from what the project adds.
The sides take turns, so that a change in the machine's load hits all of them. Start-up is measured
in fresh processes: to the composed config (``train.py --cfg job``), to each phase up to the first training
step of ``train.py``, and the time to import torch, lightning and torchvision alone, for comparison.
With ``--speedrun``, each seed of ``experiment=speedrun`` runs whole as ``train.py`` runs it (fit, then the
test of the best checkpoint), next to a plain loop of the same recipe, taking turns: the fit seconds (training
and validation, ``fit_seconds`` in metrics.json) and the test accuracy of each, and their medians.
Results: docs/benchmarks.md.
"""

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table
from torch import Tensor

from mnistlab.commands.train import train
from mnistlab.core.files import write_json
from mnistlab.core.resolvers import register_resolvers
from mnistlab.run.build import build_datamodule, build_model, build_trainer, load_data, training_callbacks

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# Starts the lines the start-up probe prints in a child train.py: the phase, then the wall-clock time.
STARTUP_MARK = "mnistlab-benchmark-startup"


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    overrides: tuple[str, ...]


# The dropout tutorial's net and recipe: 784-512-512-10, dropout 0.2, SGD 0.01, no augmentation.
DROPOUT_MLP = ("experiment=tutorial/dropout_mlp",)
# The default recipe (Adam, one-cycle) without the default random affine augmentation: the plain loop would
# have to do the same work per batch (it does, if asked), and the point here is what the framework costs.
DEFAULT_RECIPE = ("data/augment=none", "data.batch_size=128")
SMALL_NET = ("model=mlp", "model.hidden_sizes=[64,128,64]", "model.batch_norm=true")
# A net whose arithmetic costs next to nothing (784-10, one matrix product): its step is the framework's.
LINEAR = ("model=mlp", "model.hidden_sizes=[]")
CASES = (
    Case("linear", "784-10 linear, AdamW, b128: the per-step overhead", (*DEFAULT_RECIPE, *LINEAR)),
    Case("mlp", "784-512-512-10, SGD (dropout tutorial), b128", (*DROPOUT_MLP, "data.batch_size=128")),
    Case("small", "784-64-128-64-10 + BN, AdamW, b128", (*DEFAULT_RECIPE, *SMALL_NET)),
    Case("cnn", "cnn 3 conv blocks 32-64-128, AdamW, b128", (*DEFAULT_RECIPE, "model=cnn")),
    Case("mlp_b20", "784-512-512-10, SGD (dropout tutorial), b20", (*DROPOUT_MLP, "data.batch_size=20")),
)
# What the project may add to Lightning's own cost, for every case (issue 14): project / Lightning alone.
# The plain loop is the limit, reported beside it.
FRAMEWORK_TARGET = 1.05
# The speedrun's targets (issue 23): each seed's test accuracy, the median fit (2 CPU cores; an H200: 0.5 s),
# project / plain loop of the same recipe.
SPEEDRUN_ACC_TARGET, SPEEDRUN_RATIO_TARGET = 0.99, 1.10
SPEEDRUN_FIT_TARGET_S = {"cpu": 8.0, "cuda": 0.5}
STARTUP_TARGET_S = 2.0  # start-up to the first training step, beyond the time to import the libraries
CONFIG_TARGET_S = 2.0  # train.py --cfg job (and --help): no torch, no Lightning


@dataclass(frozen=True)
class Plan:
    """How much to measure: per case, repetitions (each trains both sides) and epochs per training run."""

    runs: dict[str, tuple[int, int]]
    startup_runs: int


# More repetitions of fewer epochs: the sides take turns more often, so that the load of this shared machine,
# which moves by a fifth within a minute, hits them alike. The cnn takes half a minute an epoch on two CPU
# cores: fewer of its epochs, it is also the least noisy case.
FULL = Plan(
    runs={"linear": (8, 3), "mlp": (8, 2), "small": (8, 3), "cnn": (3, 2), "mlp_b20": (6, 2)}, startup_runs=5
)
QUICK = Plan(runs={name: (1, 1) for name in ("linear", "mlp", "small", "cnn", "mlp_b20")}, startup_runs=1)


@dataclass(frozen=True)
class Job:
    """A composed run config and the environment variables Hydra sets while train.py's job runs."""

    cfg: DictConfig
    env: dict[str, str]


def compose_job(data_dir: Path, output_dir: Path, overrides: list[str]) -> Job:
    """The real conf/, composed as train.py composes it, writing into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.data_dir={data_dir}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # resolves ${hydra:...} in paths, as in a real run
    env = {key: str(value) for key, value in cfg.hydra.job.env_set.items()}
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return Job(cfg, env)


@contextmanager
def environment(set_vars: dict[str, str], unset_vars: tuple[str, ...] = ()) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(set_vars)
    for name in unset_vars:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# Set by `import lightning` (see conf/hydra/default.yaml). A plain script never imports Lightning, so its
# loop runs without it; here both sides share one process, so the plain side removes it while it runs.
SET_BY_LIGHTNING = ("PYTORCH_NVML_BASED_CUDA_CHECK",)


class Clock:
    """Wall-clock and CPU seconds of the laps between calls. CPU time counts what this process ran, not
    its waits for a core that another job held; with two threads it counts both."""

    def __init__(self) -> None:
        self.last: tuple[float, float] | None = None
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.step_s: list[float] = []  # per epoch: its training steps' seconds over their number

    def lap(self) -> None:
        now = (time.perf_counter(), time.process_time())
        if self.last is not None:
            self.wall.append(now[0] - self.last[0])
            self.cpu.append(now[1] - self.last[1])
        self.last = now


class EpochTimer(L.Callback):
    """Times each training epoch from its start to the next one's (or the end of fit), and its steps alone.

    An epoch thus includes its validation, checkpointing and logging, as a user waits for them; a step is the
    epoch's training part (its start to its last training batch's end) over the number of batches.
    """

    def __init__(self) -> None:
        self.clock = Clock()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.lap()
        self.epoch_started, self.steps = time.perf_counter(), 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.steps += 1
        if batch_idx + 1 == trainer.num_training_batches:  # the epoch's last: its steps done, as the plain's
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize()
            self.clock.step_s.append((time.perf_counter() - self.epoch_started) / self.steps)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.lap()


def project_epochs(job: Job, epochs: int) -> Clock:
    return project_run(job, epochs)[0]


def project_run(job: Job, epochs: int) -> tuple[Clock, L.Trainer]:
    """Train with the project's code path, as mnistlab.commands.train.train does; times each epoch."""
    cfg = job.cfg
    with open_dict(cfg):
        cfg.trainer.max_epochs = epochs
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = load_data(build_datamodule(cfg))
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg, training_callbacks(cfg))
    timer = EpochTimer()
    trainer.callbacks.append(timer)  # observes only: two clock readings per epoch
    with environment(job.env):
        trainer.fit(model, datamodule=datamodule)
    return timer.clock, trainer


def plain_epochs(job: Job, epochs: int, device: torch.device) -> Clock:
    """The same net, batches, optimizer and data, trained by hand; times each epoch."""
    with environment({}, unset_vars=SET_BY_LIGHTNING):
        return plain_loop(job.cfg, epochs, device)


class LightningAlone(L.LightningModule):
    """The project's net, loss, optimizer and scheduler, and nothing else: no metrics, no logging."""

    def __init__(self, project_model: L.LightningModule) -> None:
        super().__init__()
        self.net = project_model.net
        self.project_model = [project_model]  # a list hides it from nn.Module: only configure_optimizers

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> Any:
        [project_model] = self.project_model
        project_model.trainer = self.trainer  # it sizes a one-cycle schedule from the trainer's step count
        return project_model.configure_optimizers()


def lightning_alone_epochs(job: Job, epochs: int) -> Clock:
    cfg = job.cfg
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = load_data(build_datamodule(cfg))
    model = LightningAlone(build_model(cfg, datamodule))
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        max_epochs=epochs,
        num_sanity_val_steps=0,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with environment(job.env):  # conf/hydra's environment, as for the project: see SET_BY_LIGHTNING
        trainer.fit(model, datamodule=datamodule)
    return timer.clock


def plain_loop(cfg: DictConfig, epochs: int, device: torch.device) -> Clock:
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = load_data(build_datamodule(cfg))  # only to get the same images and the same train/val split
    net = build_model(cfg, datamodule).net.to(device)  # a plain nn.Sequential: no Lightning inside
    assert cfg.model.output == "logits", "the plain loop trains logits with cross-entropy"

    augment = getattr(datamodule, "augment", None)  # if set, the same random affine per batch
    # Normalised once, up front, as a hand-written loop would: the datamodule has done just that.
    x_train, y_train = datamodule.train_set.inputs.to(device), datamodule.train_set.labels.to(device)
    x_val, y_val = datamodule.val_set.inputs.to(device), datamodule.val_set.labels.to(device)
    batch_size, eval_batch_size = cfg.data.batch_size, cfg.data.eval_batch_size
    steps_per_epoch = -(-len(y_train) // batch_size)

    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    scheduler = None
    if cfg.get("scheduler"):
        length = steps_per_epoch * epochs
        scheduler = instantiate(cfg.scheduler)(optimizer, **scheduler_length(cfg.scheduler, length))

    clock, history = Clock(), []
    clock.lap()
    for _ in range(epochs):
        steps_started = time.perf_counter()
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for idx in torch.randperm(len(y_train), device=device).split(batch_size):
            x, y = x_train[idx], y_train[idx]
            if augment:
                x = augment(x, background=datamodule.background)
            out = net(x)
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (out.argmax(dim=1) == y).sum()
        if device.type == "cuda":
            torch.cuda.synchronize()  # the steps' time, not their launch's (as EpochTimer takes it)
        clock.step_s.append((time.perf_counter() - steps_started) / steps_per_epoch)
        net.eval()
        val_loss = torch.zeros((), device=device)
        val_correct = torch.zeros((), device=device, dtype=torch.long)
        with torch.no_grad():
            for x, y in zip(x_val.split(eval_batch_size), y_val.split(eval_batch_size), strict=True):
                out = net(x)
                val_loss += F.cross_entropy(out, y, reduction="sum")
                val_correct += (out.argmax(dim=1) == y).sum()
        # What a hand-written loop prints at the end of an epoch; .item() also waits for a GPU to finish.
        history.append(
            {
                "train_loss": loss_sum.item() / len(y_train),
                "train_acc": correct.item() / len(y_train),
                "val_loss": val_loss.item() / len(y_val),
                "val_acc": val_correct.item() / len(y_val),
            }
        )
        clock.lap()
    return clock


def plain_speedrun(cfg: DictConfig, device: torch.device) -> dict[str, float]:
    """The speedrun's recipe by hand: its net, batches, optimizer, schedule and smoothed loss, validated as
    often as the config says; fit seconds as metrics.json counts them, then the test accuracy (not timed)."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = load_data(build_datamodule(cfg))
    datamodule.setup("test")
    net = build_model(cfg, datamodule).net.to(device)
    x_train, y_train = datamodule.train_set.inputs.to(device), datamodule.train_set.labels.to(device)
    batch_size, epochs = cfg.data.batch_size, cfg.trainer.max_epochs
    smoothing = cfg.model.get("label_smoothing", 0.0)
    started = time.perf_counter()
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    steps = -(-len(y_train) // batch_size) * epochs
    scheduler = instantiate(cfg.scheduler)(optimizer, **scheduler_length(cfg.scheduler, steps))
    forward = configured_forward(cfg, net, device)
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(y_train), device=device).split(batch_size):
            loss = F.cross_entropy(forward(x_train[idx]), y_train[idx], label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if (epoch + 1) % cfg.trainer.check_val_every_n_epoch == 0:
            accuracy(
                forward, net, datamodule.val_set, cfg.data.eval_batch_size, device
            )  # as the project does
    fit_s = time.perf_counter() - started
    test_acc = accuracy(forward, net, datamodule.test_set, cfg.data.eval_batch_size, device)
    return {"fit_s": round(fit_s, 3), "test_acc": test_acc}


def configured_forward(cfg: DictConfig, net: torch.nn.Module, device: torch.device) -> Callable[[Any], Any]:
    """The net's forward as the recipe runs it: bf16 autocast (trainer.precision=bf16-mixed) and NHWC inputs
    (model.channels_last; the built net's weights are NHWC already), as Lightning and the CNN do."""
    bf16 = cfg.trainer.precision == "bf16-mixed"
    channels_last = cfg.model.get("channels_last", False)

    def forward(x: Any) -> Any:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return net(x)

    return forward


def accuracy(
    forward: Callable[[Any], Any], net: torch.nn.Module, tensors: Any, batch_size: int, device: torch.device
) -> float:
    net.eval()
    correct = torch.zeros((), device=device, dtype=torch.long)
    with torch.no_grad():
        for x, y in zip(tensors.inputs.split(batch_size), tensors.labels.split(batch_size), strict=True):
            correct += (forward(x.to(device)).argmax(dim=1) == y.to(device)).sum()
    return round(correct.item() / len(tensors), 5)


def project_speedrun(job: Job) -> dict[str, float]:
    """A whole run of train.py's flow: fit, then the test of the best checkpoint; its metrics.json numbers."""
    with environment(job.env):
        result = train(job.cfg)
    return {"fit_s": result.fit_seconds, "test_acc": round(result.test_acc, 5)}


def measure_speedrun(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    device = plain_device(args.trainer)
    overrides = ["experiment=speedrun", f"trainer={args.trainer}", *args.overrides]
    seeds: dict[int, dict[str, dict[str, float]]] = {}
    for turn, seed in enumerate(args.seeds):
        job = compose_job(args.data_dir, workdir / f"speedrun-{seed}", [*overrides, f"seed={seed}"])
        sides = [
            ("project", lambda job: project_speedrun(job)),
            ("plain", lambda job: plain_speedrun(job.cfg, device)),
        ]
        seeds[seed] = {side: run(job) for side, run in (sides if turn % 2 == 0 else reversed(sides))}
    project_s = statistics.median(run["project"]["fit_s"] for run in seeds.values())
    plain_s = statistics.median(run["plain"]["fit_s"] for run in seeds.values())
    return {
        "project_fit_s": round(project_s, 3),
        "plain_fit_s": round(plain_s, 3),
        "ratio": round(project_s / plain_s, 3),
        "target_ratio": SPEEDRUN_RATIO_TARGET,
        "target_fit_s": SPEEDRUN_FIT_TARGET_S[device.type],
        "target_test_acc": SPEEDRUN_ACC_TARGET,
        "min_project_test_acc": min(run["project"]["test_acc"] for run in seeds.values()),
        "seeds": {str(seed): run for seed, run in seeds.items()},
    }


def command_to_model(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """``python train.py experiment=speedrun`` as a user types it, in a process of its own, timed from the
    command to its end: start-up (imports, config) and the first use of each kernel included."""
    run_dir = workdir / "speedrun-command"
    command = [
        sys.executable, str(ROOT / "train.py"), "experiment=speedrun", f"data.data_dir={args.data_dir}",
        f"trainer={args.trainer}", f"hydra.run.dir={run_dir}", *args.overrides,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    total = time.perf_counter() - started
    metrics = json.loads((run_dir / "metrics.json").read_text())
    compile_s = metrics["compile_seconds"] or 0.0
    return {
        "command_s": round(total, 2),
        "start_up_s": round(total - metrics["seconds"], 2),  # the process before train() and after it
        "compile_s": round(compile_s, 2),
        "fit_s": metrics["fit_seconds"],
        "data_and_test_s": round(metrics["seconds"] - metrics["fit_seconds"] - compile_s, 2),
        "test_acc": metrics["test_acc"],
    }


def print_speedrun(speedrun: dict[str, Any], console: Console) -> None:
    table = Table(title="experiment=speedrun: fit seconds (training + validation) and test accuracy per seed")
    for column in ("seed", "project fit s", "project test acc", "plain fit s", "plain test acc"):
        table.add_column(column, justify="right")
    for seed, run in speedrun["seeds"].items():
        project, plain = run["project"], run["plain"]
        table.add_row(
            seed,
            f"{project['fit_s']:.2f}",
            f"{project['test_acc']:.2%}",
            f"{plain['fit_s']:.2f}",
            f"{plain['test_acc']:.2%}",
        )
    table.add_row(
        "median",
        f"{speedrun['project_fit_s']:.2f} (target ≤ {speedrun['target_fit_s']:g})",
        f"min {speedrun['min_project_test_acc']:.2%} (target ≥ {SPEEDRUN_ACC_TARGET:.0%})",
        f"{speedrun['plain_fit_s']:.2f}",
        f"ratio {speedrun['ratio']:.2f} (target ≤ {SPEEDRUN_RATIO_TARGET:.2f})",
    )
    console.print(table)
    if command := speedrun.get("command"):
        parts = ", ".join(
            f"{name} {command[key]:.2f} s"
            for name, key in (("start-up", "start_up_s"), ("compile", "compile_s"), ("fit", "fit_s"))
        )
        console.print(
            f"From the command to the {command['test_acc']:.2%} model: {command['command_s']:.2f} s "
            f"({parts}, data and test {command['data_and_test_s']:.2f} s): train.py experiment=speedrun"
        )


def scheduler_length(scheduler_cfg: DictConfig, steps: int) -> dict[str, int]:
    # The same run-length arguments the LightningModule fills in from the trainer.
    target = scheduler_cfg._target_
    if target.endswith("OneCycleLR"):
        return {"total_steps": steps}
    if target.endswith("CosineAnnealingLR"):
        return {"T_max": steps}
    return {}


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info lines (GPU available, model summary...) would bury the results; bars stay on."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def plain_device(trainer_choice: str) -> torch.device:
    use_gpu = trainer_choice == "gpu" or (trainer_choice == "default" and torch.cuda.is_available())
    return torch.device("cuda" if use_gpu else "cpu")


def measure_case(case: Case, args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    repetitions, epochs = plan.runs[case.name]
    device = plain_device(args.trainer)
    overrides = [*case.overrides, f"trainer={args.trainer}", *args.overrides]
    project, alone, plain = Clock(), Clock(), Clock()
    for rep in range(repetitions):
        job = compose_job(args.data_dir, workdir / f"{case.name}-{rep}", overrides)
        sides: list[tuple[Clock, Callable[[Job], Clock]]] = [
            (project, lambda job: project_epochs(job, epochs)),
            (alone, lambda job: lightning_alone_epochs(job, epochs)),
            (plain, lambda job: plain_epochs(job, epochs, device)),
        ]
        for clock, run_side in sides if rep % 2 == 0 else reversed(sides):  # take turns at going first
            laps = run_side(job)
            clock.wall += laps.wall
            clock.cpu += laps.cpu
            clock.step_s += laps.step_s
    project_s, alone_s, plain_s = (statistics.median(clock.wall) for clock in (project, alone, plain))
    project_step, alone_step, plain_step = (
        1e6 * statistics.median(c.step_s) for c in (project, alone, plain)
    )
    project_cpu_s, plain_cpu_s = statistics.median(project.cpu), statistics.median(plain.cpu)
    return {
        "project_s": round(project_s, 6),  # to the µs: a quick run's linear epoch is milliseconds
        "plain_s": round(plain_s, 6),
        "ratio": round(project_s / plain_s, 3),
        "target": FRAMEWORK_TARGET,
        "lightning_alone_s": round(alone_s, 6),
        "lightning_alone_ratio": round(alone_s / plain_s, 3),
        "project_over_lightning_alone": round(project_s / alone_s, 3),
        "project_us_per_step": round(project_step, 1),
        "lightning_alone_us_per_step": round(alone_step, 1),
        "plain_us_per_step": round(plain_step, 1),
        "step_over_lightning_alone": round(project_step / alone_step, 3),
        "cpu_ratio": round(project_cpu_s / plain_cpu_s, 3),
        "description": case.description,
        "epochs_measured": len(project.wall),
        "project_epochs_s": [round(t, 3) for t in project.wall],
        "lightning_alone_epochs_s": [round(t, 3) for t in alone.wall],
        "plain_epochs_s": [round(t, 3) for t in plain.wall],
    }


def profile_case(case: Case, args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Where the project's epochs go, by Lightning's SimpleProfiler (which times every hook and loop step;
    its actions nest), next to the plain loop's time for the same epochs."""
    _, epochs = plan.runs[case.name]
    overrides = [*case.overrides, f"trainer={args.trainer}", *args.overrides, "+trainer.profiler=simple"]
    job = compose_job(args.data_dir, workdir / f"{case.name}-profile", overrides)
    clock, trainer = project_run(job, epochs)
    plain = plain_epochs(job, epochs, plain_device(args.trainer))
    actions = {
        name: {
            "s_per_epoch": round(sum(durations) / epochs, 4),
            "calls_per_epoch": round(len(durations) / epochs, 1),
            "us_per_call": round(1e6 * sum(durations) / len(durations), 1),
        }
        for name, durations in trainer.profiler.recorded_durations.items()
    }
    return {
        "project_s": round(statistics.median(clock.wall), 4),
        "plain_s": round(statistics.median(plain.wall), 4),
        "actions": dict(sorted(actions.items(), key=lambda item: -item[1]["s_per_epoch"])),
    }


def print_profile(name: str, profile: dict[str, Any], console: Console, top: int = 30) -> None:
    seconds = f"project {profile['project_s']:.3f} s per epoch, plain loop {profile['plain_s']:.3f}"
    table = Table(title=f"{name}: Lightning's SimpleProfiler; {seconds}")
    for column in ("action (nested)", "s per epoch", "calls per epoch", "µs per call"):
        table.add_column(column, justify="left" if column.startswith("action") else "right")
    for action, stats in list(profile["actions"].items())[:top]:
        table.add_row(
            action,
            f"{stats['s_per_epoch']:.4f}",
            f"{stats['calls_per_epoch']:g}",
            f"{stats['us_per_call']:.0f}",
        )
    console.print(table)


class StartupProbe(L.Callback):
    """Added to a child ``train.py`` run: prints the wall-clock time of each start-up phase, and exits at
    the first training step (nothing after it is measured; the run dir is a temporary one)."""

    def __init__(self) -> None:
        self.mark("callbacks_built")  # the datamodule (data loaded) and the model exist by now

    @staticmethod
    def mark(phase: str) -> None:
        print(f"{STARTUP_MARK} {phase} {time.time()}", flush=True)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.mark("fit_setup")

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.mark("sanity_check_start")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.mark("train_start")

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int
    ) -> None:
        self.mark("first_step")
        os._exit(0)


def seconds_to_exit(command: list[str]) -> float:
    started = time.time()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.time() - started


def startup_phases(data_dir: Path, run_dir: Path) -> dict[str, float]:
    """Seconds from the start of a ``train.py`` process to each phase the probe marks."""
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    command = [
        sys.executable,
        "train.py",
        f"data.data_dir={data_dir}",
        f"hydra.run.dir={run_dir}",
        f"+callbacks.startup_probe._target_={Path(__file__).stem}.StartupProbe",
    ]
    started = time.time()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    # Searched for anywhere: Lightning's TQDM bar shares stdout and leaves no newline before a mark.
    marks = re.findall(rf"{STARTUP_MARK} (\w+) ([0-9.]+)", result.stdout)
    phases = {phase: float(at) - started for phase, at in marks}
    if "first_step" not in phases:
        raise RuntimeError(
            f"train.py stopped before its first step:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return phases


def measure_startup(data_dir: Path, plan: Plan, workdir: Path) -> dict[str, Any]:
    python = sys.executable
    imports, config, runs = [], [], []
    for run in range(plan.startup_runs):  # interleaved, like the cases
        imports.append(seconds_to_exit([python, "-c", "import torch, lightning, torchvision"]))
        config.append(seconds_to_exit([python, "train.py", "--cfg", "job", f"data.data_dir={data_dir}"]))
        runs.append(startup_phases(data_dir, workdir / f"startup-{run}"))
    phases = {phase: round(statistics.median(run[phase] for run in runs), 3) for phase in runs[0]}
    import_s, first_step_s = statistics.median(imports), phases["first_step"]
    return {
        "import_s": round(import_s, 3),
        "config_s": round(statistics.median(config), 3),
        "first_step_s": first_step_s,
        "beyond_imports_s": round(first_step_s - import_s, 3),
        "target_beyond_imports_s": STARTUP_TARGET_S,
        "target_config_s": CONFIG_TARGET_S,
        "phases_s": phases,
    }


def print_results(results: dict[str, Any], console: Console) -> None:
    if "speedrun" in results:
        print_speedrun(results["speedrun"], console)
    if not results["cases"]:
        print_machine(results["machine"], console)
        return
    table = Table(title="Seconds per epoch (median): the project's train.py, Lightning alone, a plain loop")
    seconds = ("project s", "Lightning alone s", "plain s")
    ratios = ("project / Lightning alone", "target", "met", "project / plain", "Lightning alone / plain")
    for column in ("case", "net, recipe", *seconds, *ratios):
        table.add_column(column, justify="left" if column in ("case", "net, recipe") else "right")
    for name, case in results["cases"].items():
        table.add_row(
            name,
            case["description"],
            f"{case['project_s']:.3f}",
            f"{case['lightning_alone_s']:.3f}",
            f"{case['plain_s']:.3f}",
            f"{case['project_over_lightning_alone']:.2f}",
            f"≤ {case['target']:.2f}",
            "yes" if case["project_over_lightning_alone"] <= case["target"] else "[red]no[/red]",
            f"{case['ratio']:.2f}",
            f"{case['lightning_alone_ratio']:.2f}",
        )
    console.print(table)
    steps = Table(title="Microseconds per training step (median): what each step costs beyond its arithmetic")
    for column in (
        "case",
        "project µs",
        "Lightning alone µs",
        "plain µs",
        "project / Lightning alone",
        "met",
    ):
        steps.add_column(column, justify="left" if column == "case" else "right")
    for name, case in results["cases"].items():
        steps.add_row(
            name,
            f"{case['project_us_per_step']:.0f}",
            f"{case['lightning_alone_us_per_step']:.0f}",
            f"{case['plain_us_per_step']:.0f}",
            f"{case['step_over_lightning_alone']:.2f}",
            "yes" if case["step_over_lightning_alone"] <= case["target"] else "[red]no[/red]",
        )
    console.print(steps)
    if "startup" in results:
        startup = results["startup"]
        start_table = Table(title="Start-up: median seconds from process start")
        start_table.add_column("to")
        start_table.add_column("s", justify="right")
        start_table.add_row("import torch, lightning, torchvision (alone)", f"{startup['import_s']:.2f}")
        config_met = "yes" if startup["config_s"] <= CONFIG_TARGET_S else "[red]no[/red]"
        start_table.add_row(
            f"composed config (train.py --cfg job; target ≤ {CONFIG_TARGET_S:.0f})",
            f"{startup['config_s']:.2f} {config_met}",
        )
        for phase, seconds in startup["phases_s"].items():
            start_table.add_row(f"train.py: {phase.replace('_', ' ')}", f"{seconds:.2f}")
        met = startup["beyond_imports_s"] <= STARTUP_TARGET_S
        start_table.add_row(
            f"first step beyond imports (target ≤ {STARTUP_TARGET_S:.0f})",
            f"{startup['beyond_imports_s']:.2f} {'yes' if met else '[red]no[/red]'}",
        )
        console.print(start_table)
    print_machine(results["machine"], console)


def print_machine(machine: dict[str, Any], console: Console) -> None:
    console.print(
        f"torch threads {machine['torch_threads']} of {machine['cpus']} CPUs, GPU {machine['cuda']}; "
        f"load average {machine['load_before']} before, {machine['load_after']} after"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--quick", action="store_true", help="one repetition of one epoch: checks that it runs"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--trainer", default="default", choices=["default", "cpu", "gpu"])
    parser.add_argument(
        "--cases", nargs="+", choices=[c.name for c in CASES], default=[c.name for c in CASES]
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurements")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: where each case's epoch goes, by Lightning's SimpleProfiler",
    )
    parser.add_argument(
        "--speedrun",
        action="store_true",
        help="instead: whole runs of experiment=speedrun, one per seed, next to a plain loop of its recipe",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="for --speedrun")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for both sides (default: torch's)")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="extra Hydra overrides for every case, e.g. trainer.enable_progress_bar=false",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    plan = QUICK if args.quick else FULL
    register_resolvers()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 120))  # the table stays whole in logs
    load_before = round(os.getloadavg()[0], 1)
    results: dict[str, Any] = {"cases": {}}
    with tempfile.TemporaryDirectory(prefix="mnistlab-speed-") as tmp, quiet_lightning():
        workdir = Path(tmp)
        if args.profile:
            profiles = {
                case.name: profile_case(case, args, plan, workdir)
                for case in CASES
                if case.name in args.cases
            }
            for name, profile in profiles.items():
                print_profile(name, profile, console)
            if args.json:
                write_json(args.json, {"profile": profiles})
            return {"profile": profiles}
        if args.speedrun:
            results["speedrun"] = measure_speedrun(args, workdir)
            results["speedrun"]["command"] = command_to_model(args, workdir)
        for case in CASES if not args.speedrun else ():
            if case.name in args.cases:
                results["cases"][case.name] = measure_case(case, args, plan, workdir)
        if not args.no_startup and not args.speedrun:
            results["startup"] = measure_startup(args.data_dir, plan, workdir)
            results["startup_s"] = results["startup"]["first_step_s"]
    results["machine"] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "lightning": L.__version__,
        # Other jobs on the machine slow both sides; a high load average means noisier numbers.
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 1),
    }
    results["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    print_results(results, console)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
