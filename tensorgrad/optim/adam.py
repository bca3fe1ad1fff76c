"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019, decoupled weight decay).

Update rule (exactly ``torch.optim.Adam`` / ``AdamW``), step ``t = 1, 2, ...``::

    p = p * (1 - lr * weight_decay)         AdamW: the weights shrink directly
    g = g + weight_decay * p                Adam:  the decay joins the gradient
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    vmax = max(vmax, v); use vmax for v     if amsgrad
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

(``g`` negated first if ``maximize``.)  ``eps`` is added after the bias correction of ``v``,
as in PyTorch and the paper's Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam with PyTorch's options and defaults; ``weight_decay`` is coupled (L2-style) unless
    ``decoupled_weight_decay=True`` (then it is AdamW)."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any], where: str) -> None:
        for key in ("lr", "eps", "weight_decay"):
            self._require(group[key] >= 0.0, key, group[key], where, "must be >= 0")
        betas = group["betas"]
        self._require(
            len(betas) == 2 and all(0.0 <= b < 1.0 for b in betas),
            "betas",
            betas,
            where,
            "must be two numbers in [0, 1)",
        )

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        decoupled = group["decoupled_weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            data = p.data
            if decoupled and weight_decay != 0.0:
                data *= 1.0 - lr * weight_decay  # AdamW: decay the weights, not the gradient
                g = self._direction(p, 0.0, maximize)
            else:
                g = self._direction(p, weight_decay, maximize)

            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": 0,
                    "exp_avg": np.zeros_like(data),
                    "exp_avg_sq": np.zeros_like(data),
                }
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = np.zeros_like(data)
            state["step"] += 1
            step = state["step"]

            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            shift = g - exp_avg  # exp_avg moves (1 - beta1) of the way to g
            shift *= 1.0 - beta1
            exp_avg += shift
            exp_avg_sq *= beta2
            squared = g * (1.0 - beta2)
            squared *= g
            exp_avg_sq += squared

            step_size = lr / (1.0 - beta1**step)
            bias_correction2_sqrt = (1.0 - beta2**step) ** 0.5
            if amsgrad:
                np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                denom = np.sqrt(state["max_exp_avg_sq"])
            else:
                denom = np.sqrt(exp_avg_sq)
            denom /= bias_correction2_sqrt
            denom += eps
            update = exp_avg * step_size
            update /= denom
            data -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2): ``p *= 1 - lr * weight_decay`` each step."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
