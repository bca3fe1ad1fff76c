"""Tensor factories: zeros, ones, *_like, randn/rand/randint/randperm, arange, eye, full. Their
draws come from the global generator (generator.py) unless a seed or generator is given."""
import numpy as np

from .autograd import Tensor
from .autograd.tracing import random_draw
from .generator import (  # noqa: F401  (the generator's names, re-exported)
    as_generator,
    child_generator,
    child_seed,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    set_rng_state,
)

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "randn", "rand",
           "randint", "randperm", "arange", "eye", "as_generator", "child_generator",
           "child_seed", "default_generator", "manual_seed", "initial_seed", "get_rng_state",
           "set_rng_state"]

DEFAULT_DTYPE = np.float32


def _rng(generator, seed, who):
    if generator is not None and seed is not None:
        raise TypeError(f"{who}: pass generator= or seed=, not both")
    return as_generator(generator if generator is not None else seed)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.full(tuple(np.atleast_1d(shape)) if np.ndim(shape) else (shape,),
                          fill_value, dtype=dtype), requires_grad=requires_grad)


def _like(x, value, dtype, requires_grad):
    arr = x if isinstance(x, Tensor) else np.asarray(x)  # shape and dtype only
    return Tensor(np.full(arr.shape, value, dtype=dtype or arr.dtype), requires_grad=requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    return _like(x, 0, dtype, requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return _like(x, 1, dtype, requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False):
    return _like(x, fill_value, dtype, requires_grad)


def randn(*shape, generator=None, seed=None, dtype=DEFAULT_DTYPE, requires_grad=False):
    """Standard normal samples from `generator` (a numpy Generator), a new Generator from
    `seed`, or the global generator (neither given)."""
    random_draw("tg.randn")
    rng = _rng(generator, seed, "randn")
    return Tensor(rng.standard_normal(_shape(shape), dtype=np.float64).astype(dtype),
                  requires_grad=requires_grad)


def rand(*shape, generator=None, seed=None, dtype=DEFAULT_DTYPE, requires_grad=False):
    """Uniform samples on [0, 1) (the generator as in `randn`)."""
    random_draw("tg.rand")
    rng = _rng(generator, seed, "rand")
    return Tensor(rng.random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def randint(low, high=None, size=None, *, generator=None, seed=None, dtype=np.int64):
    """Integers uniform on [low, high), int64 (the generator as in `randn`). As in PyTorch,
    `randint(high, size)` draws from [0, high) and `size` is a tuple (or an int)."""
    random_draw("tg.randint")
    if size is None:
        if high is None or np.ndim(high) == 0 and not isinstance(high, (tuple, list)):
            raise TypeError("randint: give the size, e.g. randint(10, (3,)) or "
                            "randint(0, 10, (3,))")
        low, high, size = 0, low, high
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    if high is None:
        low, high = 0, low
    if not low < high:
        raise ValueError(f"randint: needs low < high, got low={low}, high={high}")
    rng = _rng(generator, seed, "randint")
    return Tensor(rng.integers(low, high, size=size).astype(dtype, copy=False))


def randperm(n, *, generator=None, seed=None, dtype=np.int64):
    """A random permutation of 0..n-1, int64 (the generator as in `randn`)."""
    random_draw("tg.randperm")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative integer, got {n!r}")
    rng = _rng(generator, seed, "randperm")
    return Tensor(rng.permutation(int(n)).astype(dtype, copy=False))


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Evenly spaced values like np.arange; integer arguments give int64, floats float32."""
    arr = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and arr.dtype == np.float64:
        dtype = DEFAULT_DTYPE
    return Tensor(arr if dtype is None else arr.astype(dtype), requires_grad=requires_grad)


def eye(n, m=None, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)
