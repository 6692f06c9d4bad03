"""Shared fixtures: small synthetic MNIST-format files and the real conf/, composed and shrunk."""

import contextlib
import itertools
import math
import os
import shutil

# Tests start several train.py processes at once on a 2-core machine: one thread each beats oversubscription.
# Set before torch is imported, so this process and every subprocess inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# No test reaches W&B's server (conf/'s and the README's logger=wandb runs): offline, unless a test says so.
os.environ["WANDB_MODE"] = "offline"
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image, ImageDraw

from mnistlab.core.resolvers import register_resolvers

if TYPE_CHECKING:  # the training stack loads only in the tests that train
    from mnistlab.core.results import RunResult

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
N_TRAIN, N_TEST = 600, 200

register_resolvers()


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file, the format of MNIST's raw files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def synthetic_digits(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable images: class k lights a 4-pixel-wide vertical band at column 2 + 2.4 k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size)
    images = rng.integers(0, 60, (size, 28, 28))
    for k in range(10):
        column = 2 + int(2.4 * k)
        images[labels == k, 4:24, column : column + 4] += 180
    return images.clip(0, 255).astype(np.uint8), labels.astype(np.uint8)


# Class k of stroke_digits: the strokes of one shape, as (x0, y0, x1, y1) in a unit box (y down).
SHAPES: list[list[tuple[float, float, float, float]]] = [
    [
        (math.cos(a), math.sin(a), math.cos(b), math.sin(b))
        for a, b in itertools.pairwise([2 * math.pi * i / 16 for i in range(17)])
    ],  # 0: a ring
    [(0, -1, 0, 1)],  # 1: a vertical stroke
    [(-1, 0, 1, 0)],  # 2: a horizontal stroke
    [(-1, 1, 1, -1)],  # 3: a slash
    [(-1, -1, 1, 1)],  # 4: a backslash
    [(0, -1, 0, 1), (-1, 0, 1, 0)],  # 5: +
    [(-1, 1, 1, -1), (-1, -1, 1, 1)],  # 6: x
    [(-1, -1, 1, -1), (1, -1, 1, 1), (1, 1, -1, 1), (-1, 1, -1, -1)],  # 7: a square
    [(0, -1, 1, 1), (1, 1, -1, 1), (-1, 1, 0, -1)],  # 8: a triangle
    [(-1, -1, -1, 1), (-1, 1, 1, 1)],  # 9: an L
]


