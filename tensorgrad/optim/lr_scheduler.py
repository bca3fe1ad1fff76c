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
and ``base_lrs`` (CosineAnnealingWarmRestarts: in its position in the current cycle); unlike
PyTorch's "chainable" StepLR, MultiStepLR, ConstantLR, LinearLR and ExponentialLR, which
multiply whatever lr the group currently holds, they do not compose with other schedulers on
the same optimizer, and their lrs equal PyTorch's up to rounding (a relative 1e-14 after
hundreds of steps) rather than bitwise.  Two are not closed forms: ``ReduceLROnPlateau``
lowers the lr the group holds when ``step(metric)`` sees no progress, and ``SequentialLR``
hands the optimizer from one schedule to the next at its milestones (each starting again at
its own update 0).  ``tensorgrad.train.fit`` steps ReduceLROnPlateau with the validation loss
at each measurement, the others after every update.
"""

from __future__ import annotations

import bisect
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
        self._set_lrs(self.get_lr())

    def _restart(self) -> None:
        """Start the schedule again at update 0 (SequentialLR, at a milestone: PyTorch's
        ``step(0)``)."""
        self.last_epoch = -1
        self.step()

    def _set_lrs(self, lrs: list[float]) -> None:
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


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (the number of milestones <= last_epoch); a milestone listed
    twice decays twice."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        milestones = list(milestones)
        for m in milestones:
            if int(m) != m:
                raise ValueError(f"MultiStepLR: milestones must be integers, got {milestones!r}")
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        decays = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base_lr * self.gamma**decays for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** last_epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = base_lr * factor, the factor going linearly from ``start_factor`` (update 0) to
    ``end_factor`` (update ``total_iters`` and after): a warm-up, or a linear decay."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        if int(total_iters) != total_iters or total_iters < 1:
            raise ValueError(
                f"LinearLR: total_iters must be a positive integer, got {total_iters!r}"
            )
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * done
        return [base_lr * factor for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter 2017): lr = eta_min + (base_lr - eta_min) * (1 + cos(pi *
    T_cur / T_i)) / 2, restarting at base_lr after ``T_i`` steps; the first cycle lasts ``T_0``
    steps and each next one ``T_mult`` times longer.

    ``step()`` advances one step; ``step(epoch)`` jumps to ``epoch``, which may be fractional
    (``step(epoch + i / iters)`` per mini-batch), as in PyTorch.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(
                f"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got {T_0!r}"
            )
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(
                f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got {T_mult!r}"
            )
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base_lr - self.eta_min) * cosine / 2 for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """One step on, or (``epoch`` given) to the position of step ``epoch``."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        elif epoch < 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got {epoch!r}")
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:  # the cycle n holding epoch: T_0 * (T_mult^n - 1) / (T_mult - 1) <= epoch
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult**n
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())


class ReduceLROnPlateau(LRScheduler):
    """Multiply each group's lr by ``factor`` once the metric passed to ``step(metric)`` has not
    improved for more than ``patience`` steps (PyTorch's rule and defaults).

    Improving means, for ``mode='min'``, falling below ``best * (1 - threshold)``
    (``threshold_mode='rel'``) or ``best - threshold`` ('abs'); for 'max', rising above
    ``best * (1 + threshold)`` or ``best + threshold``. After a reduction, ``cooldown`` steps
    pass before bad steps count again. An lr never goes below its ``min_lr``, and a reduction
    smaller than ``eps`` is skipped. Construction leaves the lrs as they are.
    ``tensorgrad.train.fit`` calls ``step(val_loss)`` at each measurement.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"ReduceLROnPlateau: expected a tensorgrad Optimizer, got "
                f"{type(optimizer).__name__}"
            )
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group("min_lr", optimizer, min_lr, "ReduceLROnPlateau")
        else:
            self.default_min_lr = float(min_lr)
            self.min_lrs = [float(min_lr)] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        """Whether metric `a` counts as an improvement over `best`."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record one measurement of the metric (a number, or a one-element Tensor or array)
        and lower the lrs if it has stopped improving."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(
                    f"ReduceLROnPlateau: built with {len(self.min_lrs)} min_lrs, but the "
                    f"optimizer now has {len(groups)} parameter groups; set min_lrs to match"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other: ``schedulers[i]`` sets the lr from update
    ``milestones[i - 1]`` on, starting again at its own update 0 there (PyTorch's SequentialLR).

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = ExponentialLR(opt, gamma=0.9)
        sched = SequentialLR(opt, [warmup, decay], milestones=[5])

    Build the schedulers on ``optimizer`` first; construction undoes their first step, resets
    the lrs to the groups' ``initial_lr`` and starts the first one. ``state_dict`` holds the
    schedulers' own state dicts. ReduceLROnPlateau cannot take part (its step needs a metric).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"SequentialLR: expected a tensorgrad Optimizer, got {type(optimizer).__name__}"
            )
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(
                    f"SequentialLR: schedulers[{i}] is a ReduceLROnPlateau, whose step needs a "
                    "metric; it cannot be part of a sequence"
                )
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(
                    f"SequentialLR: schedulers[{i}] is a {type(scheduler).__name__}, not a "
                    "learning-rate scheduler"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"SequentialLR: schedulers[{i}] ({type(scheduler).__name__}) belongs to "
                    "another optimizer; every scheduler must be built on this one"
                )
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expected {len(schedulers) - 1} milestones (one fewer than the "
                f"{len(schedulers)} schedulers), got {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = [int(m) for m in milestones]
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:  # undo the step each took when it was built
            _undo_step(scheduler)
        first = self._schedulers[bisect.bisect_right(self._milestones, 0)]
        first.step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._restart()
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = {
            key: copy.deepcopy(value)
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "_schedulers")
        }
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        if len(saved) != len(self._schedulers):
            raise ValueError(
                f"SequentialLR: the state holds {len(saved)} schedulers, this one has "
                f"{len(self._schedulers)}"
            )
        super().load_state_dict(state)
        for scheduler, sub_state in zip(self._schedulers, saved):
            scheduler.load_state_dict(sub_state)


def _undo_step(scheduler: LRScheduler) -> None:
    """Take back one update of `scheduler` (of each of its parts, for a SequentialLR)."""
    if isinstance(scheduler, SequentialLR):
        for part in scheduler._schedulers:
            _undo_step(part)
    else:
        scheduler.last_epoch -= 1
