"""``test/predictions``: the first test images, each titled "predicted (true)", mistakes in red."""

import math
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule, Trainer
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from mnistlab.dashboards.evaluation_figure import TestImagesFigure
from mnistlab.dashboards.tensorboard import as_pixels, log_figure, short_labels


class PredictionsGrid(TestImagesFigure):
    name = "predictions"
    kept: list[tuple[Tensor, Tensor, Tensor]]

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.kept = []

    def add(self, outputs: Any, batch: Any) -> None:
        inputs, labels = batch
        missing = self.num_images - sum(len(kept[0]) for kept in self.kept)
        if missing > 0:
            self.kept.append(
                (inputs[:missing].cpu(), outputs["preds"][:missing].cpu(), labels[:missing].cpu())
            )

    def draw(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not self.kept:
            return
        images, preds, labels = (torch.cat(parts) for parts in zip(*self.kept, strict=True))
        figure = draw_predictions(images, preds, labels, short_labels(trainer.datamodule.class_names))
        log_figure(trainer, f"{stage}/predictions", figure)


def draw_predictions(images: Tensor, preds: Tensor, labels: Tensor, names: list[str]) -> Figure:
    """One mosaic in one axes, titles written over it: a subplot per image would cost most of the time."""
    columns = math.ceil(math.sqrt(len(images)))
    title_height = max(6, images.shape[-2] // 3)  # a band above each image for its title
    tiles = [F.pad(as_pixels(image), (1, 1, title_height, 1), value=1.0) for image in images]
    mosaic = make_grid(tiles, nrow=columns, padding=0, pad_value=1.0)
    tile_height, tile_width = tiles[0].shape[-2:]
    width = 1.5 * columns  # inches; the height follows the mosaic, plus a band for the figure's title
    height = width * mosaic.shape[-2] / mosaic.shape[-1]
    figure = Figure(figsize=(width, height + 0.5))
    ax = figure.add_axes((0.0, 0.0, 1.0, height / (height + 0.5)))
    ax.imshow(mosaic.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    for i, (pred, label) in enumerate(zip(preds.tolist(), labels.tolist(), strict=True)):
        row, column = divmod(i, columns)
        x, y = (column + 0.5) * tile_width, row * tile_height + title_height * 0.55
        color = "black" if pred == label else "red"
        ax.text(x, y, f"{names[pred]} ({names[label]})", color=color, ha="center", va="center", fontsize=9)
    wrong = int((preds != labels).sum())
    figure.suptitle(f"predicted (true): {wrong} of {len(images)} wrong, in red", y=1 - 0.25 / (height + 0.5))
    return figure
