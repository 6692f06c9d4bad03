"""hparams_search=mnist_optuna as a user runs it: trials pruned by the study's pruner, an answer that trains
the best trial again, a history figure, trials in parallel on a real PostgreSQL study (.ci/postgres/start.sh,
the `postgres` marker), killed workers and a killed sweeper, one-line errors for the database and pruner."""

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import CONF, ROOT, Run, assert_one_line_error, free_port, run_script
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hydra_plugins.mnistlab_optuna._study import DRAWN, INTERRUPTED, QUEUED
from mnistlab.core.results import RunResult
from mnistlab.core.trials import JOB_ATTR, JOB_SETTINGS
from mnistlab.sweeps.figure import best_so_far
from mnistlab.sweeps.pruners import HyperbandPruner

# Short trials of a small MLP at a constant learning rate; no TensorBoard (its figures take longer).
QUICK = [
    "model=mlp",
    "model.hidden_sizes=[16]",
    "scheduler=none",
    "trainer=cpu",
    "trainer.max_epochs=3",
    "+trainer.limit_train_batches=5",
    "callbacks.progress_bar.refresh_rate=0",
    "trainer.enable_model_summary=false",
    "data.eval_batch_size=100",
    "logger=none",
]
# Trials long enough (30 epochs) to be killed halfway, each job's heartbeat every second, failed 3 s after it
# stops; two joblib workers and two trials at a time.
LONG = [o for o in QUICK if not o.startswith(("trainer.max_epochs", "+trainer.limit_train_batches"))]
LONG += ["trainer.max_epochs=30", "data.batch_size=32"]
HEARTBEAT = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3"]
PARALLEL = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
STUDY = "mnist_mlp"
MEDIAN = ["hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1"]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=5", "hydra.launcher.array_parallelism=2"]
no_slurm = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM here: bash .ci/slurm/start.sh")


