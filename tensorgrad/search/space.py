"""A search space as a dict {name: parameter}: LogUniform, Uniform, Int and Choice.

    space = {"lam": LogUniform(1e-8, 1e-4, num=14), "depth": Int(3, 9),
             "optimizer": Choice(["sgd", "adagrad"])}

`num` gives a continuous parameter its grid (log- or evenly spaced, ends included); Int and
Choice enumerate their values. A space is written to JSON with `space_to_dict` and read back
with `space_from_dict` / `load_space` ({"lam": {"type": "loguniform", "low": 1e-8, "high":
1e-4, "num": 14}, ...}). Nothing here imports Optuna: `suggest` takes the Optuna trial.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import asdict, dataclass, field

__all__ = ["LogUniform", "Uniform", "Int", "Choice", "grid_values", "grid_size", "suggest",
           "narrow", "space_to_dict", "space_from_dict", "load_space", "check_space"]


def _number(value, who, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    return value


def _num(num, who):
    if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 1):
        raise ValueError(f"{who}: num (grid points) must be a positive integer or None, got "
                         f"{num!r}")
    return num


@dataclass(frozen=True)
class LogUniform:
    """A float drawn uniformly in log space between low and high (both > 0)."""
    low: float
    high: float
    num: int | None = None

    def __post_init__(self):
        _number(self.low, "LogUniform", "low")
        _number(self.high, "LogUniform", "high")
        if not 0 < self.low <= self.high:
            raise ValueError(f"LogUniform: needs 0 < low <= high, got low={self.low!r}, "
                             f"high={self.high!r}")
        _num(self.num, "LogUniform")

    log = True

    def grid(self):
        if self.num is None:
            return None
        if self.num == 1:
            return [float(self.low)]
        a, b = math.log10(self.low), math.log10(self.high)
        return [float(10 ** (a + (b - a) * k / (self.num - 1))) for k in range(self.num)]

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high, log=True)


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly between low and high."""
    low: float
    high: float
    num: int | None = None

    def __post_init__(self):
        _number(self.low, "Uniform", "low")
        _number(self.high, "Uniform", "high")
        if not self.low <= self.high:
            raise ValueError(f"Uniform: needs low <= high, got low={self.low!r}, "
                             f"high={self.high!r}")
        _num(self.num, "Uniform")

    log = False

    def grid(self):
        if self.num is None:
            return None
        if self.num == 1:
            return [float(self.low)]
        return [float(self.low + (self.high - self.low) * k / (self.num - 1))
                for k in range(self.num)]

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high)


@dataclass(frozen=True)
class Int:
    """An integer in low..high (both included), every `step`-th value; log=True samples it
    log-uniformly (then step must be 1)."""
    low: int
    high: int
    step: int = 1
    log: bool = False

    def __post_init__(self):
        for name in ("low", "high", "step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"Int: {name} must be an integer, got {v!r}")
        if not self.low <= self.high or self.step < 1:
            raise ValueError(f"Int: needs low <= high and step >= 1, got low={self.low}, "
                             f"high={self.high}, step={self.step}")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError(f"Int: log=True needs low >= 1 and step 1, got low={self.low}, "
                             f"step={self.step}")

    def grid(self):
        return list(range(self.low, self.high + 1, self.step))

    def suggest(self, trial, name):
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values (str, int, float, bool or None: what a study's storage can hold)."""
    values: tuple = field(default_factory=tuple)

    def __post_init__(self):
        values = tuple(self.values)
        if not values:
            raise ValueError("Choice: needs at least one value")
        for v in values:
            if v is not None and not isinstance(v, (str, int, float, bool)):
                raise ValueError(f"Choice: values must be str, int, float, bool or None, got "
                                 f"{v!r} ({type(v).__name__})")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"Choice: values must be distinct, got {list(values)}")
        object.__setattr__(self, "values", values)

    log = False

    def grid(self):
        return list(self.values)

    def suggest(self, trial, name):
        return trial.suggest_categorical(name, list(self.values))


_TYPES = {"loguniform": LogUniform, "uniform": Uniform, "int": Int, "choice": Choice}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def check_space(space, who="search space"):
    """Raise a clear error unless space is a non-empty {str: parameter} dict; return it."""
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{who}: expected a non-empty dict {{name: parameter}}, got {space!r}")
    for name, param in space.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{who}: parameter names must be non-empty strings, got {name!r}")
        if type(param) not in _NAMES:
            raise ValueError(f"{who}: {name!r} must be LogUniform, Uniform, Int or Choice, got "
                             f"{param!r}")
    return space


def grid_values(space) -> dict:
    """{name: list of grid values}; every LogUniform / Uniform needs num."""
    check_space(space)
    out = {}
    for name, param in space.items():
        values = param.grid()
        if values is None:
            raise ValueError(f"grid search: parameter {name!r} ({param}) has no grid; give it "
                             f"num=<points>")
        out[name] = values
    return out


def grid_size(space) -> int:
    return math.prod(len(v) for v in grid_values(space).values())


def grid_points(space) -> list[dict]:
    """Every point of the grid, in itertools.product order."""
    values = grid_values(space)
    return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]


