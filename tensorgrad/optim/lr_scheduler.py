"""Learning-rate schedules (PyTorch's ``torch.optim.lr_scheduler`` names and formulas).

Usage, one ``scheduler.step()`` per optimizer update (the course counts updates, i.e.
mini-batches, not epochs)::

    scheduler = CyclicLR(optimizer, base_lr=1e-5, max_lr=1e-1, step_size_up=n_s)
    for x, y in batches:
        loss = ...; loss.backward()
        optimizer.step()        # uses eta_t
        optimizer.zero_grad()
        scheduler.step()        # sets eta_{t+1}

Constructing a scheduler already sets the optimizer's lr to eta_0.  Every scheduler here
computes its lr from a closed form in ``last_epoch`` (the number of ``step()`` calls so far)
and ``base_lrs``; unlike PyTorch's "chainable" StepLR/ConstantLR, which multiply whatever lr
the group currently holds, they do not compose with other schedulers on the same optimizer.
"""

from __future__ import annotations

import copy
import math
import types
from typing import Any, Callable, Sequence

from .optimizer import Optimizer


def _per_group(
    name: str, optimizer: Optimizer, value: float | Sequence[float], where: str
) -> list[float]:
    """One value per parameter group: a scalar is repeated, a list must match the group count."""
    n_groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(
                f"{where}: expected {n_groups} values for {name} (one per parameter group), "
                f"got {len(value)}"
            )
        return [float(v) for v in value]
    return [float(value)] * n_groups


