"""AdaGrad (Duchi et al. 2011): per-coordinate step sizes from the running sum of squared gradients.

Update rule (exactly ``torch.optim.Adagrad``), step ``t = 1, 2, ...``::

    g   = g + weight_decay * p            (g negated first if maximize)
    clr = lr / (1 + (t - 1) * lr_decay)
    s   = s + g * g                       (s starts at initial_accumulator_value)
    p   = p - clr * g / (sqrt(s) + eps)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """AdaGrad with PyTorch's options and defaults.  See the module docstring."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any], where: str) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            self._require(group[key] >= 0.0, key, group[key], where, "must be >= 0")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        lr_decay = float(group["lr_decay"])
        weight_decay = float(group["weight_decay"])
        eps = float(group["eps"])
        maximize = group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            data = p.data
            g = self._direction(p, weight_decay, maximize)

            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": 0,
                    "sum": np.full_like(data, float(group["initial_accumulator_value"])),
                }
            state["step"] += 1
            clr = lr / (1.0 + (state["step"] - 1) * lr_decay)

            accumulator = state["sum"]
            accumulator += g * g
            std = np.sqrt(accumulator)
            std += eps
            update = g * clr  # (clr * g) / std: PyTorch's addcdiv evaluation order
            update /= std
            data -= update
