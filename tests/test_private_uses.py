"""The private parts of libraries that the project uses, one test each: a release that changes one fails here,
by name, before it fails somewhere deep in a run. pyproject.toml pins the ranges these were tested with."""

import dataclasses
from pathlib import Path

from hydra.core.utils import JobReturn
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.utils.tensorboard import SummaryWriter

from mnistlab.callbacks import ExponentialMovingAverage


def test_summary_writers_file_writer_takes_a_summary_into_the_runs_own_event_file(tmp_path):
    """dashboards/hparams.py writes the HPARAMS row straight into the run's event file, as Lightning does."""
    with SummaryWriter(str(tmp_path)) as writer:
        assert callable(writer._get_file_writer().add_summary)


def test_lightnings_weight_averaging_keeps_its_average_model_in_one_attribute():
    """callbacks/ema.py drops the average after fit and tells a resumed fit by it."""
    callback = ExponentialMovingAverage(decay=0.9)
    assert isinstance(callback, EMAWeightAveraging) and callback._average_model is None


def test_a_hydra_job_return_holds_the_jobs_exception_in_its_return_value_field():
    """sweeps/summary.py reads a failed job's exception without the public property, which prints and
    raises it."""
    assert "_return_value" in {field.name for field in dataclasses.fields(JobReturn)}


def test_lightning_calls_a_callbacks_hook_only_if_it_is_callable(tmp_path):
    """callbacks/dispatch.py sets the empty batch hooks to None; Lightning skips a hook that is not
    callable (its loop has `if callable(fn)`), which tests/callbacks/test_dispatch.py sees in a profile."""
    from lightning.pytorch.trainer import call

    source = Path(call.__file__).read_text()
    assert "if callable(fn):" in source


def test_optunas_database_models_and_migrations_are_where_the_sweeper_stamps_them():
    """hydra_plugins/mnistlab_optuna/_study.py makes and stamps a new study database for Optuna 2.x."""
    from optuna.storages._rdb import models

    assert (Path(models.__file__).parent / "alembic").is_dir()
    assert models.BaseModel.metadata.tables


def test_model_checkpoint_keeps_its_step_and_time_intervals_in_two_attributes():
    """callbacks/dispatch.py skips ModelCheckpoint's batch hook when neither interval was asked for."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    idle, every = ModelCheckpoint(), ModelCheckpoint(every_n_train_steps=5)
    assert (idle._every_n_train_steps, idle._train_time_interval) == (0, None)
    assert every._every_n_train_steps == 5


def test_hydras_optuna_sweeper_builds_a_trials_overrides_and_keeps_the_fixed_ones_as_its_user_attributes():
    """hydra_plugins/mnistlab_optuna/_search.py reuses OptunaSweeperImpl's search space and trial setup, and
    rebuilds the best trial's command from its parameters and user attributes."""
    import optuna
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
    from omegaconf import OmegaConf

    impl = OptunaSweeperImpl(
        None, "minimize", None, None, 1, 1, 1.0, None, None, OmegaConf.create({"x": "choice(1, 2)"})
    )
    impl._process_searchspace_config()
    space, fixed = create_params_from_overrides([*impl._parse_sweeper_params_config(), "model=mlp"])
    assert impl.search_space_distributions is None and impl._get_directions() == ["minimize"]
    trial = optuna.create_study().ask()
    [overrides] = impl._configure_trials([trial], space, fixed)
    assert overrides == (f"x={trial.params['x']}", "model=mlp")
    assert trial.study.trials[0].user_attrs == {"model": "mlp"}
    assert callable(impl._to_grid_sampler_choices) and callable(impl.setup)


def test_lightnings_wandb_logger_keeps_wandb_inits_arguments_in_one_dict(tmp_path):
    """dashboards/weights_and_biases.py sets the mode of a second wandb.init there when the first failed,
    and drops Lightning's anonymous=None, which W&B warns about."""
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(project="p", save_dir=str(tmp_path), id="abcd1234")
    assert logger._wandb_init["project"] == "p" and logger._wandb_init["id"] == "abcd1234"
    assert "anonymous" in logger._wandb_init and logger._experiment is None
