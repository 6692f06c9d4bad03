"""TensorBoard as a user sees it: a real Chromium (Debian's, driven by Playwright) on the real server."""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, compose_config, free_port, get_json, write_mnist
from hydra.core.global_hydra import GlobalHydra

from mnistlab.commands.train import train

VIEWPORT = {"width": 1400, "height": 900}
# What a user opens TensorBoard for; docs/dashboards.md gives this link.
CURVES = "?tagFilter=%5E(train%7Cval)%2F(loss%7Cacc)%24#timeseries"
SCREENSHOTS = os.environ.get("MNISTLAB_SCREENSHOTS")  # a folder to keep the screenshots in (docs)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]


def serve(log_dir: Path, log: Path) -> Iterator[str]:
    port = free_port()
    tensorboard = Path(sys.executable).parent / "tensorboard"
    command = [str(tensorboard), "--logdir", str(log_dir), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                if "~test/acc" in get_json(f"{base}/data/plugin/scalars/tags").get("tensorboard", {}):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def tensorboard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser")
    write_mnist(root / "data")
    short = ["model=mlp", "model.hidden_sizes=[32]", "trainer.max_epochs=3", "+trainer.limit_train_batches=2"]
    train(compose_config(*short, root=root, data_dir=root / "data"))
    GlobalHydra.instance().clear()
    yield from serve(root / "run" / "tensorboard", root / "tensorboard.log")


@pytest.fixture
def page(tmp_path: Path):
    from playwright.sync_api import sync_playwright  # only where a browser test runs

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def open_time_series(page, url: str, name: str) -> None:
    page.goto(url)
    page.wait_for_selector("tb-truncated-path[title]", timeout=60_000)
    page.wait_for_timeout(3000)  # the charts draw after their cards appear
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def first_screen_cards(page) -> list[str]:
    """The titles of the cards that lie, at least in part, on the first screen."""
    titles = []
    for card in page.query_selector_all("tb-truncated-path[title]"):
        box = card.bounding_box()
        if box is not None and box["y"] < VIEWPORT["height"]:
            titles.append(card.get_attribute("title"))
    return titles


def test_time_series_opens_on_the_training_curves_with_the_test_results_last(page, tensorboard_url):
    open_time_series(page, f"{tensorboard_url}/#timeseries", "time_series")
    groups, cards = {}, {}  # each tag group in page order: whether it is open, its card count
    for toolbar in page.query_selector_all(".group-toolbar"):
        title = toolbar.query_selector(".group-title")
        if title is not None and title.get_attribute("title"):  # the Pinned section has no title
            name = title.get_attribute("title")
            icon = toolbar.query_selector(".expand-group-icon mat-icon").get_attribute("svgicon")
            groups[name] = icon == "expand_less_24px"  # the arrow that closes it
            cards[name] = toolbar.query_selector(".group-card-count").inner_text()
    # TensorBoard sorts the groups by name and opens the first two: ~test sorts after val.
    assert list(groups.items()) == [("train", True), ("val", True), ("~test", False)]
    first_screen = first_screen_cards(page)
    assert first_screen[:2] == ["train/acc", "train/loss"] and not [t for t in first_screen if "test" in t]
    page.query_selector('.group-title[title="val"]').scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # the cards draw as they come into view
    drawn = [card.get_attribute("title") for card in page.query_selector_all("tb-truncated-path[title]")]
    assert {"val/acc", "val/loss"} <= set(drawn) and not [title for title in drawn if "test" in title]
    # Per-class accuracy is a figure: the test group is three scalars and three figures, not fifteen cards.
    assert cards["~test"] == "6 cards"


def test_the_curves_link_opens_on_train_and_val_loss_and_accuracy(page, tensorboard_url):
    open_time_series(page, f"{tensorboard_url}/{CURVES}", "curves")
    assert sorted(first_screen_cards(page)) == ["train/acc", "train/loss", "val/acc", "val/loss"]


def test_chromium_is_debians_and_not_a_downloaded_build():
    assert shutil.which("chromium") == CHROMIUM