def read_summary(sweep_dir: Path) -> dict[str, dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return {row["job"]: row for row in csv.DictReader(file)}


def trials_of(storage: str, study: str = STUDY) -> list[optuna.trial.FrozenTrial]:
    store = optuna.storages.RDBStorage(storage)
    try:
        return optuna.load_study(study_name=study, storage=store).get_trials()
    finally:
        store.engine.dispose()  # no connection left open: the test's database is dropped after it


def tensorboard_image_steps(log_dir: Path) -> dict[str, list[int]]:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return {tag: [image.step for image in accumulator.Images(tag)] for tag in accumulator.Tags()["images"]}


def search_with_pruned_trials(
    data_dir: Path, sweep_dir: Path, n_trials: int, *overrides: str, pruner=MEDIAN, storage=None, study=STUDY
):
    """A pruned search: trial 0 learns; then, resumed to ``n_trials``, trials whose learning rate learns
    nothing, which fall behind trial 0 (the median pruner's: after their first epoch). Its resumed run, and
    its trials."""
    storage = storage or f"sqlite:///{sweep_dir}/optuna.db"
    search = ["-m", "hparams_search=mnist_optuna", *pruner, f"hydra.sweeper.storage={storage}",
              f"hydra.sweeper.study_name={study}", f"paths.data_dir={data_dir}", *QUICK, *overrides,
              f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    run_script("train.py", *search, "hydra.sweeper.n_trials=1", "optimizer.lr=0.01")
    resumed = run_script("train.py", *search, f"hydra.sweeper.n_trials={n_trials}", "optimizer.lr=1e-7")
    return resumed, trials_of(storage, study)


def assert_pruned_after_their_first_epoch(sweep_dir: Path, resumed, trials) -> None:
    """Trial 0 ran its 3 epochs; every other trial is PRUNED in the study and `pruned` in summary.csv and
    summary.md, stopped after epoch 0 (1 epoch run) with that epoch's val/loss, and not tested."""
    assert [t.state for t in trials] == [TrialState.COMPLETE] + [TrialState.PRUNED] * (len(trials) - 1)
    first = trials[0].intermediate_values  # val/loss after each epoch, reported by the job itself
    assert sorted(first) == [0, 1, 2] and trials[0].value == pytest.approx(min(first.values()))
    rows, markdown = read_summary(sweep_dir), (sweep_dir / "summary.md").read_text()
    for trial in trials[1:]:
        assert list(trial.intermediate_values) == [0] and trial.intermediate_values[0] > first[0]
        row, metrics = rows[str(trial.number)], RunResult.read(sweep_dir / str(trial.number))
        assert row["status"] == metrics.status == "pruned"
        assert row["epochs_run"] == "1" and row["test_acc"] == ""  # stopped after epoch 0, not tested
        assert float(row["last_val_loss"]) == pytest.approx(trial.intermediate_values[0])
        assert f"+optuna.trial_number={trial.number}" in row["overrides"]  # each trial in its own dir
        assert re.search(rf"^\| {trial.number} \| [^|]* \| pruned \| [^|]* \| [^|]* \| 1 \|", markdown, re.M)
    assert rows["0"]["status"] == "finished" and rows["0"]["epochs_run"] == "3"
    assert f"{len(trials)} jobs: {len(trials) - 1} pruned, 1 finished" in resumed.stdout


@pytest.mark.slow  # three runs of train.py: 25 s
def test_a_trial_that_falls_behind_is_pruned_and_the_answer_trains_the_best_trial_again(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "search"
    resumed, trials = search_with_pruned_trials(mnist_dir, sweep_dir, 3)
    assert_pruned_after_their_first_epoch(sweep_dir, resumed, trials)
    rows = read_summary(sweep_dir)

    answer = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert answer.trials == {"complete": 1, "pruned": 2, "fail": 0}
    assert answer.best_trial == 0 and answer.best_value == pytest.approx(trials[0].value)
    assert answer.best_test.test_acc == pytest.approx(float(rows["0"]["test_acc"]))
    command = shlex.split(answer.retrain)
    assert command[:2] == ["python", "train.py"] and "optimizer.lr=0.01" in command  # trial 0's, not 1e-7
    assert not [o for o in command if "optuna." in o or o == "-m"]
    assert f"Train it again from scratch: {answer.retrain}" in resumed.stdout
    again = tmp_path / "again"
    run_script("train.py", *command[2:], f"hydra.run.dir={again}")
    assert RunResult.read(again).best_val_loss == pytest.approx(answer.best_value, rel=1e-6)

    # The sweep's own TensorBoard run: the history after each of the search's two runs (1, then 3 trials).
    images = tensorboard_image_steps(sweep_dir / "tensorboard")
    assert images["sweep/optimization_history"] == [1, 3]
    assert (sweep_dir / "optimization_history.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.ddp
def test_a_ddp_trial_is_pruned_in_every_process_at_once(mnist_dir, tmp_path):
    sweep_dir = tmp_path / "search"
    _, trials = search_with_pruned_trials(mnist_dir, sweep_dir, 2, "trainer=ddp_cpu")
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    # Rank zero's decision reached the other process: both stopped after epoch 0, and the run ended.
    assert RunResult.read(sweep_dir / "1").epochs_run == 1 and list(trials[1].intermediate_values) == [0]


def test_the_history_line_is_the_best_complete_trial_so_far_whatever_the_pruned_and_failed_ones_say():
    trials = [
        {"number": 0, "state": "fail", "value": None},
        {"number": 1, "state": "complete", "value": 0.5},
        {"number": 2, "state": "pruned", "value": 0.1},  # a pruned trial's last val/loss is no result
        {"number": 3, "state": "complete", "value": 0.7},
        {"number": 4, "state": "complete", "value": 0.3},
    ]
    assert best_so_far(trials) == [(1, 0.5), (2, 0.5), (3, 0.5), (4, 0.3)]


@pytest.mark.parametrize(
    ("option", "pruner"),
    [("none", optuna.pruners.NopPruner), ("median", optuna.pruners.MedianPruner),
     ("hyperband", HyperbandPruner)],
)  # fmt: skip
def test_each_pruner_option_builds_its_optuna_pruner(option, pruner):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["hparams_search=mnist_optuna", f"hydra/sweeper/pruner={option}"], True)
    GlobalHydra.instance().clear()
    assert type(instantiate(cfg.hydra.sweeper.pruner)) is pruner


BRACKETS = """
import types, optuna
from mnistlab.sweeps.pruners import HyperbandPruner
for pruner in (HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3, bootstrap_count=0),
               optuna.pruners.HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)):
    study = optuna.create_study(study_name="mnist_mlp", pruner=pruner)
    pruner._try_initialization(study)  # as its first prune() does: 4 brackets for 27 epochs
    print([pruner._get_bracket_id(study, types.SimpleNamespace(number=n)) for n in range(60)])
"""


def brackets_in_a_process(hash_seed: str) -> list[list[int]]:
    """Our HyperbandPruner's bracket of trials 0-59, and Optuna's, in a new process with that hash seed."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    command = [sys.executable, "-c", BRACKETS]
    probe = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    return [json.loads(line) for line in probe.stdout.splitlines()]


def test_a_trials_hyperband_bracket_is_the_same_in_every_process_that_asks():
    """Each job of a search builds the study's pruner anew, in a process of its own (a joblib worker, a SLURM
    job, a resumed sweeper), and Python salts its str hashes per process (PYTHONHASHSEED)."""
    ours, optunas = zip(*(brackets_in_a_process(hash_seed) for hash_seed in ("1", "2")), strict=True)
    assert ours[0] == ours[1] and set(ours[0]) == {0, 1, 2, 3}  # the same in both; every bracket used
    assert optunas[0] != optunas[1]  # Optuna 2.10's own: the reason for ours (optuna issue #3083)


@pytest.mark.slow  # two runs of train.py, three trials of 3 epochs: 25 s
def test_a_hyperband_search_judges_each_trial_in_its_bracket_at_its_rungs(mnist_dir, tmp_path):
    # Study "hyperband", 3 epochs: 2 brackets. crc32 puts trials 0 and 2 in bracket 0, judged after epoch 1
    # (rung 0) against each other; trial 1 in bracket 1, whose rung 0 (after epoch 3) a trial never reaches.
    sweep_dir = tmp_path / "search"
    hyperband = ["hydra/sweeper/pruner=hyperband"]
    resumed, trials = search_with_pruned_trials(mnist_dir, sweep_dir, 3, pruner=hyperband, study="hyperband")
    assert "Study hyperband in sqlite:///" in resumed.stdout and "pruner HyperbandPruner" in resumed.stdout
    settings = optuna.load_study(study_name="hyperband", storage=f"sqlite:///{sweep_dir}/optuna.db")
    pruner = settings.user_attrs[JOB_SETTINGS]["pruner"]  # what every job builds its pruner from
    assert pruner == {"_target_": "mnistlab.sweeps.pruners.HyperbandPruner", "min_resource": 1,
                      "max_resource": 3, "reduction_factor": 3, "bootstrap_count": 0}  # fmt: skip
    assert isinstance(instantiate(pruner), optuna.pruners.HyperbandPruner)

    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert [sorted(t.intermediate_values) for t in trials] == [[0, 1, 2], [0, 1, 2], [0, 1]]
    # Rung 0's val/loss, recorded by each job's pruner: trial 0's too (max_resource known from the start).
    rung_0 = [t.system_attrs.get("completed_rung_0") for t in trials]
    assert rung_0 == [trials[0].intermediate_values[1], None, trials[2].intermediate_values[1]]
    assert rung_0[2] > rung_0[0]  # trial 2 learns nothing: behind trial 0, the other one of its bracket
    rows = read_summary(sweep_dir)
    assert [rows[str(n)]["status"] for n in range(3)] == ["finished", "finished", "pruned"]
    assert [rows[str(n)]["epochs_run"] for n in range(3)] == ["3", "3", "2"]
    assert float(rows["2"]["last_val_loss"]) == pytest.approx(trials[2].intermediate_values[1])
    assert "3 jobs: 2 finished, 1 pruned" in resumed.stdout
    answer = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert answer.trials == {"complete": 2, "pruned": 1, "fail": 0} and answer.best_trial == 0


def stopped_while_drawing(data_dir: Path, sweep_dir: Path, stop_signal: str):
    """A 3-trial search whose sweeper gets ``stop_signal`` while it draws trial 1's parameters (trial 0 has
    completed), and the same search rerun (with its own sampler): each run, and the trials after each."""
    storage = f"sqlite:///{sweep_dir}/optuna.db"
    search = ["-m", "hparams_search=mnist_optuna", "hydra.sweeper.n_trials=3", f"paths.data_dir={data_dir}",
              *QUICK, "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    stopping = ["hydra.sweeper.sampler._target_=stop_while_drawing.StopWhileDrawing",
                "+hydra.sweeper.sampler.stop_at_trial=1",
                f"+hydra.sweeper.sampler.stop_signal={stop_signal}"]  # fmt: skip
    here = str(Path(__file__).parent)  # stop_while_drawing.py, for the sweeper to import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    stopped = Run(sweep_dir.parent, "stopped", *search, *stopping, env=env).result()
    left = trials_of(storage)
    resumed = run_script("train.py", *search)
    return stopped, left, resumed, trials_of(storage)


def tried(trial: optuna.trial.FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True)


@pytest.mark.slow  # two runs of train.py: 20 s
def test_ctrl_c_while_a_trial_is_drawn_stops_the_search_once_it_is_and_the_resumed_search_runs_it(
    mnist_dir, tmp_path
):
    sweep_dir = tmp_path / "search"
    stopped, left, resumed, trials = stopped_while_drawing(mnist_dir, sweep_dir, "SIGINT")
    assert stopped.returncode == 1
    assert stopped.stderr.strip().splitlines()[-1] == "error: interrupted by Ctrl-C"
    assert [t.state for t in left] == [TrialState.COMPLETE, TrialState.RUNNING]
    # Ctrl-C came after trial 1's first parameter: the search stopped once all were drawn, before its job.
    assert sorted(left[1].params) == sorted(left[0].params) and left[1].system_attrs[DRAWN] is True
    assert not (sweep_dir / "1").exists()

    assert "Resuming study mnist_mlp: 1 trials finished, next is trial 2" in resumed.stdout
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, *[TrialState.COMPLETE] * 2]
    assert trials[1].user_attrs[INTERRUPTED] is True
    assert tried(trials[2]) == tried(left[1])  # run as it was drawn
    # A resumed seeded sampler draws on: its seed's first draws again would be trial 0's parameters.
    assert tried(trials[3]) != tried(trials[0])
    assert sorted(read_summary(sweep_dir)) == ["0", "2", "3"]


@pytest.mark.slow  # two runs of train.py: 20 s
def test_a_sweeper_killed_while_it_draws_a_trial_leaves_it_to_be_drawn_afresh_not_half_drawn(
    mnist_dir, tmp_path
):
    sweep_dir = tmp_path / "search"
    stopped, left, resumed, trials = stopped_while_drawing(mnist_dir, sweep_dir, "SIGKILL")
    assert stopped.returncode == -signal.SIGKILL
    # What a crash there leaves: trial 1 running, one of its parameters drawn, no job.
    assert [t.state for t in left] == [TrialState.COMPLETE, TrialState.RUNNING] and len(left[1].params) == 1
    assert DRAWN not in left[1].system_attrs

    assert "trial 1 was stopped while its parameters were drawn: drawn afresh" in resumed.stdout
    assert "Resuming study mnist_mlp: 1 trials finished, next is trial 2" in resumed.stdout
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, *[TrialState.COMPLETE] * 2]
    assert trials[1].user_attrs[INTERRUPTED] is True  # not counted: 3 trials completed
    assert QUEUED not in trials[2].system_attrs  # the sampler's draw, not the half of one queued again
    assert len({tried(t) for t in (trials[0], trials[2], trials[3])}) == 3  # no parameters tried twice
    assert sorted(read_summary(sweep_dir)) == ["0", "2", "3"]


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory):
    """Searches that must stop at once, started together: their start-up is most of their time."""
    root = tmp_path_factory.mktemp("mistakes")
    unreachable = f"postgresql://mnistlab:secret@127.0.0.1:{free_port()}/mnistlab"
    searches = {
        "unknown_pruner": ["hydra/sweeper/pruner=nope"],
        "not_a_pruner": ["hydra.sweeper.pruner=nope"],
        "unreachable": [f"hydra.sweeper.storage={unreachable}"],
        "no_storage": ["hydra.sweeper.storage=null"],
    }
    runs = {
        name: Run(root, name, "-m", "hparams_search=mnist_optuna", *QUICK, *args,
                  f"hydra.sweep.dir={root / name / 'sweep'}")
        for name, args in searches.items()
    }  # fmt: skip
    return {name: run.result() for name, run in runs.items()}


def test_an_unknown_pruner_is_one_line_naming_the_pruners_there_are(mistakes):
    assert_one_line_error(
        mistakes["unknown_pruner"], "hydra/sweeper/pruner=nope is unknown", "hyperband, median, none"
    )
    assert_one_line_error(
        mistakes["not_a_pruner"], "hydra.sweeper.pruner=nope is not a pruner", "hyperband, median, none"
    )


def test_a_database_that_does_not_answer_is_one_line_without_its_password(mistakes):
    result = mistakes["unreachable"]
    database = "the study's database postgresql+psycopg://mnistlab:***@127.0.0.1"
    assert_one_line_error(result, f"cannot reach {database}", "Connection refused", "hydra.sweeper.storage")
    assert "secret" not in result.stdout + result.stderr
    assert_one_line_error(mistakes["no_storage"], "hydra.sweeper.storage=null", "postgresql://")


@pytest.mark.postgres
def test_a_wrong_password_is_one_line(postgres_url, tmp_path):
    wrong = postgres_url.replace("mnistlab:mnistlab@", "mnistlab:wrong@")
    search = ["-m", "hparams_search=mnist_optuna", *QUICK, f"hydra.sweeper.storage={wrong}"]
    result = run_script("train.py", *search, f"hydra.sweep.dir={tmp_path / 'sweep'}", check=False)
    assert_one_line_error(
        result, "refused the login (password authentication failed for user", "hydra.sweeper.storage"
    )
    assert "wrong" not in result.stderr.splitlines()[-1]


def wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout: float = 240):
    """condition()'s first true value, polled; fails if ``process`` ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert process is None or process.poll() is None, f"the search ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)
    return found


def two_training(storage: str, search: subprocess.Popen, log: Path) -> list[optuna.trial.FrozenTrial]:
    """Once two trials run at the same time, each in its job and past its first epoch's val/loss: them."""
    # Read only once the sweeper has made the database: Optuna 2.x would make it unusable (see _study.py).
    wait_for(lambda: f"Study {STUDY} in" in log.read_text(), "the study", search)

    def training() -> list[optuna.trial.FrozenTrial]:
        trials = trials_of(storage)
        running = [t for t in trials if t.state == TrialState.RUNNING and JOB_ATTR in t.user_attrs]
        return [t for t in running if t.intermediate_values]

    return wait_for(lambda: len(found := training()) == 2 and found, "two trials training at once", search)


def assert_each_trial_had_its_own_dir(sweep_dir: Path, trials: list[optuna.trial.FrozenTrial]) -> None:
    started = [trial for trial in trials if JOB_ATTR in trial.user_attrs]
    assert [trial.user_attrs[JOB_ATTR]["dir"] for trial in started] == [
        str(sweep_dir / str(t.number)) for t in started
    ]
    for job_dir in (path for path in sweep_dir.iterdir() if path.name.isdigit()):
        overrides = OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")
        assert [o for o in overrides if o.startswith("+optuna.trial_number=")] == [
            f"+optuna.trial_number={job_dir.name}"
        ]


@pytest.mark.postgres
def test_two_joblib_workers_share_a_postgresql_study_and_a_killed_worker_leaves_its_trials_failed(
    mnist_dir, postgres_url, tmp_path
):
    sweep_dir = tmp_path / "sweep"
    search = Run(tmp_path, "search", "-m", "hparams_search=mnist_optuna", *PARALLEL, *HEARTBEAT, *LONG,
                 "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={postgres_url}",
                 f"paths.data_dir={mnist_dir}", f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    both = two_training(
        postgres_url, search.process, search.stdout
    )  # in two processes, against the one study
    assert len({trial.user_attrs[JOB_ATTR]["pid"] for trial in both}) == 2
    os.kill(both[0].user_attrs[JOB_ATTR]["pid"], signal.SIGKILL)
    result = search.succeeded()

    trials = trials_of(postgres_url)
    states = {trial.number: trial.state for trial in trials}
    # joblib's pool ends its other worker too: both trials of the batch are failed once their heartbeats stop.
    assert states == {0: TrialState.FAIL, 1: TrialState.FAIL, 2: TrialState.COMPLETE, 3: TrialState.COMPLETE}
    assert "no heartbeat from its job" in result.stdout
    assert_each_trial_had_its_own_dir(sweep_dir, trials)
    answer = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert answer.trials == {"complete": 2, "pruned": 0, "fail": 2}


@pytest.mark.postgres
def test_a_killed_search_resumes_its_postgresql_study_without_reusing_a_trial_number_or_a_job_dir(
    mnist_dir, postgres_url, tmp_path
):
    sweep_dir = tmp_path / "sweep"
    search = ["-m", "hparams_search=mnist_optuna", *PARALLEL, *HEARTBEAT, *LONG, "hydra.sweeper.n_trials=3",
              f"hydra.sweeper.storage={postgres_url}", f"paths.data_dir={mnist_dir}",
              f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    sweeper = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *search],
        cwd=tmp_path,
        stdout=(tmp_path / "killed.out").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own: the sweeper with its workers
    )
    try:
        stopped = two_training(postgres_url, sweeper, tmp_path / "killed.out")
    finally:  # the sweeper and its workers, mid-trial: as a crash of their machine would
        os.killpg(sweeper.pid, signal.SIGKILL)
        sweeper.wait()

    resumed = run_script("train.py", *search)
    assert "Resuming study mnist_mlp: 0 trials finished, next is trial 2" in resumed.stdout
    trials = trials_of(postgres_url)
    assert [t.state for t in trials] == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] * 3
    assert [t.user_attrs.get("interrupted") for t in trials[:2]] == [True, True]  # not counted: n_trials is 3
    assert [t.params for t in trials[2:4]] == [
        t.params for t in stopped
    ]  # the stopped trials, run again first
    assert_each_trial_had_its_own_dir(sweep_dir, trials)
    assert sorted(read_summary(sweep_dir)) == ["2", "3", "4"]  # the killed jobs left no job.json


