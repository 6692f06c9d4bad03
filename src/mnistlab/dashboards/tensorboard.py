"""How the figure callbacks reach the loggers (TensorBoard, MLflow, W&B), and how they draw the data set's
images and class names."""

from collections.abc import Sequence

from lightning import Trainer
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger  # no mlflow, no wandb
from lightning.pytorch.trainer.states import TrainerFn
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from mnistlab.dashboards.logger import tensorboard_tag


def tensorboard_writer(trainer: Trainer) -> SummaryWriter | None:
    """The run's TensorBoard writer; None when the run logs elsewhere or nowhere (``logger=none``), and on
    every DDP process but rank zero, which alone writes the run's event files (the others' logger hands out
    a stand-in that does nothing)."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def takes_figures(trainer: Trainer) -> bool:
    """Whether any of the run's loggers shows figures: without one, the callbacks skip the work of drawing.
    The same answer on every DDP process, so that all of them take part in a figure's collectives."""
    shows = TensorBoardLogger | MLFlowLogger | WandbLogger
    return any(isinstance(logger, shows) for logger in trainer.loggers)


def log_figure(trainer: Trainer, tag: str, figure: Figure) -> None:
    """A figure to every logger that takes one: TensorBoard's IMAGES tab (a test figure under ``~test/``, as
    the test scalars), MLflow's artifacts (``figures/<tag>_step<global step>.png``), W&B's media (an image
    under ``tag``, at the global step); a CSV logger has no place for it. Rank zero alone writes."""
    if not trainer.is_global_zero:
        return
    step = trainer.global_step
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tensorboard_tag(tag), figure, global_step=step, close=False)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_figure(logger.run_id, figure, f"figures/{tag}_step{step}.png")
        elif isinstance(logger, WandbLogger):
            logger.log_image(tag, [figure], step=step)


def draws_this_validation(trainer: Trainer, every_n_epochs: int) -> bool:
    """Whether a figure of this validation is drawn: every ``every_n_epochs`` validation epochs during
    training (every epoch validates unless ``trainer.check_val_every_n_epoch`` says otherwise), and always in
    ``trainer.validate()`` (the one validation there is)."""
    if trainer.state.fn != TrainerFn.FITTING:
        return True
    validations = (trainer.current_epoch + 1) // (trainer.check_val_every_n_epoch or 1)
    return validations % every_n_epochs == 0


def short_labels(class_names: Sequence[str]) -> list[str]:
    """MNIST's classes are named '7 - seven': in a small title the digit alone says it."""
    return [str(name).split(" - ")[0] for name in class_names]


def has_images(trainer: Trainer) -> bool:
    """Whether the data's inputs are images (C, H, W) with one or three channels: rings' 2-D points get no
    image figures. The same answer on every DDP process."""
    shape = trainer.datamodule.input_shape
    return len(shape) == 3 and shape[0] in (1, 3)


def as_pixels(image: Tensor) -> Tensor:
    """A (C, H, W) input as RGB in [0, 1], stretched to its own range: the inputs arrive normalised."""
    image = image.detach().float().cpu()
    low, high = image.min(), image.max()
    image = (image - low) / (high - low).clamp_min(1e-12)
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def draw_image(ax: Axes, image: Tensor) -> None:
    ax.imshow(as_pixels(image).permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
