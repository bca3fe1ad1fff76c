"""RMSprop (Hinton's lecture 6e): divide the gradient by a running RMS of recent gradients.

Update rule (exactly ``torch.optim.RMSprop``; note eps is added outside the square root)::

    g   = g + weight_decay * p                       (g negated first if maximize)
    v   = alpha * v + (1 - alpha) * g * g
    avg = sqrt(v - m * m) + eps,  m = alpha * m + (1 - alpha) * g   if centered
    avg = sqrt(v) + eps                                              otherwise
    b   = momentum * b + g / avg;   p = p - lr * b                   if momentum > 0
    p   = p - lr * g / avg                                           otherwise
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop with PyTorch's options and defaults.  See the module docstring."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any], where: str) -> None:
        for key in ("lr", "eps", "weight_decay", "momentum"):
            self._require(group[key] >= 0.0, key, group[key], where, "must be >= 0")
        self._require(
            0.0 <= group["alpha"] <= 1.0, "alpha", group["alpha"], where, "must be in [0, 1]"
        )

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        alpha = float(group["alpha"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        momentum = float(group["momentum"])
        centered = group["centered"]
        maximize = group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            data = p.data
            g = self._direction(p, weight_decay, maximize)

            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {"step": 0, "square_avg": np.zeros_like(data)}
            if momentum > 0.0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(data)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = np.zeros_like(data)
            state["step"] += 1

            square_avg = state["square_avg"]
            square_avg *= alpha
            squared = g * (1.0 - alpha)
            squared *= g
            square_avg += squared

            if centered:
                grad_avg = state["grad_avg"]
                shift = g - grad_avg  # grad_avg moves (1 - alpha) of the way to g
                shift *= 1.0 - alpha
                grad_avg += shift
                avg = grad_avg * grad_avg
                np.subtract(square_avg, avg, out=avg)
                np.sqrt(avg, out=avg)
            else:
                avg = np.sqrt(square_avg)
            avg += eps

            if momentum > 0.0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += g / avg
                data -= lr * buf
            else:
                update = g * lr
                update /= avg
                data -= update
