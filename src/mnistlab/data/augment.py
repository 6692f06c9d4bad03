"""Random affine distortions of a whole batch at once: one grid_sample call, no per-image Python."""

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from mnistlab.core.checks import Fraction, checked


def random_affine(
    images: Tensor,
    max_rotation: float = 0.0,
    max_shift: float = 0.0,
    max_scale: float = 0.0,
    horizontal_flip: bool = False,
    background: float = 0.0,
) -> Tensor:
    """Rotate (degrees), shift (fraction of the image) and scale each image by its own random amount, and
    with ``horizontal_flip`` mirror half of them left to right (at random).

    Areas moved in from outside the frame take the value ``background`` (that of a blank pixel).
    """
    n, device = images.shape[0], images.device

    def uniform(*shape: int) -> Tensor:  # in [-1, 1)
        return torch.rand(*shape, device=device) * 2 - 1

    angle = uniform(n) * math.radians(max_rotation)
    zoom = 1 + uniform(n) * max_scale
    shift = uniform(n, 2) * 2 * max_shift  # affine_grid spans [-1, 1]: the whole image is 2 units wide
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    # A mirror is the same matrix with its x column negated: still one grid_sample for the whole batch.
    mirror = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0) if horizontal_flip else 1.0
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * mirror, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # grid_sample pads with zeros: shifting the background to zero first pads with the background.
    return F.grid_sample(images - background, grid, align_corners=False).add_(background)


class RandomAffine:
    """``random_affine`` with fixed limits, for a datamodule to apply to each training batch."""

    @checked
    def __init__(
        self,
        *,
        max_rotation: Annotated[float, Field(ge=0, le=180)],
        max_shift: Fraction,
        max_scale: Fraction,
        horizontal_flip: bool,
    ) -> None:
        self.limits = {
            "max_rotation": max_rotation,
            "max_shift": max_shift,
            "max_scale": max_scale,
            "horizontal_flip": horizontal_flip,
        }

    def __call__(self, images: Tensor, background: float = 0.0) -> Tensor:
        return random_affine(images, **self.limits, background=background)
