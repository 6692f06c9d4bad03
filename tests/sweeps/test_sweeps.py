"""Multirun sweeps as a user runs them: a failing job does not end the sweep; each sweep ends in a summary."""

import csv
import json
import math
import signal
import statistics
import time
from pathlib import Path

import optuna
import pytest
from conftest import Run, run_script
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnistlab.core.files import write_json
from mnistlab.core.results import RunResult
from mnistlab.sweeps.groups import group_jobs, labels
from mnistlab.sweeps.jobs import objective
from mnistlab.sweeps.summary import SweepSummary

# Tiny jobs: one short epoch of a small MLP with real checkpoints; no TensorBoard, whose figures take longer.
TINY = [
    "model=mlp",
    "model.hidden_sizes=[16]",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "callbacks.progress_bar.refresh_rate=0",
    "trainer.enable_model_summary=false",
    "data.eval_batch_size=100",
    "logger=none",
]
BAD_DROPOUT = "model.dropout=1.5"  # what the one-line error names


def read_summary(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))


def test_a_failing_job_is_a_row_and_the_other_jobs_finish_sorted_by_val_loss(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_script(
        "train.py",
        "-m",
        f"paths.data_dir={mnist_dir}",
        *TINY,
        "model.dropout=1.5,0.0,0.3",
        f"hydra.sweep.dir={sweep_dir}",
    )
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["finished", "finished", "failed"]
    assert BAD_DROPOUT in rows[2]["overrides"]
    assert rows[2]["error"].startswith(BAD_DROPOUT) and "\n" not in rows[2]["error"]
    losses = [float(row["best_val_loss"]) for row in rows[:2]]
    assert losses == sorted(losses)
    for row in rows[:2]:
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert float(row["best_val_loss"]) == pytest.approx(metrics["best_val_loss"])
        assert float(row["test_acc"]) == pytest.approx(metrics["test_acc"])
        assert int(row["best_epoch"]) == metrics["best_epoch"] == 0
    markdown = (sweep_dir / "summary.md").read_text()
    assert "| `model.dropout=1.5` | failed |" in markdown and rows[2]["error"] in markdown
    assert "Best of 3 jobs" in result.stdout and "3 jobs: 2 finished, 1 failed" in result.stdout
    assert f"error: {rows[2]['error']}" in (Path(rows[2]["run_dir"]) / "train.log").read_text()


def read_groups(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary_groups.csv").open() as file:
        return list(csv.DictReader(file))


def test_jobs_differing_only_in_seed_are_one_group_with_mean_and_spread_best_first(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "groups"
    result = run_script(
        "train.py",
        "-m",
        f"paths.data_dir={mnist_dir}",
        *TINY,
        "model.dropout=0.0,0.5,1.5",  # 1.5 fails at once: a group of failed jobs, counted apart
        "seed=1,2",
        f"hydra.sweep.dir={sweep_dir}",
    )
    jobs = read_summary(sweep_dir)
    groups = read_groups(sweep_dir)
    assert [(group["group"], group["n"], group["failed"]) for group in groups][-1] == (BAD_DROPOUT, "0", "2")
    assert sorted(group["group"] for group in groups[:2]) == ["model.dropout=0.0", "model.dropout=0.5"]
    for group in groups[:2]:
        members = [job for job in jobs if group["group"] in job["overrides"].split()]
        assert sorted(job["job"] for job in members) == sorted(group["jobs"].split())
        assert group["n"] == "2" and group["failed"] == "0"
        for measure in ("best_val_loss", "test_acc", "seconds"):
            values = [float(job[measure]) for job in members]
            assert float(group[f"{measure}_mean"]) == pytest.approx(statistics.fmean(values))
            assert float(group[f"{measure}_std"]) == pytest.approx(statistics.stdev(values))
            assert float(group[f"{measure}_min"]) == pytest.approx(min(values))
            assert float(group[f"{measure}_max"]) == pytest.approx(max(values))
    assert float(groups[0]["best_val_loss_mean"]) <= float(groups[1]["best_val_loss_mean"])

    shown = [
        f"{100 * float(g['test_acc_mean']):.2f} ± {100 * float(g['test_acc_std']):.2f} % (n=2)"
        for g in groups[:2]
    ]
    table = result.stdout[result.stdout.index("3 groups, best first") :]
    assert table.index(shown[0]) < table.index(shown[1])  # best first
    markdown = (sweep_dir / "summary_groups.md").read_text()
    assert f"| `{groups[0]['group']}` | {shown[0]} |" in markdown
    assert f"| `{BAD_DROPOUT}` |  |  |  |  | 2 |" in markdown

    figure = (sweep_dir / "summary.png").read_bytes()
    assert figure.startswith(b"\x89PNG") and len(figure) > 10_000
    assert tensorboard_images(sweep_dir / "tensorboard") == {"sweep/test_acc_by_group": 1}


def test_folds_and_seeds_are_repeats_of_one_setting_whatever_their_order_or_prefix():
    def row(job: int, overrides: str, status: str = "finished") -> dict:
        return {"job": job, "overrides": overrides, "status": status, "best_val_loss": 0.1 * job}

    rows = [
        row(0, "data.folds=3 data.fold=0 model=mlp"),
        row(1, "data.folds=3 model=mlp data.fold=1 +seed=4"),
        row(2, "model=cnn data.folds=3 data.fold=0"),
        row(3, "model=mlp data.folds=3 data.fold=2", status="diverged"),
    ]
    groups = group_jobs(rows)
    assert [[job["job"] for job in group.jobs] for group in groups] == [[0, 1, 3], [2]]
    assert (len(groups[0].finished), groups[0].failed) == (2, 1)
    assert groups[0].spread("best_val_loss").mean == pytest.approx(0.05)
    assert labels(groups) == ["model=mlp", "model=cnn"]


def tensorboard_images(log_dir: Path) -> dict[str, int]:
    """Each image tag in a TensorBoard run, and how many images it holds."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return {tag: len(accumulator.Images(tag)) for tag in accumulator.Tags()["images"]}


def test_a_regression_sweep_summarises_its_test_mse_and_leaves_accuracy_blank(tmp_path):
    sweep_dir = tmp_path / "regression"
    sizes = ["data.train_size=300", "data.val_size=100", "data.test_size=100", "data.batch_size=100"]
    result = run_script(
        "train.py", "-m", "data=function", *sizes, *TINY, "seed=1,2", f"hydra.sweep.dir={sweep_dir}"
    )
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["finished", "finished"]
    assert float(rows[0]["best_val_loss"]) <= float(rows[1]["best_val_loss"])
    for row in rows:
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert float(row["test_loss"]) == pytest.approx(metrics["test_loss"])
        assert row["test_acc"] == "" and metrics["test_acc"] is None
    markdown = (sweep_dir / "summary.md").read_text()
    assert "| test loss | test acc |" in markdown
    # Two seeds of one setting: one group, shown by its test loss (mean ± std), as it has no accuracy.
    [group] = read_groups(sweep_dir)
    losses = [float(row["test_loss"]) for row in rows]
    assert float(group["test_loss_mean"]) == pytest.approx(statistics.fmean(losses))
    assert group["test_acc_mean"] == ""
    shown = f"{statistics.fmean(losses):.4g} ± {statistics.stdev(losses):.4g}"
    assert "test loss" in result.stdout and shown in result.stdout


def test_optuna_search_records_a_crashing_trial_as_failed_and_goes_on(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "optuna"
    # The real search (seeded TPE over lr, hidden sizes, dropout); the batch size is the trial's number,
    # so trial 0 crashes on batch size 0 and trials 1 and 2 train.
    run_script(
        "train.py",
        "-m",
        "hparams_search=mnist_optuna",
        "hydra.sweeper.n_trials=3",
        "data.batch_size=${hydra:job.num}",
        f"paths.data_dir={mnist_dir}",
        *(override for override in TINY if not override.startswith("model.hidden_sizes")),
        f"hydra.sweep.dir={sweep_dir}",
    )
    rows = read_summary(sweep_dir)
    assert [(row["job"], row["status"]) for row in rows][-1] == ("0", "failed")
    assert "data.batch_size=0" in rows[-1]["error"]
    assert [row["status"] for row in rows[:2]] == ["finished", "finished"]
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == pytest.approx(float(rows[0]["best_val_loss"]))
    for name, value in best.best_params.items():
        assert f"{name}={value}".replace(" ", "") in rows[0]["overrides"]
    # Every trial is its own setting: three groups of one, in the same order as the trials.
    groups = read_groups(sweep_dir)
    assert [(group["jobs"], group["n"]) for group in groups] == [
        (row["job"], str(int(row["status"] == "finished"))) for row in rows
    ]


def write_job(run_dir: Path, job: int, error: str) -> None:
    write_json(run_dir / "job.json", {"job": job, "overrides": [f"seed={job}"]})
    write_json(run_dir / "error.json", {"error": error, "seconds": 0.1})


def test_a_sweep_where_no_job_finished_is_summarised_then_reported_as_an_error(tmp_path):
    write_job(tmp_path / "0", 0, "first problem")
    write_job(tmp_path / "1", 1, "second problem")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit, match=r"^error: none of the 2 jobs of the sweep finished.*first problem"):
        SweepSummary().on_multirun_end(config)
    assert [row["error"] for row in read_summary(tmp_path)] == ["first problem", "second problem"]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (RunResult(status="finished", best_val_loss=0.25), 0.25),
        (RunResult(status="diverged", best_val_loss=0.25), None),
        (RunResult(status="finished", best_val_loss=math.inf), None),
        (RunResult(status="finished", best_val_loss=None), None),
    ],
)
def test_objective_is_the_best_val_loss_of_a_finished_run_only(result, expected):
    assert objective(result) == expected


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes_and_summarises_them(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "joblib"
    run_script(
        "train.py",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"paths.data_dir={mnist_dir}",
        *TINY,
        "seed=1,2",
        f"hydra.sweep.dir={sweep_dir}",
    )
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["finished", "finished"]
    seeds = [o for row in rows for o in row["overrides"].split() if o.startswith("seed=")]
    assert sorted(seeds) == ["seed=1", "seed=2"]


def finished_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="mnist_mlp", storage=storage)
    return [trial for trial in study.get_trials() if trial.state.is_finished()]


@pytest.mark.slow  # two processes and three trials: most of a minute on a loaded 2-core machine
def test_an_interrupted_optuna_search_resumes_its_study_without_rerunning_finished_trials(
    mnist_dir, tmp_path
):
    sweep_dir = tmp_path / "study"
    storage = f"sqlite:///{sweep_dir}/optuna.db"  # the default place, read here as the sweeper writes it
    # Three epochs a trial: long enough that Ctrl-C lands while the search is still going.
    tiny = [o for o in TINY if not o.startswith(("model.hidden_sizes", "trainer.max_epochs"))]
    search = [
        "-m",
        "hparams_search=mnist_optuna",
        "hydra.sweeper.n_trials=3",
        f"paths.data_dir={mnist_dir}",
        *tiny,
        "trainer.max_epochs=3",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    first = Run(tmp_path, "first", *search)
    deadline = time.monotonic() + 240
    # Trial 0's job ends (job.json) before the sweeper tells the study; only then is the database read.
    while not (sweep_dir / "0" / "job.json").exists() and first.process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    while not finished_trials(storage) and first.process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.process.send_signal(signal.SIGINT)  # Ctrl-C once trial 0 is in the study
    assert first.result().returncode != 0
    done = finished_trials(storage)  # trial 0, and on a slow machine perhaps trial 1 too
    assert 1 <= len(done) < 3, "the search ended before Ctrl-C reached it"
    kept = {trial.number: (sweep_dir / str(trial.number) / "metrics.json").read_bytes() for trial in done}
    left_running = [
        trial
        for trial in optuna.load_study(study_name="mnist_mlp", storage=storage).get_trials()
        if trial.state == optuna.trial.TrialState.RUNNING
    ]

    resumed = run_script("train.py", *search)
    assert f"Resuming study mnist_mlp: {len(done)} trials finished" in resumed.stdout + resumed.stderr
    trials = optuna.load_study(study_name="mnist_mlp", storage=storage).get_trials()
    completed = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    assert len(completed) == 3  # n_trials in all, not 3 more
    assert [trial.number for trial in completed[: len(done)]] == [trial.number for trial in done]
    for number, metrics in kept.items():  # the finished trials were not run again
        assert (sweep_dir / str(number) / "metrics.json").read_bytes() == metrics
    rows = read_summary(sweep_dir)
    assert sorted(int(row["job"]) for row in rows) == [trial.number for trial in completed]
    assert all(row["status"] == "finished" for row in rows)
    for stopped in left_running:  # the trial Ctrl-C stopped is failed, and its parameters tried next
        assert trials[stopped.number].state == optuna.trial.TrialState.FAIL
        assert completed[len(done)].params == stopped.params
