"""A user's image (a scan, a photo, a drawing) turned into what an MNIST-style model was trained on.

MNIST itself was made this way: the digit's bounding box scaled to fit 20x20 (keeping its aspect ratio),
then placed in the 28x28 field so that its centre of mass lies at the centre; light strokes on a dark
ground. The field's size comes from the model's input shape; 20/28 of it is the box.
"""

import io
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from mnistlab.core.errors import MnistlabError

BOX_FRACTION = 20 / 28
# Ink is what stands this far above the background, on a 0-1 scale after contrast stretching: paper
# texture and JPEG noise stay below it.
INK_LEVEL = 0.2
# A page whose brightest stroke is this close to the background holds no digit.
MIN_CONTRAST = 0.1
# Larger images are refused before they are decoded: a small compressed file can hold a huge image.
MAX_PIXELS = 40_000_000
INVERT_CHOICES = ("auto", True, False)


class ImageProblem(ValueError):
    """Why one image cannot be used, in a few words; the others go on."""


def check_invert(invert: object) -> None:
    if invert not in INVERT_CHOICES or (isinstance(invert, int) and not isinstance(invert, bool)):
        raise MnistlabError(
            f"invert={invert!r} is unknown: choose auto (by the border's brightness), true or false"
        )


def open_image(source: Path | bytes) -> Image.Image:
    """The image in a file or in bytes, decoded, upright (EXIF orientation applied)."""
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        if image.width * image.height > MAX_PIXELS:
            raise ImageProblem(
                f"too large ({image.width}x{image.height} pixels, at most {MAX_PIXELS / 1e6:.0f} megapixels)"
            )
        image.load()
    except ImageProblem:  # a ValueError too, but no broken file: let it say what it is
        raise
    except UnidentifiedImageError:
        raise ImageProblem("not an image (Pillow cannot identify it)") from None
    except Image.DecompressionBombError as error:
        raise ImageProblem(f"too large ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's kinds for truncated and broken files
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageProblem(f"cannot be decoded: truncated, corrupt or unreadable ({detail})") from None
    return ImageOps.exif_transpose(image)


def grey_pixels(image: Image.Image) -> Tensor:
    """H x W float brightness in [0, 1]; transparent parts count as white paper."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return TF.pil_to_tensor(image.convert("L"))[0].float().div_(255)


def border(images: Tensor) -> Tensor:
    """The outermost pixels of each image (..., H, W) -> (..., 2H + 2W)."""
    edges = (images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1])
    return torch.cat(edges, dim=-1)


def light_on_dark(images: Tensor, invert: bool | str) -> Tensor:
    """Strokes light, ground dark, as in MNIST; ``auto`` inverts each image whose border is bright."""
    if invert == "auto":
        bright = border(images).mean(dim=-1) > 0.5
        return torch.where(bright[..., None, None], 1 - images, images)
    return 1 - images if invert else images


def prepare_image(image: Image.Image, field: tuple[int, int], invert: bool | str = "auto") -> Tensor:
    """One image as a 1 x H x W tensor in [0, 1], made the way MNIST's digits were (see the module doc)."""
    pixels = light_on_dark(grey_pixels(image), invert)
    ink = (pixels - border(pixels).median()).clamp_(min=0)
    peak = ink.max()
    if peak < MIN_CONTRAST:
        raise ImageProblem("blank: nothing stands out from the background")
    ink = ink / peak
    ink = ink * (ink > INK_LEVEL)
    rows, cols = ink.any(dim=1).nonzero()[:, 0], ink.any(dim=0).nonzero()[:, 0]
    digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return centre_in_field(fit_in_box(digit, field), field)[None]


def fit_in_box(digit: Tensor, field: tuple[int, int]) -> Tensor:
    """The digit scaled, aspect ratio kept, so that its longer side fills the box (20/28 of the field)."""
    box_h, box_w = (max(1, round(side * BOX_FRACTION)) for side in field)
    scale = min(box_h / digit.shape[0], box_w / digit.shape[1])
    size = [max(1, round(digit.shape[0] * scale)), max(1, round(digit.shape[1] * scale))]
    return TF.resize(digit[None], size, antialias=True).clamp_(0, 1)[0]


def centre_in_field(digit: Tensor, field: tuple[int, int]) -> Tensor:
    """The digit placed in an empty H x W field with its centre of mass at the field's centre."""
    h, w = digit.shape
    mass = digit.sum().clamp_min(1e-12)
    centre_y = (digit.sum(dim=1) * torch.arange(h)).sum() / mass
    centre_x = (digit.sum(dim=0) * torch.arange(w)).sum() / mass
    # Clamped so that a lopsided digit still lies wholly inside the field.
    top = min(max(round((field[0] - 1) / 2 - float(centre_y)), 0), field[0] - h)
    left = min(max(round((field[1] - 1) / 2 - float(centre_x)), 0), field[1] - w)
    placed = digit.new_zeros(field)
    placed[top : top + h, left : left + w] = digit
    return placed


def normalise(images: Tensor, mean: float | None, std: float | None) -> Tensor:
    """Images in [0, 1] scaled as the datamodule scales its data (none when it has no mean and std)."""
    if mean is None or std is None:
        return images
    return (images - mean) / std
