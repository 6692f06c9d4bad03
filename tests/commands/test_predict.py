"""predict.py on a user's own images: as accurate as eval.py on the same digits, bad files skipped, fatal
inputs stopped in one line."""

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, compose_config, run_script
from PIL import Image

from mnistlab.commands.evaluate import evaluate
from mnistlab.commands.export import export
from mnistlab.commands.predict import predict
from mnistlab.commands.train import train
from mnistlab.core.errors import MnistlabError
from mnistlab.core.results import RunResult
from mnistlab.core.run_dir import LOCK_FILE
from mnistlab.run.trained import CheckpointModel

SIZES = [(200, 200), (64, 90)]  # (width, height) of the pages the digits are drawn on


def idx_test_set(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = run_dir.parent / "data" / "MNIST" / "raw"
    images = np.fromfile(raw / "t10k-images-idx3-ubyte", np.uint8, offset=16).reshape(-1, 28, 28)
    return images, np.fromfile(raw / "t10k-labels-idx1-ubyte", np.uint8, offset=8)


def write_pages(images: np.ndarray, folder: Path) -> list[Path]:
    """Each digit dark on light, enlarged onto a page of one of SIZES, off the page's centre."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, image in enumerate(images):
        width, height = SIZES[number % len(SIZES)]
        side = min(width, height) * 3 // 4
        digit = Image.fromarray(255 - image).resize((side, side), Image.BILINEAR)
        page = Image.new("L", (width, height), 255)
        page.paste(digit, (width - side - 2, 1))
        paths.append(folder / f"{number:04d}.png")
        page.save(paths[-1])
    return paths


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def accuracy(rows: list[dict[str, str]], labels: np.ndarray, class_names: list[str]) -> float:
    return float(
        np.mean([row["class"] == class_names[label] for row, label in zip(rows, labels, strict=True)])
    )


def predict_cfg(run_dir: Path, *overrides: str, output: Path):
    return compose_config(
        *overrides,
        root=output.parent,
        data_dir=run_dir.parent / "data",
        config_name="predict",
        output_dir=output,
    )


def test_drawn_pages_are_predicted_as_accurately_as_eval_on_the_same_digits(stroke_run, tmp_path):
    images, labels = idx_test_set(stroke_run)
    checkpoint = stroke_run / "checkpoints" / "best.ckpt"
    evaluated = evaluate(
        compose_config(
            f"ckpt_path={checkpoint}",
            "logger=none",
            "callbacks=none",
            root=tmp_path,
            data_dir=stroke_run.parent / "data",
            config_name="eval",
            output_dir=tmp_path / "eval",
        )
    )
    pages = tmp_path / "pages"
    write_pages(images, pages)
    (pages / "zz_notes.txt").write_text("not an image")
    truncated = (pages / "0000.png").read_bytes()
    (pages / "zz_truncated.png").write_bytes(truncated[: len(truncated) // 2])

    result = run_script("predict.py", f"ckpt_path={checkpoint}", f"inputs={pages}", cwd=tmp_path)

    [csv_file] = tmp_path.glob("logs/predict/runs/*/predictions.csv")
    rows = read_csv(csv_file)
    assert len(rows) == len(images) + 2
    predicted, skipped = rows[: len(images)], rows[len(images) :]
    drawn = accuracy(predicted, labels, CheckpointModel(checkpoint).card.class_names)
    assert evaluated.test_acc > 0.9  # a model that has learnt the shapes, or the comparison means little
    assert abs(drawn - evaluated.test_acc) <= 0.01, (drawn, evaluated.test_acc)
    for row in predicted:
        assert row["problem"] == "" and row["class"] == row["top1"]
        probs = [float(row[f"top{rank}_probability"]) for rank in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-5
    assert "not an image" in skipped[0]["problem"] and "truncated" in skipped[1]["problem"]
    assert skipped[0]["class"] == ""
    for name in ("zz_notes.txt", "zz_truncated.png"):
        assert any(line.startswith("warning: ") and name in line for line in result.stderr.splitlines())
    assert "0000.png" in result.stdout and f"{len(images)} predicted, 2 skipped" in result.stdout


def test_an_idx_file_gives_exactly_the_checkpoint_s_own_predictions(stroke_run, tmp_path):
    images, labels = idx_test_set(stroke_run)
    raw = stroke_run.parent / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    rows = predict(
        predict_cfg(
            stroke_run,
            f"ckpt_path={stroke_run / 'checkpoints/best.ckpt'}",
            f"inputs={raw}",
            output=tmp_path / "p",
        )
    )
    trained = RunResult.read(stroke_run)
    class_names = CheckpointModel(stroke_run / "checkpoints" / "best.ckpt").card.class_names
    assert len(rows) == len(images) and rows[3]["input"] == "t10k-images-idx3-ubyte[3]"
    assert accuracy(rows, labels, class_names) == pytest.approx(trained.test_acc, abs=1e-9)


def test_the_onnx_export_predicts_the_same_through_onnxruntime(stroke_run, tmp_path):
    images, _ = idx_test_set(stroke_run)
    pages = tmp_path / "pages"
    write_pages(images[:40], pages)
    checkpoint = stroke_run / "checkpoints" / "best.ckpt"
    export(
        compose_config(
            f"ckpt_path={checkpoint}",
            "overwrite=true",
            root=tmp_path,
            data_dir=stroke_run.parent / "data",
            config_name="export",
        )
    )
    onnx = stroke_run / "export" / "model.onnx"
    by_checkpoint = predict(
        predict_cfg(stroke_run, f"ckpt_path={checkpoint}", f"inputs={pages}", output=tmp_path / "a")
    )
    by_onnx = predict(predict_cfg(stroke_run, f"ckpt_path={onnx}", f"inputs={pages}", output=tmp_path / "b"))
    assert [row["class"] for row in by_onnx] == [row["class"] for row in by_checkpoint]
    for a, b in zip(by_checkpoint, by_onnx, strict=True):
        assert float(a["probability"]) == pytest.approx(float(b["probability"]), abs=1e-4)


def test_fatal_inputs_stop_before_any_work_in_one_line(stroke_run, tmp_path):
    checkpoint = stroke_run / "checkpoints" / "best.ckpt"
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "wrong.npy", np.zeros((4, 20, 20), np.uint8))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    cases = {
        f"inputs={tmp_path / 'nowhere'}": "no such file or folder",
        f"inputs={tmp_path / 'empty'}": "holds no files",
        f"inputs={tmp_path / 'wrong.npy'}": "shape (4, 20, 20)",
    }
    for inputs, message in cases.items():
        with pytest.raises(MnistlabError, match=re.escape(message)):
            predict(predict_cfg(stroke_run, f"ckpt_path={checkpoint}", inputs, output=tmp_path / "out"))
    with pytest.raises(MnistlabError, match=r"was not written by mnistlab's train\.py"):
        predict(
            predict_cfg(stroke_run, f"ckpt_path={foreign}", f"inputs={tmp_path}", output=tmp_path / "out")
        )
    # Nothing written but the lock the command held its dir by.
    assert [path.name for path in (tmp_path / "out").iterdir()] == [LOCK_FILE]
    # As the entry point prints it (the other entry points' one-line errors: tests/run/test_cli.py).
    result = run_script(
        "predict.py", f"ckpt_path={checkpoint}", f"inputs={tmp_path / 'empty'}", cwd=tmp_path, check=False
    )
    assert_one_line_error(result, "holds no files")


def test_a_model_of_points_predicts_a_csv_of_points(compose_cfg, tmp_path):
    train(
        compose_cfg(
            "data=rings",
            "model=mlp",
            "data.train_size=2000",
            "data.test_size=200",
            "trainer.max_epochs=1",
            "logger=none",
        )
    )
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    points = tmp_path / "points.csv"
    points.write_text("x,y\n0.0,0.05\n0.95,0.9\n-0.6,0.1\n")
    rows = predict(
        compose_cfg(
            f"ckpt_path={checkpoint}", f"inputs={points}", config_name="predict", output_dir=tmp_path / "p"
        )
    )
    assert [row["input"] for row in rows] == ["points.csv[0]", "points.csv[1]", "points.csv[2]"]
    assert {row["class"] for row in rows} <= {"outer", "inner", "middle"}
    Image.new("L", (28, 28)).save(tmp_path / "digit.png")
    with pytest.raises(MnistlabError, match="takes points of 2 numbers, not images"):
        predict(
            compose_cfg(
                f"ckpt_path={checkpoint}",
                f"inputs={tmp_path / 'digit.png'}",
                config_name="predict",
                output_dir=tmp_path / "q",
            )
        )


def test_a_regression_checkpoint_is_refused_plainly(regression_run, tmp_path):
    run_dir, _ = regression_run
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    (tmp_path / "x.csv").write_text("0.5\n")
    cfg = compose_config(
        f"ckpt_path={checkpoint}",
        f"inputs={tmp_path / 'x.csv'}",
        root=tmp_path,
        data_dir=tmp_path,
        config_name="predict",
    )
    with pytest.raises(MnistlabError, match=r"its model is a regression, .*test it with eval\.py"):
        predict(cfg)
    with pytest.raises(MnistlabError, match="its model is a regression"):
        export(
            compose_config(f"ckpt_path={checkpoint}", root=tmp_path, data_dir=tmp_path, config_name="export")
        )
