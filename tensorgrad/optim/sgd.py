"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

Update rule (exactly ``torch.optim.SGD``), with ``g`` the gradient (negated if ``maximize``)::

    g = g + weight_decay * p
    b = g                                   (first step)
    b = momentum * b + (1 - dampening) * g  (later steps)
    g = g + momentum * b  if nesterov  else  b
    p = p - lr * g
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..compile.blas import axpby, one_pass, two_pass
from ..mode import HITS as _HITS
from .optimizer import Optimizer
from .optimizer import axpy as _axpy


class SGD(Optimizer):
    """Mini-batch SGD; ``lr`` is required (the course's eta).  See the module docstring.

    Without momentum the update is stateless: parameters that `Module.flatten_parameters()`
    stored in one flat array (the MLP's small ones) are updated by two numpy calls in all.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any], where: str) -> None:
        self._require(group["lr"] >= 0.0, "lr", group["lr"], where, "must be >= 0")
        self._require(
            group["momentum"] >= 0.0, "momentum", group["momentum"], where, "must be >= 0"
        )
        self._require(
            group["weight_decay"] >= 0.0,
            "weight_decay",
            group["weight_decay"],
            where,
            "must be >= 0",
        )
        if group["nesterov"]:
            self._require(
                group["momentum"] > 0 and group["dampening"] == 0,
                "nesterov",
                True,
                where,
                "Nesterov momentum requires momentum > 0 and dampening == 0",
            )

    def _step_group(self, group: dict[str, Any], off: frozenset = frozenset()) -> None:
        """The update with its fast paths (flat_update, axpy, momentum_axpby) but those in
        `off`."""
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        params = group["params"]
        n_axpy = 0  # updates through axpy (counted in tg.fast_paths)
        axpy = _axpy if "axpy" not in off else two_pass
        if momentum == 0.0 and "flat_update" not in off:  # the small parameters in one update
            flat, rest = self._flat_params(group)
            if flat is not None and flat.gather():
                _HITS["flat_update"] += 1
                g = flat.grad  # our own buffer: scaled in place
                if maximize:
                    np.negative(g, out=g)
                if weight_decay != 0.0:
                    axpy(weight_decay, flat.data, g)
                    n_axpy += 1
                g *= -lr
                flat.data += g
                params = rest
        n_axpby = 0  # momentum buffers updated through axpby (counted in tg.fast_paths)
        use_axpby = momentum != 0.0 and "momentum_axpby" not in off
        for p in params:
            if p.grad is None:
                continue
            data = p.data
            n_axpy += 1
            if use_axpby and not nesterov and not maximize:
                buf = self.state.get(p, {}).get("momentum_buffer")
                if buf is not None and one_pass(buf):
                    # buf <- momentum * buf + (1 - dampening) * (g + weight_decay * p) as BLAS
                    # passes over buf, without the direction array g + weight_decay * p
                    axpby(1.0 - dampening, p.grad.data, momentum, buf)
                    if weight_decay != 0.0:
                        axpy((1.0 - dampening) * weight_decay, data, buf)
                    axpy(-lr, buf, data)
                    n_axpby += 1
                    continue
            g = self._direction(p, weight_decay, maximize)
            if momentum == 0.0:
                axpy(-lr, g, data)
                continue
            state = self.state.setdefault(p, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=data.dtype, copy=True)
            elif use_axpby:
                axpby(1.0 - dampening, g, momentum, buf)  # numpy's buf *= m; buf += ... if small
                n_axpby += 1
            else:
                buf *= momentum
                axpy(1.0 - dampening, g, buf)
            if nesterov:  # p -= lr * (g + momentum * buf)
                axpy(-lr, g, data)
                axpy(-lr * momentum, buf, data)
            else:
                axpy(-lr, buf, data)
        _HITS["momentum_axpby"] += n_axpby
        if axpy is _axpy:
            _HITS["axpy"] += n_axpy

    def _step_group_without(self, off: frozenset, group: dict[str, Any]) -> None:
        if {"axpy", "flat_update", "momentum_axpby"} <= off:
            self._plain_step_group(group)
        else:
            self._step_group(group, off)

    def _plain_step_group(self, group: dict[str, Any]) -> None:
        """Reference mode: the update rule of the module docstring, one parameter at a time."""
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._direction(p, weight_decay, group["maximize"])
            if momentum != 0.0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, dtype=p.data.dtype, copy=True)
                else:
                    buf *= momentum
                    buf += (1.0 - dampening) * g
                g = g + momentum * buf if group["nesterov"] else buf
            p.data -= lr * g  # in place: a flattened parameter's array is a view
