"""benchmarks/pruning.py runs its three searches end to end on synthetic files and writes their numbers, read
back here from the searches' own studies. No target is asserted: the measurement is in docs/dashboards.md."""

import json
import subprocess
import sys

import optuna
import pytest
from conftest import ROOT, write_mnist

TINY = [
    "model.hidden_sizes=[16]",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
    "callbacks.progress_bar.refresh_rate=0",
    "trainer.enable_model_summary=false",
    "logger=none",
]


@pytest.mark.slow  # three searches of three trials: 30 s
def test_the_pruning_benchmark_reports_each_searchs_epochs_time_and_best_trial(tmp_path):
    data_dir = write_mnist(tmp_path / "data")
    out, record = tmp_path / "searches", tmp_path / "pruning.json"
    benchmark = [sys.executable, str(ROOT / "benchmarks/pruning.py"), "--data-dir", str(data_dir)]
    options = [
        "--trials",
        "3",
        "--pruner-setting",
        "n_startup_trials=1",
        "--out",
        str(out),
        "--json",
        str(record),
    ]
    command = [*benchmark, *options, *TINY]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    searches = json.loads(record.read_text())["searches"]
    assert [(s["pruner"], s["sampler_seed"]) for s in searches.values()] == [
        ("none", 1234), ("none", 1235), ("median", 1234)
    ]  # fmt: skip
    for name, found in searches.items():
        trials = optuna.load_study(
            study_name="mnist_mlp", storage=f"sqlite:///{out / name}/optuna.db"
        ).get_trials()
        assert found["epochs"] == sum(len(t.intermediate_values) for t in trials) <= 3 * 2
        assert sum(found["trials"].values()) == 3 and found["wall_s"] > 0
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert found["best_val_loss"] == pytest.approx(min(t.value for t in complete))
        assert 0 < found["best_test_acc"] <= 1
        assert name in result.stdout
    assert searches["unpruned"]["epochs"] == 3 * 2  # nothing stops a trial without a pruner
