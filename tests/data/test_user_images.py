"""A user's image becomes an MNIST-style input: light on dark, a 20-pixel box, centred by its mass."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnistlab.core.errors import MnistlabError
from mnistlab.data.user_images import (
    ImageProblem,
    check_invert,
    light_on_dark,
    normalise,
    open_image,
    prepare_image,
)

FIELD = (28, 28)


def drawing(size: tuple[int, int], line: list[tuple[int, int]], width: int, dark_on_light: bool = True):
    """A page of ``size`` (width, height) with one straight stroke on it."""
    paper, ink = ("white", "black") if dark_on_light else ("black", "white")
    page = Image.new("RGB", size, paper)
    ImageDraw.Draw(page).line(line, fill=ink, width=width)
    return page


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def ink_box(prepared: torch.Tensor) -> tuple[int, int]:
    rows, cols = prepared[0].gt(0.05).any(dim=1).nonzero(), prepared[0].gt(0.05).any(dim=0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def centre_of_mass(prepared: torch.Tensor) -> tuple[float, float]:
    image = prepared[0]
    ys, xs = torch.arange(image.shape[0]), torch.arange(image.shape[1])
    mass = image.sum()
    return float((image.sum(dim=1) * ys).sum() / mass), float((image.sum(dim=0) * xs).sum() / mass)


def test_an_off_centre_stroke_on_a_large_page_fills_the_box_and_sits_at_the_centre():
    # A dark vertical stroke near the top-left corner of a 200 x 90 page.
    page = drawing((200, 90), [(30, 10), (30, 50)], width=6)
    prepared = prepare_image(page, FIELD)
    assert prepared.shape == (1, 28, 28)
    assert float(prepared.min()) >= 0 and float(prepared.max()) <= 1
    height, width = ink_box(prepared)
    assert height == 20  # the longer side fills the box
    assert width <= 5  # and the aspect ratio is kept (6 x 41 pixels -> about 3 x 20)
    cy, cx = centre_of_mass(prepared)
    assert cy == pytest.approx(13.5, abs=0.6) and cx == pytest.approx(13.5, abs=0.6)
    assert float(prepared[0, 0].abs().max()) == 0  # the ground is dark


def test_auto_inverts_dark_on_light_and_leaves_light_on_dark():
    line = [(40, 30), (90, 120)]
    scan = prepare_image(drawing((150, 150), line, 10, dark_on_light=True), FIELD)
    chalk = prepare_image(drawing((150, 150), line, 10, dark_on_light=False), FIELD)
    assert torch.allclose(scan, chalk, atol=1e-6)
    # Forcing the wrong choice leaves dark strokes, which do not stand out above a light ground.
    with pytest.raises(ImageProblem, match="blank"):
        prepare_image(drawing((150, 150), line, 10, dark_on_light=True), FIELD, invert=False)
    assert torch.allclose(prepare_image(drawing((150, 150), line, 10), FIELD, invert=True), scan)


def test_the_field_comes_from_the_caller_not_from_mnist():
    prepared = prepare_image(drawing((100, 100), [(20, 50), (80, 50)], 8), (14, 21))
    assert prepared.shape == (1, 14, 21)
    assert ink_box(prepared)[1] == round(21 * 20 / 28)


def test_transparent_ground_counts_as_paper():
    # A canvas export: black strokes on fully transparent (0, 0, 0, 0) pixels.
    page = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    ImageDraw.Draw(page).line([(60, 10), (60, 110)], fill=(0, 0, 0, 255), width=8)
    prepared = prepare_image(open_image(png_bytes(page)), FIELD)
    assert ink_box(prepared)[0] == 20


def test_a_blank_page_is_refused():
    with pytest.raises(ImageProblem, match="blank"):
        prepare_image(Image.new("L", (64, 64), 255), FIELD)
    faint = np.full((64, 64), 250, dtype=np.uint8)
    faint[20:40, 30:33] = 240  # a smudge, not a digit
    with pytest.raises(ImageProblem, match="blank"):
        prepare_image(Image.fromarray(faint), FIELD)


def test_broken_files_are_named_problems_not_crashes(tmp_path):
    with pytest.raises(ImageProblem, match="not an image"):
        open_image(b"these bytes are text")
    whole = png_bytes(drawing((64, 64), [(30, 5), (30, 60)], 4))
    with pytest.raises(ImageProblem, match="truncated"):
        open_image(whole[: len(whole) // 2])
    with pytest.raises(ImageProblem, match="cannot be decoded"):
        open_image(tmp_path)  # a folder: unreadable as a file


def test_an_image_over_the_pixel_limit_is_said_to_be_too_large_and_nothing_else():
    huge = io.BytesIO()
    Image.new("1", (8000, 6000)).save(huge, format="PNG")  # 48 megapixels in a few kB
    with pytest.raises(ImageProblem) as error:
        open_image(huge.getvalue())
    assert str(error.value) == "too large (8000x6000 pixels, at most 40 megapixels)"


def test_arrays_are_inverted_one_by_one_by_their_border():
    images = torch.zeros(2, 28, 28)
    images[0, 5:20, 10:14] = 1  # light on dark: kept
    images[1] = 1
    images[1, 5:20, 10:14] = 0  # dark on light: inverted
    made = light_on_dark(images, "auto")
    assert torch.equal(made[0], images[0]) and torch.equal(made[1], images[0])
    assert torch.equal(light_on_dark(images, False), images)


def test_normalise_uses_the_given_mean_and_std_or_none():
    images = torch.rand(3, 1, 28, 28)
    assert torch.allclose(normalise(images, 0.5, 0.25), (images - 0.5) * 4)
    assert normalise(images, None, None) is images


@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_invert_takes_auto_true_or_false_only(value):
    with pytest.raises(MnistlabError, match="invert="):
        check_invert(value)
    for good in ("auto", True, False):
        check_invert(good)