class LRScheduler:
    """Base class: sets each group's lr to ``get_lr()`` (a closed form in ``last_epoch``).

    ``last_epoch=-1`` starts a new schedule (and records each group's current lr as its
    ``initial_lr``); any other value resumes one, which needs ``initial_lr`` in the groups.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{name}: expected a tensorgrad Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: param_groups[{i}] has no 'initial_lr' although "
                        f"last_epoch={last_epoch} "
                        "asks to resume a schedule; load the optimizer's state_dict first"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        """The lr of every group at update ``last_epoch`` (subclasses implement)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def step(self) -> None:
        """Advance one update and write the new lrs into the optimizer's groups."""
        self.last_epoch += 1
        lrs = self.get_lr()
        groups = self.optimizer.param_groups
        if len(lrs) != len(groups):
            raise ValueError(
                f"{type(self).__name__}: built for {len(lrs)} parameter groups, but the optimizer "
                f"now has {len(groups)}"
            )
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The lrs set by the latest ``step()`` (or by construction), one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (copied), as in PyTorch."""
        return {
            key: copy.deepcopy(value) for key, value in self.__dict__.items() if key != "optimizer"
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by ``state_dict`` (the optimizer's lrs come from its own
        state_dict)."""
        self.__dict__.update(copy.deepcopy(state_dict))

    # -- momentum cycling shared by CyclicLR and OneCycleLR ---------------------------

    def _setup_momentum(
        self, base_momentum: float | Sequence[float], max_momentum: float | Sequence[float]
    ) -> None:
        """Check the optimizer has a momentum (SGD, RMSprop) or beta1 (Adam) to cycle."""
        name = type(self).__name__
        defaults = self.optimizer.defaults
        if "momentum" not in defaults and "betas" not in defaults:
            raise ValueError(
                f"{name}: cycle_momentum=True needs an optimizer with 'momentum' or 'betas', "
                f"but {type(self.optimizer).__name__} has neither; pass cycle_momentum=False"
            )
        self.use_beta1 = "betas" in defaults
        self.base_momentums = _per_group("base_momentum", self.optimizer, base_momentum, name)
        self.max_momentums = _per_group("max_momentum", self.optimizer, max_momentum, name)

    def _set_momentum(self, momentums: list[float]) -> None:
        for group, momentum in zip(self.optimizer.param_groups, momentums):
            if self.use_beta1:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(last_epoch); one function, or a list with one per group.

    ``state_dict`` keeps only the ``__dict__`` of callable objects (not of functions or lambdas).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        n_groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n_groups:
                raise ValueError(f"LambdaLR: expected {n_groups} lr_lambdas, got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n_groups
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)
        ]

    def state_dict(self) -> dict[str, Any]:
        state = {
            key: copy.deepcopy(value)
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "lr_lambdas")
        }
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else copy.deepcopy(fn.__dict__)
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved_lambdas = state.pop("lr_lambdas")
        super().load_state_dict(state)
        for fn, saved in zip(self.lr_lambdas, saved_lambdas):
            if saved is not None:
                fn.__dict__.update(copy.deepcopy(saved))


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (last_epoch // step_size)."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class ConstantLR(LRScheduler):
    """lr = base_lr * factor for the first ``total_iters`` updates, then base_lr."""

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"ConstantLR: factor must be in [0, 1], got {factor!r}")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        scale = self.factor if self.last_epoch < self.total_iters else 1.0
        return [base_lr * scale for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2.

    The closed form of SGDR without restarts; past ``T_max`` it rises again (period 2*T_max),
    as PyTorch's recursive version does.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = 1.0 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base_lr - self.eta_min) * cosine / 2 for base_lr in self.base_lrs]


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith 2017), PyTorch's formula; one ``step()`` per mini-batch.

    With ``mode='triangular'`` this is the course's cyclical schedule with eta_min=base_lr,
    eta_max=max_lr and n_s=step_size_up: the lr climbs linearly from base_lr to max_lr over
    ``step_size_up`` updates, falls back over ``step_size_down`` (default: the same), and
    repeats.  ``'triangular2'`` halves the amplitude every cycle; ``'exp_range'`` multiplies
    it by ``gamma**t`` (t = update count).  A custom ``scale_fn(x)`` with ``scale_mode``
    'cycle' (x = cycle number, from 1) or 'iterations' (x = t) replaces the mode.
    Construction sets the lr to base_lr.

    Deliberate difference from PyTorch: ``cycle_momentum`` defaults to False.  PyTorch's
    default True silently gives plain SGD a momentum cycling between 0.8 and 0.9, and fails
    with Adagrad; the course uses plain SGD and AdaGrad with this schedule.  When True,
    momentum (SGD, RMSprop) or Adam's beta1 cycles inversely to the lr, between
    ``max_momentum`` (at base_lr) and ``base_momentum`` (at max_lr).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | Sequence[float],
        max_lr: float | Sequence[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = False,
        base_momentum: float | Sequence[float] = 0.8,
        max_momentum: float | Sequence[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"CyclicLR: expected a tensorgrad Optimizer, got {type(optimizer).__name__}"
            )
        base_lrs = _per_group("base_lr", optimizer, base_lr, "CyclicLR")
        self.max_lrs = _per_group("max_lr", optimizer, max_lr, "CyclicLR")
        if step_size_up <= 0 or (step_size_down is not None and step_size_down <= 0):
            raise ValueError(
                f"CyclicLR: step sizes must be positive, got step_size_up={step_size_up!r}, "
                f"step_size_down={step_size_down!r}"
            )
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                "CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range' (or pass "
                f"scale_fn), got {mode!r}"
            )
        if scale_fn is not None and scale_mode not in ("cycle", "iterations"):
            raise ValueError(
                f"CyclicLR: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}"
            )
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        if scale_fn is None:
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.scale_mode = scale_mode
        self.cycle_momentum = cycle_momentum
        self.optimizer = optimizer
        if cycle_momentum:
            self._setup_momentum(base_momentum, max_momentum)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
                group["initial_lr"] = lr
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        """Amplitude multiplier of the mode (or the custom ``scale_fn``)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def _phase(self) -> tuple[float, float]:
        """(fraction of the way from the base to the peak, amplitude scale) at ``last_epoch``."""
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            height = x / self.step_ratio
        else:
            height = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        return height, scale

    def get_lr(self) -> list[float]:
        height, scale = self._phase()
        return [
            base + (peak - base) * height * scale for base, peak in zip(self.base_lrs, self.max_lrs)
        ]

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            height, scale = self._phase()
            self._set_momentum(
                [
                    high - (high - low) * height * scale
                    for low, high in zip(self.base_momentums, self.max_momentums)
                ]
            )

    def state_dict(self) -> dict[str, Any]:
        """As the base class, but a custom scale_fn is kept only as its ``__dict__`` (if not a
        function)."""
        state = {
            key: copy.deepcopy(value)
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "_scale_fn_custom")
        }
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = (
            None if fn is None or isinstance(fn, types.FunctionType) else copy.deepcopy(fn.__dict__)
        )
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved_fn = state.pop("_scale_fn_custom")
        super().load_state_dict(state)
        if saved_fn is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(copy.deepcopy(saved_fn))


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018), PyTorch's formula; one ``step()`` per mini-batch.

    The lr anneals (cosine or linear) from max_lr/div_factor up to max_lr over the first
    ``pct_start`` of ``total_steps`` (or ``epochs * steps_per_epoch``), then down to
    max_lr/(div_factor*final_div_factor).  ``three_phase=True`` returns to the start value
    first and only anneals to the minimum in a third phase.

    Deliberate difference from PyTorch: ``cycle_momentum`` defaults to False (PyTorch: True,
    which silently adds momentum to plain SGD).  When True, momentum (SGD, RMSprop) or Adam's
    beta1 moves inversely to the lr between ``max_momentum`` and ``base_momentum``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = False,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"OneCycleLR: expected a tensorgrad Optimizer, got {type(optimizer).__name__}"
            )
        if total_steps is not None:
            if int(total_steps) != total_steps or total_steps <= 0:
                raise ValueError(
                    f"OneCycleLR: expected a positive integer total_steps, got {total_steps!r}"
                )
            self.total_steps = int(total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            for key, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if int(value) != value or value <= 0:
                    raise ValueError(
                        f"OneCycleLR: expected a positive integer {key}, got {value!r}"
                    )
            self.total_steps = int(epochs) * int(steps_per_epoch)
        else:
            raise ValueError(
                "OneCycleLR: give either total_steps or both epochs and steps_per_epoch"
            )
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self.anneal_strategy = anneal_strategy

        # Each phase: (its last update, lr from, lr to, momentum from, momentum to), naming the
        # lr endpoints "initial"/"max"/"min" and the momentum endpoints "max"/"base".
        last = self.total_steps - 1
        if three_phase:
            self._phases = [
                (float(pct_start * self.total_steps) - 1, "initial", "max", "max", "base"),
                (float(2 * pct_start * self.total_steps) - 2, "max", "initial", "base", "max"),
                (float(last), "initial", "min", "max", "max"),
            ]
        else:
            self._phases = [
                (float(pct_start * self.total_steps) - 1, "initial", "max", "max", "base"),
                (float(last), "max", "min", "base", "max"),
            ]

        self.max_lrs = _per_group("max_lr", optimizer, max_lr, "OneCycleLR")
        self.initial_lrs = [lr / div_factor for lr in self.max_lrs]
        self.min_lrs = [lr / final_div_factor for lr in self.initial_lrs]
        self.cycle_momentum = cycle_momentum
        self.optimizer = optimizer
        if cycle_momentum:
            self._setup_momentum(base_momentum, max_momentum)
        if last_epoch == -1:
            for lr, group in zip(self.initial_lrs, optimizer.param_groups):
                group["initial_lr"] = lr
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _values(self) -> tuple[list[float], list[float]]:
        """(lrs, momentums) at update ``last_epoch``."""
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"OneCycleLR: tried to step {step_num} times; the schedule has "
                f"total_steps={self.total_steps}"
            )
        start_step = 0.0
        for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
            if step_num <= end_step or i == len(self._phases) - 1:
                if end_step == start_step:
                    raise ValueError(
                        f"OneCycleLR: phase {i + 1} has zero length "
                        f"(total_steps={self.total_steps}, "
                        f"phase ends at update {end_step}); change pct_start or use more steps"
                    )
                pct = (step_num - start_step) / (end_step - start_step)
                break
            start_step = end_step
        lr_ends = {"initial": self.initial_lrs, "max": self.max_lrs, "min": self.min_lrs}
        lrs = [self._anneal(a, b, pct) for a, b in zip(lr_ends[lr_from], lr_ends[lr_to])]
        momentums = []
        if self.cycle_momentum:
            m_ends = {"base": self.base_momentums, "max": self.max_momentums}
            momentums = [self._anneal(a, b, pct) for a, b in zip(m_ends[m_from], m_ends[m_to])]
        return lrs, momentums

    def get_lr(self) -> list[float]:
        return self._values()[0]

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            self._set_momentum(self._values()[1])
