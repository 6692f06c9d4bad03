"""What a checkpoint of each version of mnistlab holds, and the one upgrade from an earlier format.

Format 2 (from 2026-12-04): the model is a NetModule, the net under ``net.`` and the task's metrics under
``task.``; ``checkpoint[FORMAT_KEY]`` says 2. Format 1 (before): one LightningModule per architecture, the
raw-tensor net's weights and the best validation accuracy at the top level, no format key. A format-1
checkpoint loads for eval.py, predict.py, export.py and serve.py; a resume needs format 2.
"""

import copy
from typing import Any

from mnistlab.core.errors import MnistlabError

FORMAT_KEY = "mnistlab_format"
FORMAT = 2

# Format 1's state_dict keys, where format 2 keeps them.
FORMAT_1_KEYS = {"val_acc_best.max_value": "task.val_accuracy_best.max_value"}
FORMAT_1_NET_KEYS = ("weights.", "biases.")  # the raw-tensor net's parameters, now the net's own
# Model settings added while format 1 was written, with the value the code had before each was added.
FORMAT_1_MODEL_DEFAULTS = {"compile": False, "label_smoothing": 0.0, "output": "logits"}
FORMAT_1_CNN_DEFAULTS = {"convs_per_block": 1, "channels_last": False}
AUGMENT = "mnistlab.data.augment.RandomAffine"


def format_of(checkpoint: dict[str, Any]) -> int:
    return checkpoint.get(FORMAT_KEY, 1)


def upgraded(checkpoint: dict[str, Any], path: Any) -> dict[str, Any]:
    """The checkpoint in format 2 (a copy when it was older): its run config and state_dict."""
    version = format_of(checkpoint)
    if version == FORMAT:
        return checkpoint
    if version != 1 or "run_config" not in checkpoint:
        raise MnistlabError(
            f"{path} was written by a mnistlab of checkpoint format {version}, and this one reads formats 1 "
            f"and {FORMAT}: use that version of mnistlab with it"
        )
    checkpoint = copy.copy(checkpoint)
    checkpoint["run_config"] = upgraded_config(checkpoint["run_config"])
    checkpoint["state_dict"] = {
        FORMAT_1_KEYS.get(key, f"net.{key}" if key.startswith(FORMAT_1_NET_KEYS) else key): value
        for key, value in checkpoint["state_dict"].items()
    }
    checkpoint[FORMAT_KEY] = FORMAT
    return checkpoint


def upgraded_config(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    model = config["model"]
    defaults = {
        **FORMAT_1_MODEL_DEFAULTS,
        **(FORMAT_1_CNN_DEFAULTS if model["_target_"].endswith("CNN") else {}),
    }
    for key, value in defaults.items():
        model.setdefault(key, value)
    augment = config["data"].get("augment")
    if augment:  # format 1 kept the augmentation's settings; format 2 builds its class from them
        config["data"]["augment"] = {"_target_": AUGMENT, **augment}
    return config
