"""serve.py: the JSON API with real PNG bytes, a real uvicorn that writes nothing, and the page in a real
browser, where a drawn vertical stroke reads "1" (stroke_run's model learnt that shape, tests/conftest.py)."""

import io
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, ctrl_c_reaches_it, stroke_digits
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from mnistlab.commands.serve import bind, create_app
from mnistlab.core.errors import MnistlabError
from mnistlab.run.trained import CheckpointModel


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stroke_png(start: tuple[int, int], end: tuple[int, int]) -> bytes:
    page = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(page).line([start, end], fill="black", width=18)
    return png(page)


def files_in(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def client(stroke_run) -> TestClient:
    app = create_app(
        CheckpointModel(stroke_run / "checkpoints" / "best.ckpt"), "auto", max_upload_bytes=50_000
    )
    return TestClient(app)


def post(client: TestClient, body: bytes, content_type: str = "image/png"):
    return client.post("/predict", content=body, headers={"Content-Type": content_type})


def test_drawn_strokes_are_read_as_their_shapes(client):
    vertical = post(client, stroke_png((140, 40), (150, 240)))
    assert vertical.status_code == 200
    answer = vertical.json()
    assert answer["class"] == "1 - one" and answer["index"] == 1
    assert len(answer["probabilities"]) == len(answer["class_names"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-5)
    assert post(client, stroke_png((40, 140), (240, 130))).json()["class"] == "2 - two"
    # A test digit, light on dark and at MNIST's own size.
    images, labels = stroke_digits(1, seed=5)
    assert post(client, png(Image.fromarray(images[0]))).json()["index"] == labels[0]


def test_the_page_and_the_model_card(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<canvas" in page.text and 'id="clear"' in page.text and "pointerdown" in page.text
    assert client.get("/model").json()["input_shape"] == [1, 28, 28]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"", "image/png", 400, "empty"),
        (png(Image.new("L", (280, 280), 255)), "image/png", 422, "blank"),
        (b"GIF89a but not really an image", "image/gif", 400, "not an image"),
        (stroke_png((140, 40), (150, 240))[:400], "image/png", 400, "truncated"),
        (b"\x00" * 50_001, "image/png", 413, "over 50,000 bytes"),
        (stroke_png((140, 40), (150, 240)), "text/plain", 415, "Content-Type image/png"),
        (stroke_png((140, 40), (150, 240)), "multipart/form-data; boundary=x", 415, "not an image"),
    ],
    ids=["empty", "blank", "not-an-image", "truncated", "oversize", "text", "multipart"],
)
def test_bad_requests_get_a_4xx_json_message_and_the_service_goes_on(
    client, body, content_type, status, message
):
    response = post(client, body, content_type)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert post(client, stroke_png((140, 40), (150, 240))).status_code == 200


def test_a_port_in_use_is_one_line_naming_it():
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(
            MnistlabError, match=f"cannot listen on 127.0.0.1:{port} .*choose another with port="
        ):
            bind("127.0.0.1", port)
    finally:
        taken.close()


@pytest.fixture(scope="module")
def served(stroke_run, tmp_path_factory):
    """serve.py as a user starts it, on a free port of 127.0.0.1, in an empty folder; stopped with Ctrl-C."""
    cwd = tmp_path_factory.mktemp("serve_cwd")
    before = files_in(stroke_run)
    command = [
        sys.executable,
        str(ROOT / "serve.py"),
        f"ckpt_path={stroke_run / 'checkpoints/best.ckpt'}",
        "port=0",
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    first = process.stdout.readline()  # "serving ... at http://127.0.0.1:PORT/ (Ctrl-C stops)": listening
    assert "http://127.0.0.1:" in first, first + process.stdout.read()
    url = first.split(" at ")[1].split()[0]
    yield url, process
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    assert process.returncode == 0
    assert list(cwd.iterdir()) == []  # nothing written: no logs/, .hydra, serve.log
    assert files_in(stroke_run) == before


def test_a_real_uvicorn_answers_over_http(served):
    url, _ = served
    request = urllib.request.Request(
        url + "predict", data=stroke_png((140, 40), (150, 240)), headers={"Content-Type": "image/png"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["class"] == "1 - one"
    bad = urllib.request.Request(url + "predict", data=b"text", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=30)
    assert error.value.code == 415
    with urllib.request.urlopen(url, timeout=30) as page:
        assert b"<canvas" in page.read()


def drag(page, box: dict, start: tuple[float, float], end: tuple[float, float], steps: int = 25) -> None:
    """A mouse stroke from ``start`` to ``end``, given as fractions of the canvas."""
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps)
    page.mouse.up()


@pytest.mark.browser
def test_a_vertical_stroke_drawn_in_chromium_reads_one(served, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (.ci/run does)"
        )
    url, _ = served
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 420})
            page.goto(url)
            top = page.locator("#top-class")
            page.locator("#bars .value").first.wait_for(state="attached")  # the bars came from /model
            box = page.locator("#pad").bounding_box()

            drag(page, box, (0.5, 0.15), (0.52, 0.85))
            playwright.expect(top).to_have_text("1 - one", timeout=20_000)
            bars = page.locator("#bars .value").all_inner_texts()
            assert len(bars) == 10 and bars[1] == max(bars, key=lambda text: float(text.rstrip("%")))
            page.screenshot(path=str(tmp_path / "serve.png"))
            assert (tmp_path / "serve.png").stat().st_size > 0

            page.click("#clear")
            playwright.expect(top).to_have_text("")
            drag(page, box, (0.15, 0.5), (0.85, 0.48))  # and a horizontal stroke is not a "1"
            playwright.expect(top).to_have_text("2 - two", timeout=20_000)
        finally:
            browser.close()
