"""Optimizers written for the tutorials, beside the models that use them."""

from collections.abc import Iterable

import torch
from torch import Tensor


class GradientDescent(torch.optim.Optimizer):
    """Plain gradient descent, by hand: ``w -= lr * grad`` under ``torch.no_grad()``.

    An Optimizer only so that Lightning counts its steps (checkpointing keys on them) and saves its state.
    """

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    def step(self, closure=None) -> Tensor | None:
        # Lightning computes the loss and gradients in the closure.
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for weight in group["params"]:
                    if weight.grad is not None:
                        weight -= group["lr"] * weight.grad
        return loss