def suggest(trial, space) -> dict:
    """Ask an Optuna trial for every parameter of space; returns {name: value}."""
    return {name: param.suggest(trial, name) for name, param in check_space(space).items()}


def narrow(space, best: dict, factor: float = 10.0) -> dict:
    """The coarse-to-fine second stage: each parameter narrowed around best[name].

    LogUniform -> [best / sqrt(factor), best * sqrt(factor)] (a `factor`-fold range), Uniform
    and Int -> best +- (high - low) / (2 factor), each clipped to the original range; Choice is
    fixed to the best value. Grids keep their number of points.
    """
    if not factor > 1:
        raise ValueError(f"narrow: factor must be > 1, got {factor!r}")
    out = {}
    for name, p in check_space(space).items():
        if name not in best:
            raise ValueError(f"narrow: best has no value for {name!r}; got {sorted(best)}")
        b = best[name]
        if isinstance(p, LogUniform):
            r = math.sqrt(factor)
            out[name] = LogUniform(max(p.low, b / r), min(p.high, b * r), p.num)
        elif isinstance(p, Uniform):
            h = (p.high - p.low) / (2 * factor)
            out[name] = Uniform(max(p.low, b - h), min(p.high, b + h), p.num)
        elif isinstance(p, Int):
            h = max(p.step, int(round((p.high - p.low) / (2 * factor))))
            lo, hi = max(p.low, b - h), min(p.high, b + h)
            lo = p.low + (lo - p.low + p.step - 1) // p.step * p.step   # stay on the step grid
            out[name] = Int(lo, max(lo, hi), p.step, p.log)
        else:
            out[name] = Choice([b])
    return out


def space_to_dict(space) -> dict:
    out = {}
    for name, p in check_space(space).items():
        d = {"type": _NAMES[type(p)], **asdict(p)}
        if isinstance(p, Choice):
            d["values"] = list(p.values)
        out[name] = {k: v for k, v in d.items() if v is not None or k == "values"}
    return out


def space_from_dict(d, who="search space") -> dict:
    """The space written by space_to_dict (or by hand in a JSON file)."""
    if not isinstance(d, dict) or not d:
        raise ValueError(f"{who}: expected a non-empty JSON object of parameters, got {d!r}")
    space = {}
    for name, spec in d.items():
        if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
            raise ValueError(f"{who}: parameter {name!r} needs \"type\" in {sorted(_TYPES)}, got "
                             f"{spec!r}")
        args = {k: v for k, v in spec.items() if k != "type"}
        try:
            space[name] = _TYPES[spec["type"]](**args)
        except TypeError as exc:
            raise ValueError(f"{who}: parameter {name!r}: {exc}") from None
    return space


def load_space(path) -> dict:
    """A space from a JSON file holding {name: {"type": ..., ...}}."""
    try:
        text = open(os.fspath(path)).read()
    except OSError as exc:
        raise FileNotFoundError(f"load_space: cannot read {path}: {exc.strerror}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"load_space: {path} is not valid JSON: {exc}") from None
    return space_from_dict(d, who=f"load_space({path})")
