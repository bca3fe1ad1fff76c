"""Tensor factories: zeros, ones, *_like, randn/rand (seeded), arange, eye, full."""
import numpy as np

from .autograd import Tensor
from .autograd.tracing import random_draw

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "randn", "rand",
           "arange", "eye", "as_generator"]

DEFAULT_DTYPE = np.float32


def as_generator(seed=None):
    """A numpy Generator from a seed, an existing Generator (returned as is) or None (fresh)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


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
    """Standard normal samples from `generator` (a numpy Generator) or a fresh one from `seed`."""
    random_draw("tg.randn")
    rng = as_generator(generator if generator is not None else seed)
    return Tensor(rng.standard_normal(_shape(shape), dtype=np.float64).astype(dtype),
                  requires_grad=requires_grad)


def rand(*shape, generator=None, seed=None, dtype=DEFAULT_DTYPE, requires_grad=False):
    """Uniform samples on [0, 1) from `generator` or a fresh Generator from `seed`."""
    random_draw("tg.rand")
    rng = as_generator(generator if generator is not None else seed)
    return Tensor(rng.random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Evenly spaced values like np.arange; integer arguments give int64, floats float32."""
    arr = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and arr.dtype == np.float64:
        dtype = DEFAULT_DTYPE
    return Tensor(arr if dtype is None else arr.astype(dtype), requires_grad=requires_grad)


def eye(n, m=None, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)