def stroke_digits(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapes drawn as MNIST's digits were made (light strokes, a box of about 20 pixels, the centre of mass
    at the centre), so that they keep their class through predict.py's preparation, which re-centres every
    image (synthetic_digits' classes are positions, which it would erase). Class 1 is a vertical stroke, as
    a drawn "1" is."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size)
    scale = 4  # drawn large, then shrunk: antialiased edges, as in MNIST
    images = []
    for label in labels:
        page = Image.new("L", (28 * scale, 28 * scale))
        draw = ImageDraw.Draw(page)
        half = rng.uniform(7, 10) * scale
        slant = rng.uniform(-0.15, 0.15)
        width = round(rng.uniform(1.8, 3.2) * scale)
        # The strokes' centre of mass (their midpoints weighted by length) goes to the field's centre.
        segments = np.array(SHAPES[label], dtype=float)
        lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
        mid_x, mid_y = (segments[:, :2] + segments[:, 2:]).T / 2 @ lengths / lengths.sum()
        cx = (14 + rng.uniform(-0.5, 0.5)) * scale - half * (mid_x + slant * mid_y)
        cy = (14 + rng.uniform(-0.5, 0.5)) * scale - half * mid_y
        for x0, y0, x1, y1 in segments:
            ends = [(cx + half * (x + slant * y), cy + half * y) for x, y in ((x0, y0), (x1, y1))]
            draw.line(ends, fill=255, width=width)
            for x, y in ends:  # round joints
                draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
        images.append(np.asarray(page.resize((28, 28), Image.BOX)))
    noise = rng.integers(0, 25, (size, 28, 28))
    return np.maximum(np.stack(images), noise).astype(np.uint8), labels.astype(np.uint8)


def write_mnist(
    root: Path,
    dataset: str = "MNIST",
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    digits: Callable[[int, int], tuple[np.ndarray, np.ndarray]] = synthetic_digits,
) -> Path:
    raw = root / dataset / "raw"
    for prefix, size, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = digits(size, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    """A data_dir holding a small synthetic MNIST (600 train, 200 test images)."""
    return write_mnist(tmp_path / "data")


# Small and quick, but the real config: two short epochs on the synthetic files, on the CPU.
SHRINK = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar.refresh_rate=0",  # the bar is a callback (conf/callbacks/default.yaml)
    "trainer.enable_model_summary=false",
    "data.batch_size=32",
    "data.eval_batch_size=100",
]


# What the other configs' runs shrink to: a CPU and no bar (export and serve have no trainer).
SHRINK_OTHERS = ["trainer=cpu", "trainer.enable_progress_bar=false"]
HAS_TRAINER = ("train", "eval", "predict")


def compose_config(
    *overrides: str,
    root: Path,
    data_dir: Path,
    config_name: str = "train",
    output_dir: Path | None = None,
    shrink: bool = True,
) -> DictConfig:
    """The real conf/ composed (and shrunk), as a run's task config (no hydra node), writing under root."""
    GlobalHydra.instance().clear()
    small = SHRINK if config_name == "train" else SHRINK_OTHERS if config_name in HAS_TRAINER else []
    if any(override.startswith("callbacks=") for override in overrides):
        # The bar that SHRINK quiets is one of callbacks/default's; another callbacks list has none.
        small = [override for override in small if not override.startswith("callbacks.")]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name,
            overrides=[*(small if shrink else []), f"paths.data_dir={data_dir}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(root)
        cfg.paths.output_dir = str(output_dir or root / "run")
        del cfg.hydra  # a real run's task config has no hydra node either
    return cfg


@pytest.fixture
def compose_cfg(tmp_path: Path, mnist_dir: Path) -> Callable[..., DictConfig]:
    """compose_cfg(*overrides, config_name="train"): the real conf/ composed, shrunk, writing in tmp_path."""

    def compose_with(
        *overrides: str, config_name: str = "train", output_dir: Path | None = None
    ) -> DictConfig:
        return compose_config(
            *overrides, root=tmp_path, data_dir=mnist_dir, config_name=config_name, output_dir=output_dir
        )

    yield compose_with
    GlobalHydra.instance().clear()


# stroke_digits for a model that must recognise shapes: enough images and epochs that a drawn vertical
# stroke is a "1" (measured: see tests/run/test_serve.py).
STROKE_TRAIN, STROKE_TEST = 2000, 300
STROKE_TRAINING = ["model=mlp", "trainer.max_epochs=4", "seed=1"]


@pytest.fixture(scope="session")
def stroke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run dir of a small MLP trained on stroke_digits (one per test session): recognises shapes."""
    from mnistlab.commands.train import train  # imported late: most tests need no Lightning

    root = tmp_path_factory.mktemp("strokes")
    data_dir = write_mnist(root / "data", n_train=STROKE_TRAIN, n_test=STROKE_TEST, digits=stroke_digits)
    train(compose_config(*STROKE_TRAINING, "logger=none", root=root, data_dir=data_dir))
    GlobalHydra.instance().clear()
    return root / "run"


# A small regression of x² (data=function): three epochs, the fit figure after the second.
REGRESSION_RUN = [
    "data=function",
    "data.train_size=400",
    "data.val_size=200",
    "data.test_size=200",
    "model=mlp",
    "model.hidden_sizes=[16]",
    "trainer.max_epochs=3",
    "callbacks.regression_fit.every_n_epochs=2",
]


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, "RunResult"]:
    """A finished regression run, shared by the tests that read it: its run dir and result."""
    from mnistlab.commands.train import train

    root = tmp_path_factory.mktemp("regression")
    result = train(compose_config(*REGRESSION_RUN, root=root, data_dir=root / "no_data"))
    GlobalHydra.instance().clear()
    return root / "run", result


def loaded_datamodule(cfg: DictConfig):
    """The run's datamodule with its training data read, as train.py builds it."""
    from mnistlab.run.build import build_datamodule, load_data

    return load_data(build_datamodule(cfg))


def training_trainer(cfg: DictConfig):
    """The trainer train.py builds, with the config's callbacks and those of every training run."""
    from mnistlab.run.build import build_trainer, training_callbacks

    return build_trainer(cfg, training_callbacks(cfg))


def run_script(script: str, *args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run train.py or eval.py as a user would, in a subprocess."""
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """The entry point failed with one line `error: ...` that names each fragment, and no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in last_line, last_line


def ctrl_c_reaches_it() -> None:
    """A child's ``preexec_fn``: Ctrl-C (SIGINT) reaches it as from a terminal, even when the tests run in the
    background (``make test &``, nohup), where the shell makes every job ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Run:
    """A script (train.py by default) started in the background as a user starts it, in its own folder.

    Output goes to files, so that a full pipe never blocks it; Ctrl-C reaches it as from a terminal.
    """

    def __init__(
        self, folder: Path, name: str, *args: str, env: dict[str, str] | None = None, script: str = "train.py"
    ) -> None:
        self.name, self.args = name, args
        self.cwd = folder / f"{name}.cwd"  # where a run that ignored hydra.run.dir would write logs/
        self.cwd.mkdir()
        self.stdout, self.stderr = folder / f"{name}.stdout", folder / f"{name}.stderr"
        self.started = time.monotonic()
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / script), *args],
                cwd=self.cwd,
                stdout=out,
                stderr=err,
                env=env,
                preexec_fn=ctrl_c_reaches_it,
            )

    def result(self) -> subprocess.CompletedProcess:
        self.process.wait(timeout=600)
        self.seconds_at_most = time.monotonic() - self.started  # from before its start to after its end
        return subprocess.CompletedProcess(
            self.args, self.process.returncode, self.stdout.read_text(), self.stderr.read_text()
        )

    def succeeded(self) -> subprocess.CompletedProcess:
        result = self.result()
        assert result.returncode == 0, f"{self.name}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes: compared before and after, it shows what changed."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


class Payload:
    """Unpickling this calls open(path, "w"): the file appears if, and only if, the payload ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "24m") -> Iterator[Path]:
    """A real file system of ``size`` (a tmpfs) mounted at ``folder``; skips the test where mounting is not
    allowed (it needs root)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): it needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_disk(folder: Path, leave: int = 0) -> None:
    """Takes all the room left on ``folder``'s file system but ``leave`` bytes (a run writing there at the
    same time may take some first: what is left is then taken too)."""
    for number in itertools.count():
        free = shutil.disk_usage(folder).free - leave
        if free <= 0 or number > 100:
            return
        filler = folder / f"filler{number}"
        subprocess.run(["fallocate", "-l", str(free), str(filler)], capture_output=True)


@pytest.fixture(autouse=True)
def no_open_wandb_run():
    """A run in this process with logger=wandb leaves its W&B run open (a process's ends with it); the next
    test's logger would log into it."""
    yield
    if "wandb" in sys.modules:
        from mnistlab.dashboards.weights_and_biases import finish_wandb_run

        finish_wandb_run(failed=False)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, body: dict | None = None) -> Any:
    """GET ``url`` (POST ``body`` as JSON) and the JSON it answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


# Debian's chromium, driven by Playwright (the browser tests), never a browser Playwright would download.
# Without the background-networking flags it tries, and fails, to reach Google's hosts on this closed network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# The PostgreSQL server of .ci/postgres/start.sh (the `postgres` tests; .ci/run starts it); another with
# MNISTLAB_TEST_POSTGRES=postgresql://user:password@host:port/database (a user that may create databases).
POSTGRES = os.environ.get("MNISTLAB_TEST_POSTGRES", "postgresql://mnistlab:mnistlab@127.0.0.1:55432/mnistlab")


@pytest.fixture
def postgres_url() -> str:
    """The URL of a new, empty database on the test server, dropped after the test; a server that does not
    answer fails the test (never a skip: the tests that need one run only when asked for)."""
    import uuid

    import psycopg

    server, _, _ = POSTGRES.rpartition("/")
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"no PostgreSQL server at {POSTGRES} ({str(error).strip()}): start one with "
            "`bash .ci/postgres/start.sh`, or set MNISTLAB_TEST_POSTGRES",
            pytrace=False,
        )
    name = f"test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{server}/{name}"
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
