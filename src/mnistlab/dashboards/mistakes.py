"""``test/mistakes``: the test images the model got most confidently wrong, beside their probabilities."""

import math
from typing import Any

import torch
from lightning import LightningModule, Trainer
from matplotlib.figure import Figure
from torch import Tensor

from mnistlab.dashboards.evaluation_figure import TestImagesFigure
from mnistlab.dashboards.tensorboard import draw_image, log_figure, short_labels


class MostConfidentMistakes:
    """The ``k`` most probable wrong predictions seen so far, kept batch by batch on the device."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.confidence = self.images = self.probs = self.labels = None

    def update(self, images: Tensor, probs: Tensor, labels: Tensor) -> None:
        confidence, preds = probs.max(dim=1)
        wrong = preds != labels
        candidates = [confidence[wrong], images[wrong], probs[wrong], labels[wrong]]
        if self.confidence is not None:
            kept = [self.confidence, self.images, self.probs, self.labels]
            candidates = [torch.cat(pair) for pair in zip(kept, candidates, strict=True)]
        order = candidates[0].argsort(descending=True)[: self.k]
        self.confidence, self.images, self.probs, self.labels = (tensor[order] for tensor in candidates)

    def __len__(self) -> int:
        return 0 if self.confidence is None else len(self.confidence)

    def gathered(
        self, pl_module: LightningModule, shape: tuple[int, ...], classes: int
    ) -> "MostConfidentMistakes":
        """The ``k`` most confident mistakes of all DDP processes: a collective, called on every process.

        Each process sends exactly ``k`` rows (all_gather needs one shape everywhere), its own mistakes, then
        blank rows, whose prediction (class 0 of all-zero probabilities) is right and so no mistake.
        """
        images = torch.zeros(self.k, *shape, device=pl_module.device)
        probs = torch.zeros(self.k, classes, device=pl_module.device)
        labels = torch.zeros(self.k, dtype=torch.long, device=pl_module.device)
        if self.confidence is not None:
            n = len(self.confidence)
            images[:n], probs[:n], labels[:n] = self.images, self.probs, self.labels
        merged = MostConfidentMistakes(self.k)
        merged.update(*(pl_module.all_gather(tensor).flatten(0, 1) for tensor in (images, probs, labels)))
        return merged


class ConfidentMistakesFigure(TestImagesFigure):
    name = "mistakes"
    mistakes: MostConfidentMistakes

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.mistakes = MostConfidentMistakes(self.num_images)

    def add(self, outputs: Any, batch: Any) -> None:
        inputs, labels = batch
        self.mistakes.update(inputs, outputs["probs"], labels)

    def draw(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.world_size > 1:  # a collective: every process takes part
            datamodule = trainer.datamodule
            shape, classes = tuple(datamodule.input_shape), len(datamodule.class_names)
            self.mistakes = self.mistakes.gathered(pl_module, shape, classes)
        if len(self.mistakes):
            figure = draw_mistakes(self.mistakes, short_labels(trainer.datamodule.class_names))
            log_figure(trainer, f"{stage}/mistakes", figure)


def draw_mistakes(mistakes: MostConfidentMistakes, names: list[str], per_row: int = 2) -> Figure:
    rows = math.ceil(len(mistakes) / per_row)
    height = 2 * rows + 0.8  # inches: 2 a row, and a band for the figure's title
    figure = Figure(figsize=(6 * per_row, height))
    # Fixed spacing: a layout engine would take longer than all the drawing.
    top = 1 - 0.8 / height
    grid = figure.add_gridspec(
        rows,
        2 * per_row,
        width_ratios=[1, 2] * per_row,
        left=0.02,
        right=0.99,
        bottom=0.06,
        top=top,
        wspace=0.25,
        hspace=0.6,
    )
    classes = list(range(len(names)))
    rotation = 90 if max(len(name) for name in names) > 2 else 0
    shown = zip(mistakes.images, mistakes.probs.cpu(), mistakes.labels.tolist(), strict=True)
    for i, (image, probs, label) in enumerate(shown):
        row, column = divmod(i, per_row)
        pred = int(probs.argmax())
        image_ax = figure.add_subplot(grid[row, 2 * column])
        draw_image(image_ax, image)
        image_ax.set_title(f"{names[pred]} ({names[label]})", color="red", fontsize=10)
        bars_ax = figure.add_subplot(grid[row, 2 * column + 1])
        colors = ["tab:red" if c == pred else "tab:green" if c == label else "tab:gray" for c in classes]
        bars_ax.bar(classes, probs.float().numpy(), color=colors)
        bars_ax.set_xticks(classes, names, fontsize=8, rotation=rotation)
        ticks = bars_ax.get_xticklabels()  # coloured too: a true class at p = 0.00 has no bar to see
        ticks[pred].set_color("tab:red")
        ticks[label].set_color("tab:green")
        bars_ax.set_ylim(0, 1)
        bars_ax.set_yticks([0, 0.5, 1])
        bars_ax.set_title(f"p(predicted) = {probs[pred]:.2f}, p(true) = {probs[label]:.2f}", fontsize=9)
    title = "most confident mistakes, predicted (true); red: predicted class, green: true class"
    figure.suptitle(title, y=1 - 0.25 / height)
    return figure
