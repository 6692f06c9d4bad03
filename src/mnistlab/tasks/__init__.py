"""What a model is trained for, chosen by its datamodule's ``task``: the loss, metrics and predictions."""

from typing import Any

from mnistlab.core.errors import MnistlabError
from mnistlab.tasks.base import Task
from mnistlab.tasks.classification import Classification
from mnistlab.tasks.regression import Regression

TASKS: dict[str, type[Task]] = {"classification": Classification, "regression": Regression}


def make_task(datamodule: Any, **options: Any) -> Task:
    """The task ``datamodule.task`` names, for its data, with the model's options for it."""
    if datamodule.task not in TASKS:
        raise MnistlabError(
            f"the data's task {datamodule.task!r} is unknown: it must be one of {', '.join(TASKS)}"
        )
    return TASKS[datamodule.task].for_data(datamodule, **options)


__all__ = ["TASKS", "Classification", "Regression", "Task", "make_task"]
