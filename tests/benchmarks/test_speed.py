"""benchmarks/speed.py --quick runs end to end on synthetic files and writes its JSON. No timing is asserted:
speed targets live in the benchmark's own table (docs/benchmarks.md), never in a test."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, write_mnist

CASES = ["linear", "mlp", "small", "cnn", "mlp_b20"]
STARTUP_PHASES = ["callbacks_built", "fit_setup", "train_start", "first_step"]


def run_quick_benchmark(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """The benchmark's JSON and printed output, run as documented on a small synthetic MNIST."""
    data_dir = write_mnist(tmp_path / "data")
    out = tmp_path / "results" / "speed.json"
    command = [sys.executable, str(ROOT / "benchmarks/speed.py"), "--quick", "--json", str(out)]
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


def check_cases(results: dict[str, Any], printed: str, names: list[str]) -> None:
    assert sorted(results["cases"]) == sorted(names)
    for name, case in results["cases"].items():
        assert case["project_s"] > 0 and case["plain_s"] > 0, name
        assert case["ratio"] == pytest.approx(case["project_s"] / case["plain_s"], rel=1e-2), name
        alone = case["lightning_alone_s"]
        assert case["lightning_alone_ratio"] == pytest.approx(alone / case["plain_s"], rel=1e-2), name
        over_alone = case["project_over_lightning_alone"]
        assert over_alone == pytest.approx(case["project_s"] / alone, rel=1e-2), name
        assert case["target"] > 1, name
        assert name in printed  # the printed table has a row per case
        steps = (case["project_us_per_step"], case["lightning_alone_us_per_step"], case["plain_us_per_step"])
        assert all(us > 0 for us in steps), name
        assert case["step_over_lightning_alone"] == pytest.approx(steps[0] / steps[1], rel=1e-2), name


@pytest.mark.slow  # a benchmark run, however small: CI runs the slow group
def test_quick_benchmark_of_two_cases_writes_their_seconds_and_ratios(tmp_path: Path):
    results, printed = run_quick_benchmark(tmp_path, "--no-startup", "--cases", "small", "mlp_b20")
    check_cases(results, printed, ["small", "mlp_b20"])
    assert "startup_s" not in results


@pytest.mark.slow
def test_quick_benchmark_writes_every_case_and_the_startup_times(tmp_path: Path):
    results, printed = run_quick_benchmark(tmp_path)
    check_cases(results, printed, CASES)
    startup = results["startup"]
    assert results["startup_s"] == startup["first_step_s"]
    assert startup["import_s"] > 0 and startup["config_s"] > 0
    # Each phase of the child train.py comes after the one before it; the last is its first step.
    phases = [startup["phases_s"][phase] for phase in STARTUP_PHASES]
    assert phases == sorted(phases) and phases[-1] == startup["first_step_s"]


@pytest.mark.slow  # whole runs of the speedrun and its plain loop: CI runs the slow group
def test_speedrun_mode_writes_each_seeds_fit_seconds_and_test_accuracy(tmp_path: Path):
    shrink = ["trainer.max_epochs=2", "data.batch_size=100", "callbacks.progress_bar.refresh_rate=0"]
    results, printed = run_quick_benchmark(tmp_path, "--speedrun", *shrink, "--seeds", "3", "4")
    speedrun = results["speedrun"]
    assert sorted(speedrun["seeds"]) == ["3", "4"]
    for seed, run in speedrun["seeds"].items():
        for side in ("project", "plain"):
            assert run[side]["fit_s"] > 0, (seed, side)
            assert 0 <= run[side]["test_acc"] <= 1, (seed, side)
    fits = {
        side: sorted(run[side]["fit_s"] for run in speedrun["seeds"].values())
        for side in ("project", "plain")
    }
    assert speedrun["project_fit_s"] == pytest.approx(sum(fits["project"]) / 2, abs=1e-3)  # median of two
    assert speedrun["ratio"] == pytest.approx(speedrun["project_fit_s"] / speedrun["plain_fit_s"], rel=1e-2)
    assert speedrun["min_project_test_acc"] == min(
        run["project"]["test_acc"] for run in speedrun["seeds"].values()
    )
    assert (speedrun["target_test_acc"], speedrun["target_ratio"], speedrun["target_fit_s"]) == (
        0.99,
        1.10,
        8,
    )
    assert results["cases"] == {} and "startup" not in results
    assert "experiment=speedrun" in printed and "median" in printed
    # A user's command, timed from its start to its end, parts that add up.
    command = speedrun["command"]
    parts = command["start_up_s"] + command["compile_s"] + command["fit_s"] + command["data_and_test_s"]
    assert command["command_s"] == pytest.approx(parts, abs=0.05) and command["fit_s"] > 0
    assert "From the command to the" in printed