@pytest.mark.slurm  # SLURM's group (.ci/run starts the cluster, and the PostgreSQL server before it)
@no_slurm
def test_slurm_array_jobs_run_trials_at_once_on_a_postgresql_study_and_a_killed_job_fails_its_trial(
    mnist_dir, postgres_url, tmp_path
):
    sweep_dir = tmp_path / "sweep"
    search = Run(tmp_path, "search", "-m", "hparams_search=mnist_optuna", *SLURM, "hydra.sweeper.n_jobs=2",
                 *HEARTBEAT, *LONG, "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={postgres_url}",
                 f"paths.data_dir={mnist_dir}", f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    killed, other = two_training(postgres_url, search.process, search.stdout)  # two SLURM jobs at once
    os.kill(killed.user_attrs[JOB_ATTR]["pid"], signal.SIGKILL)
    result = search.succeeded()

    states = {trial.number: trial.state for trial in trials_of(postgres_url)}
    assert states == {
        killed.number: TrialState.FAIL,
        other.number: TrialState.COMPLETE,
        2: TrialState.COMPLETE,
    }
    assert f"trial {killed.number}: no heartbeat from its job" in result.stdout
    assert_each_trial_had_its_own_dir(sweep_dir, trials_of(postgres_url))


def assert_ran_at_once(*job_dirs: Path) -> None:
    """The jobs ran at the same time: each started (Hydra saved its config) before any ended (its metrics.json
    written)."""
    starts = [(job_dir / ".hydra" / "config.yaml").stat().st_mtime for job_dir in job_dirs]
    ends = [(job_dir / "metrics.json").stat().st_mtime for job_dir in job_dirs]
    assert max(starts) < min(ends)


@pytest.mark.postgres
def test_trials_pruned_in_two_joblib_workers_at_once_are_pruned_in_the_shared_study(
    mnist_dir, postgres_url, tmp_path
):
    sweep_dir = tmp_path / "search"
    resumed, trials = search_with_pruned_trials(mnist_dir, sweep_dir, 3, *PARALLEL, storage=postgres_url)
    assert_pruned_after_their_first_epoch(sweep_dir, resumed, trials)
    # Trials 1 and 2: one batch, in two workers at the same time, each judged against trial 0 alone.
    assert len({trial.user_attrs[JOB_ATTR]["pid"] for trial in trials[1:]}) == 2
    assert_ran_at_once(sweep_dir / "1", sweep_dir / "2")
    assert_each_trial_had_its_own_dir(sweep_dir, trials)


@pytest.mark.slurm  # SLURM's group (.ci/run starts the cluster, and the PostgreSQL server before it)
@no_slurm
def test_trials_pruned_in_slurm_array_jobs_are_pruned_in_the_shared_study(mnist_dir, postgres_url, tmp_path):
    sweep_dir = tmp_path / "search"
    slurm = [*SLURM, "hydra.sweeper.n_jobs=2"]
    resumed, trials = search_with_pruned_trials(mnist_dir, sweep_dir, 3, *slurm, storage=postgres_url)
    assert_pruned_after_their_first_epoch(sweep_dir, resumed, trials)
    # Each trial a SLURM job of its own: trials 1 and 2 an array of two, running at once.
    assert len({trial.user_attrs[JOB_ATTR]["pid"] for trial in trials}) == 3
    assert "Submitit 'slurm' sweep output dir" in resumed.stdout + resumed.stderr
    assert_ran_at_once(sweep_dir / "1", sweep_dir / "2")
    assert_each_trial_had_its_own_dir(sweep_dir, trials)
