"""The bar redraws at most every refresh_seconds, and always at an epoch's end."""

import time

import pytest
from pydantic import ValidationError

from mnistlab.commands.train import train
from mnistlab.dashboards import ThrottledProgressBar


def redraws(text: str) -> int:
    return text.count("\r")  # tqdm starts each redraw of a line with a carriage return


def test_a_bar_redraws_once_its_seconds_have_passed_and_at_the_last_step():
    bar = ThrottledProgressBar(refresh_rate=1, refresh_seconds=0.05)
    assert bar._should_update(1, 10)  # the first step draws
    assert not bar._should_update(2, 10)  # too soon
    assert bar._should_update(10, 10)  # the last always draws
    time.sleep(0.06)
    assert bar._should_update(3, 10)


def test_refresh_rate_zero_still_hides_the_bar():
    assert not ThrottledProgressBar(refresh_rate=0, refresh_seconds=0.05)._should_update(10, 10)


@pytest.mark.parametrize("refresh_seconds", [0, -1.0])
def test_a_refresh_that_is_not_a_positive_number_of_seconds_is_refused(refresh_seconds):
    with pytest.raises(ValidationError, match="refresh_seconds"):
        ThrottledProgressBar(refresh_rate=1, refresh_seconds=refresh_seconds)


def test_a_run_redraws_far_less_often_than_every_step(compose_cfg, capsys, tmp_path):
    def text(refresh_seconds: float) -> str:
        seconds = f"callbacks.progress_bar.refresh_seconds={refresh_seconds}"
        bar = ["callbacks.progress_bar.refresh_rate=1", seconds]  # the tests' shrink hides the bar
        small = ["model=mlp", "model.hidden_sizes=[16]", "data.batch_size=8", "trainer.max_epochs=1"]
        train(compose_cfg(*small, *bar, output_dir=tmp_path / str(refresh_seconds)))
        out, err = capsys.readouterr()
        return out + err

    every_step, throttled = text(1e-9), text(1000.0)
    assert "it/s" in throttled  # the bar is there, and shows each epoch's end
    assert redraws(throttled) * 3 < redraws(every_step), (redraws(throttled), redraws(every_step))
