"""Base class of the optimizers: parameter groups, per-parameter state, zero_grad, state_dict.

Mirrors ``torch.optim.Optimizer``.  A subclass passes its default hyperparameters to
``__init__``, checks them in ``_check_hyperparameters`` and updates one group's parameters
in place in ``_step_group``; everything else (groups, closure, checkpoints) lives here.

About ``weight_decay`` and the course's L2 term: the cost ``J = loss + lambda * sum ||W||^2``
has gradient ``dloss/dW + 2*lambda*W``, so ``SGD(..., weight_decay=2*lambda)`` reproduces it
(with or without momentum: the decay is added to the gradient).  But ``weight_decay`` decays
every parameter of its group (biases, batch-norm gamma/beta too), while the course's L2 term
covers only the weight matrices; to match it put biases and batch-norm parameters in a
separate group with ``weight_decay=0``::

    SGD([{"params": weights, "weight_decay": 2 * lam},
         {"params": biases_and_bn, "weight_decay": 0.0}], lr=0.01)

With Adagrad, RMSprop and Adam, ``weight_decay`` is added to the gradient before the
adaptive rescaling (PyTorch's convention), so the decay is rescaled per coordinate too;
``AdamW`` instead shrinks the weights directly by ``lr * weight_decay`` every step
("decoupled" weight decay, Loshchilov & Hutter 2019).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from .. import mode as _mode
from ..autograd import Tensor
from ..compile.blas import axpy  # noqa: F401  (the optimizers' update primitive)
from ..compile.flat import FlatParams


def _copy_value(value: Any) -> Any:
    """Copy arrays (and tuples of them) so saved and live state never share memory; each copy
    keeps its array's memory order (a Linear weight's buffers are in Fortran order), so a resumed
    run works on the same layouts, and takes the same fast paths, as the uninterrupted one."""
    if isinstance(value, np.ndarray):
        return value.copy(order="K")
    if isinstance(value, tuple):
        return tuple(_copy_value(v) for v in value)
    if isinstance(value, list):
        return [_copy_value(v) for v in value]
    return value


class Optimizer:
    """Base class: holds ``param_groups`` (list of dicts) and ``state`` (per parameter).

    ``params`` is an iterable of Tensors, or of dicts ``{"params": [...], "lr": ..., ...}``
    (parameter groups); options missing from a group take the optimizer's defaults.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, (Tensor, dict)):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or of dicts (parameter "
                f"groups), but got a single {type(params).__name__}; wrap it in a list"
            )
        self._check_hyperparameters(defaults, "the defaults")
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}  # Tensors hash by identity
        self._flat: dict[int, tuple] = {}  # id(group) -> (FlatParams or None, rest, group, key)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{name} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # -- parameter groups -------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group ``{"params": [...], option: value, ...}``; missing options take
        defaults."""
        name = type(self).__name__
        where = f"param_groups[{len(self.param_groups)}]"
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{name}.add_param_group: expected a dict, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"{name}.add_param_group: {where} has no 'params' key")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{name}: {where}['params'] is a set; use a list so the parameter order "
                "(and so the state_dict indices) is the same in every run"
            )
        params = list(params)
        for j, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name} can only optimize Tensors, but {where}['params'][{j}] is "
                    f"a {type(p).__name__}"
                )
            if not np.issubdtype(p.data.dtype, np.floating):
                raise TypeError(
                    f"{name} can only optimize floating-point Tensors, but {where}['params'][{j}] "
                    f"has dtype {p.data.dtype}"
                )
        seen = {id(p) for p in params}
        if len(seen) != len(params):
            raise ValueError(f"{name}: {where} lists the same parameter more than once")
        for group in self.param_groups:
            if any(id(p) in seen for p in group["params"]):
                raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        group = {key: value for key, value in param_group.items() if key != "params"}
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_hyperparameters(group, where)
        group["params"] = params
        self.param_groups.append(group)

    def _check_hyperparameters(self, group: dict[str, Any], where: str) -> None:
        """Raise ValueError if an option in ``group`` is out of range (subclasses override)."""

    @staticmethod
    def _direction(p: Tensor, weight_decay: float, maximize: bool) -> np.ndarray:
        """The gradient the update follows: negated when maximizing, plus the coupled (L2)
        weight decay term weight_decay * p. A new array whenever it differs from p.grad."""
        g = p.grad.data
        if maximize:
            g = -g
        if weight_decay != 0.0:
            g = g + weight_decay * p.data
        return g

    def _flat_params(self, group: dict[str, Any]) -> tuple[FlatParams | None, list[Tensor]]:
        """The flat storage of the group's small parameters if `Module.flatten_parameters` made
        one for exactly them (else None), and the parameters outside it; see flat.py."""
        entry = self._flat.get(id(group))
        params = group["params"]
        key = (len(params), FlatParams.generation)
        if (
            entry is None
            or entry[2] is not group
            or entry[3] != key
            or (entry[0] is not None and not entry[0].valid())
        ):
            flat, rest = FlatParams.of(params)
            entry = self._flat[id(group)] = (flat, rest, group, key)
        return entry[0], entry[1]

    def _require(self, condition: bool, key: str, value: Any, where: str, rule: str) -> None:
        """Helper for ``_check_hyperparameters``: a uniform error message."""
        if not condition:
            raise ValueError(f"{type(self).__name__}: invalid {key}={value!r} in {where} ({rule})")

    # -- the training-loop API -------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set ``p.grad = None`` (default) or to zeros of the same shape."""
        for group in self.param_groups:
            if set_to_none:
                for p in group["params"]:
                    p.grad = None
                continue
            for p in group["params"]:
                if p.grad is not None:
                    # A fresh array, so a gradient array shared with anything else is not clobbered.
                    p.grad.data = np.zeros_like(p.grad.data)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()`` if given.

        The closure (re-evaluating the loss and calling backward) runs before the update,
        as in PyTorch. A gradient whose shape or dtype differs from its parameter's raises
        before any parameter is updated (see ``_check_gradients``).
        """
        loss = None
        if closure is not None:
            loss = closure()
        self._check_gradients()
        if _mode.FAST:
            step_group = self._step_group
        else:  # some or all fast paths off (tensorgrad/mode.py)
            step_group = functools.partial(self._step_group_without, _mode.OFF)
        for group in self.param_groups:
            step_group(group)
        return loss

    def _check_gradients(self) -> None:
        """Raise if some parameter's gradient array does not have its shape and dtype (the
        .grad setter checks, but ``p.grad.data = ...`` or ``p.data = ...`` bypass it), where
        numpy would broadcast or cast it silently. A comparison per parameter, no data pass."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p._grad
                if g is not None and (
                    g.data.shape != p.data.shape or g.data.dtype != p.data.dtype
                ):
                    raise self._gradient_mismatch(p)

    def _gradient_mismatch(self, p: Tensor) -> RuntimeError:
        """The error naming parameter `p` (by its place in ``param_groups``) and its gradient."""
        where = next(
            f"param_groups[{i}]['params'][{j}]"
            for i, group in enumerate(self.param_groups)
            for j, q in enumerate(group["params"])
            if q is p
        )
        g = p._grad.data
        return RuntimeError(
            f"{type(self).__name__}.step(): {where} has shape {p.data.shape} and dtype "
            f"{p.data.dtype}, but its gradient has shape {g.shape} and dtype {g.dtype}; a "
            f"gradient must match its parameter (was .grad.data or .data replaced?)"
        )

    def _step_group(self, group: dict[str, Any]) -> None:
        """Update the parameters of one group in place (subclasses implement)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _step_group")

    def _step_group_without(self, off: frozenset, group: dict[str, Any]) -> None:
        """``_step_group`` with the fast paths in `off` switched off; by default the plain
        update. A subclass whose ``_step_group`` takes several fast paths overrides it."""
        self._plain_step_group(group)

    def _plain_step_group(self, group: dict[str, Any]) -> None:
        """The same update in reference mode (``tg.set_fast(False)``): one parameter at a time
        in plain numpy. A subclass whose ``_step_group`` takes fast paths overrides it."""
        self._step_group(group)

    # -- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``
        (PyTorch layout).

        Parameters are numbered in group order; arrays are copies in their memory order.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {key: _copy_value(value) for key, value in group.items() if key != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {
            index[id(p)]: {key: _copy_value(value) for key, value in s.items()}
            for p, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (arrays are copied in,
        each in the memory order it was saved in).

        Floating-point state arrays are cast to their parameter's dtype, as in PyTorch.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups', "
                f"got {keys}"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        params_by_index: dict[int, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param_groups[{i}] has {len(group['params'])} "
                    f"parameters but the saved group has {len(saved['params'])}"
                )
            for index, p in zip(saved["params"], group["params"]):
                params_by_index[int(index)] = p

        new_state: dict[Tensor, dict[str, Any]] = {}
        for index, saved_state in state_dict["state"].items():
            if int(index) not in params_by_index:
                raise ValueError(
                    f"{name}.load_state_dict: state for unknown parameter index {index}"
                )
            p = params_by_index[int(index)]
            restored = {}
            for key, value in saved_state.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state[{index}][{key!r}] has shape "
                            f"{value.shape} but the parameter has shape {p.data.shape}"
                        )
                    dtype = p.data.dtype if np.issubdtype(value.dtype, np.floating) else value.dtype
                    value = np.array(value, dtype=dtype, copy=True, order="K")
                else:
                    value = _copy_value(value)
                restored[key] = value
            new_state[p] = restored

        for group, saved in zip(self.param_groups, saved_groups):
            group.update({key: _copy_value(v) for key, v in saved.items() if key != "params"})
        self.state = new_state
