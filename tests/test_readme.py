"""Every command the README shows works: each is composed from the real conf/ as written and run, shrunk to a
tiny run on the synthetic files (a sweep runs its first job; `<run dir>` is a run made here)."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT, compose_config, write_mnist
from fastapi.testclient import TestClient
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.export import export
from mnistlab.commands.predict import predict
from mnistlab.commands.serve import create_app
from mnistlab.commands.train import train
from mnistlab.run.trained import load_trained_model

CONFIGS = {
    "train.py": "train",
    "eval.py": "eval",
    "predict.py": "predict",
    "export.py": "export",
    "serve.py": "serve",
}
TINY = {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1, "limit_test_batches": 1}


def readme_commands() -> list[str]:
    """The `python <entry point> ...` lines of the README's code blocks, without their comments."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith("python ")]
    return [re.sub(r"\s+#.*$", "", line).removeprefix("python ") for line in lines]


def first_job(overrides: list[str]) -> list[str]:
    """What a sweep's first job is given: each swept key's first value."""
    jobs = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            jobs.append(f"{override.get_key_element()}={next(iter(override.sweep_iterator()))}")
        else:
            jobs.append(override.input_line)
    return jobs


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder with the synthetic files, and a tiny finished run of the default config as `<run dir>`."""
    root = tmp_path_factory.mktemp("readme")
    data = write_mnist(root / "data")
    cfg = compose_config(root=root, data_dir=data, output_dir=root / "run")
    with open_dict(cfg):
        cfg.trainer.update(TINY)
    train(cfg)
    return root, data


def as_here(command: str, root: Path, data: Path) -> list[str]:
    """The command's arguments, with its placeholders replaced by the files made here."""
    return shlex.split(
        command.replace("<run dir>", str(root / "run"))
        .replace("../shared/data", str(data))
        .replace("my_digits/", str(data / "MNIST" / "raw" / "t10k-images-idx3-ubyte"))
    )


COMMANDS = readme_commands()


def test_the_readme_shows_every_entry_point():
    assert {shlex.split(command)[0] for command in COMMANDS} == set(CONFIGS)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_readme_command_composes_and_runs(place, tmp_path, command):
    root, data = place
    script, *arguments = as_here(command, root, data)
    flags = [a for a in arguments if a.startswith("-")]
    overrides = [a for a in arguments if "=" in a and not a.startswith("-")]
    if "-m" in flags:
        overrides = first_job(overrides)
    cfg = compose_config(
        *overrides, root=root, data_dir=data, config_name=CONFIGS[script], output_dir=tmp_path / "out"
    )
    if "--cfg" in flags:  # prints the config: composing it is the command
        return
    if script == "train.py":
        with open_dict(cfg):
            cfg.trainer.update(TINY)
            if cfg.get("ckpt_path"):  # a resume continues the run in its own dir, as the README's does
                cfg.paths.output_dir = str(root / "run")
        assert train(cfg).status == "finished"
    elif script == "eval.py":
        assert evaluate(cfg).test_acc is not None
    elif script == "predict.py":
        assert len(predict(cfg)) == 200
    elif script == "export.py":
        with open_dict(cfg):
            cfg.overwrite = True
        assert export(cfg)["check"]["passed"]
    else:
        trained = load_trained_model(Path(cfg.ckpt_path))
        client = TestClient(create_app(trained, cfg.invert, cfg.max_upload_bytes))
        assert client.get("/model").json()["class_names"][1] == "1 - one"
