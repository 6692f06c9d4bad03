"""What a user sees from train.py and eval.py for input they must fix: one line `error: ...`, no traceback.

The commands fail within seconds of starting, and starting is mostly importing torch: they all start at once.
"""

import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT, SHRINK, Payload, assert_one_line_error, ctrl_c_reaches_it, write_mnist

ROOT_WRITES_ANYWHERE = os.geteuid() == 0
UNMAKEABLE = Path("/proc/mnistlab-no-such-process")


def start(script: str, *args: str, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / script), *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    root = tmp_path_factory.mktemp("entry_points")
    found = SimpleNamespace(
        marker=root / "payload_ran", in_the_way=root / "logs", read_only=root / "read_only"
    )
    found.payload = root / "run" / "checkpoints" / "last.ckpt"
    found.payload.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 0, "extra": Payload(found.marker)}, found.payload)
    found.in_the_way.write_text("a file where the log folder should be")
    found.read_only.mkdir(mode=0o555)

    commands = {
        "unknown_model": ("train.py", "model=transformer", f"hydra.run.dir={root / 'unknown'}"),
        "log_dir_blocked": ("train.py", f"paths.log_dir={found.in_the_way}"),
        # /proc takes no new folders: mkdir fails with ENOENT, neither a permission nor a space problem.
        "run_dir_unmakeable": ("train.py", f"hydra.run.dir={UNMAKEABLE}/run"),
        "eval_payload": ("eval.py", f"ckpt_path={found.payload}", f"hydra.run.dir={root / 'eval'}"),
        "predict_payload": (
            "predict.py",
            f"ckpt_path={found.payload}",
            f"inputs={root}",
            f"hydra.run.dir={root / 'predict'}",
        ),
        "export_payload": ("export.py", f"ckpt_path={found.payload}"),
        "serve_payload": ("serve.py", f"ckpt_path={found.payload}", "port=0"),
    }
    if not ROOT_WRITES_ANYWHERE:
        commands["log_dir_read_only"] = ("train.py", f"paths.log_dir={found.read_only}")
    processes = {name: start(*command, cwd=root) for name, command in commands.items()}
    try:
        found.results = {name: result_of(process) for name, process in processes.items()}
        yield found
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()


def test_an_unknown_model_lists_the_choices(commands):
    result = commands.results["unknown_model"]
    assert_one_line_error(result, "model=transformer is unknown: choose one of cnn, mlp, scratch")


def test_a_log_folder_that_cannot_be_created_fails_at_start_naming_it(commands):
    result, folder = commands.results["log_dir_blocked"], commands.in_the_way
    assert_one_line_error(result, f"cannot write {folder}/train", "Not a directory", "paths.log_dir=")


def test_a_run_dir_that_cannot_be_made_for_any_reason_fails_at_start_in_one_line(commands):
    result = commands.results["run_dir_unmakeable"]
    assert_one_line_error(result, f"cannot write {UNMAKEABLE}", "No such file or directory", "hydra.run.dir=")


@pytest.mark.skipif(ROOT_WRITES_ANYWHERE, reason="root writes into read-only folders")
def test_a_read_only_log_folder_fails_at_start_naming_it(commands):
    result, folder = commands.results["log_dir_read_only"], commands.read_only
    assert_one_line_error(result, f"cannot write {folder}/train", "Permission denied")


@pytest.mark.parametrize("command", ["eval", "predict", "export", "serve"])
def test_a_pickled_payload_is_refused_in_one_line_and_never_runs(commands, command):
    result = commands.results[f"{command}_payload"]
    assert_one_line_error(result, str(commands.payload), "refused", "pickled", "io.open")
    assert not commands.marker.exists()


SCRIPTS = ["train.py", "eval.py", "predict.py", "export.py", "serve.py"]
# Seconds of imports each. Optuna came in through Hydra's plugin scan (it imports every hydra_plugins module).
HEAVY = ("torch", "lightning", "optuna", "sqlalchemy", "mlflow")
FLAGS = {"help": ["--help"], "cfg": ["--cfg", "job"]}


def no_torch_probe(script: str, flags: list[str]) -> subprocess.Popen:
    """A fresh interpreter runs the entry point as `python <script> <flags>` would, then says what loaded."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{script!r}, *{flags!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:', sorted({{name.split('.')[0] for name in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    command = [sys.executable, "-c", probe]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def probes():
    """Every entry point with --help and with --cfg job, all started at once."""
    started = {(script, flag): no_torch_probe(script, FLAGS[flag]) for script in SCRIPTS for flag in FLAGS}
    return {key: result_of(process) for key, process in started.items()}


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flag", FLAGS)
def test_help_and_the_composed_config_need_no_torch_nor_optuna(probes, script, flag):
    """The training stack loads inside the task: asking what a command would do must not wait for it."""
    result = probes[script, flag]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded: []" in result.stdout, result.stdout[-2000:]
    assert ("seed" if script == "train.py" else "ckpt_path") in result.stdout  # it did print something


def train_with_the_bar_on(tmp_path: Path, stdout, stderr) -> tuple[subprocess.Popen, Path]:
    """train.py with its progress bar redrawn every step, as a user's terminal shows it."""
    data = write_mnist(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = [
        *SHRINK, "callbacks.progress_bar.refresh_rate=1", "model=mlp", "trainer.max_epochs=50",
        f"data.data_dir={data}", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        stdout=stdout,
        stderr=stderr,
        preexec_fn=ctrl_c_reaches_it,
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
        assert process.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch: its bar is on screen
    return process, run_dir


def error_lines_start_lines(text: str) -> None:
    """Each `error:` or `warning:` line starts a line of its own: never run on from a bar's last text."""
    found = [match.start() for match in re.finditer(r"(error|warning): ", text)]
    assert found, text[-2000:]
    for start in found:
        assert start == 0 or text[start - 1] == "\n", repr(text[max(0, start - 200) : start + 80])


def test_an_error_line_starts_a_line_of_its_own_in_a_captured_log(tmp_path):
    with (tmp_path / "log").open("w") as log:  # python train.py ... > log 2>&1
        process, _ = train_with_the_bar_on(tmp_path, log, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 1
    log = (tmp_path / "log").read_text()
    assert "it/s" in log  # the bar was there
    error_lines_start_lines(log)
    assert log.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM in epoch")


def test_an_error_line_starts_a_line_of_its_own_in_a_terminal(tmp_path):
    main, terminal = pty.openpty()  # stdout and stderr on one terminal, as a user runs it
    process, _ = train_with_the_bar_on(tmp_path, terminal, terminal)
    os.close(terminal)
    process.send_signal(signal.SIGINT)  # Ctrl-C
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal is closed: the run has ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    screen = seen.decode(errors="replace").replace("\r\n", "\n")
    assert process.wait(timeout=120) == 1, screen[-3000:]
    error_lines_start_lines(screen)
    assert "error: interrupted by Ctrl-C in epoch" in screen
