"""Tensor factories: zeros, ones, *_like, randn/rand/randint/randperm, arange, eye, full; the
global generator (`manual_seed`, `get_rng_state`, `set_rng_state`).

One global numpy Generator (PCG64) stands behind every draw that names no seed or generator:
`tg.randn` and friends, the `nn.init` initialisers and `F.dropout` draw from it directly, as
PyTorch's functions draw from its default generator. An object that keeps a generator of its
own (Dropout, DataLoader, the augmentations) and is built without a seed takes a private child
seed from it when it is constructed (`child_generator`), and checkpoints its own state.
"""
import numpy as np

from .autograd import Tensor
from .autograd.tracing import random_draw

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "randn", "rand",
           "randint", "randperm", "arange", "eye", "as_generator", "child_generator",
           "child_seed", "default_generator", "manual_seed", "initial_seed", "get_rng_state",
           "set_rng_state"]

DEFAULT_DTYPE = np.float32

_initial_seed = int(np.random.SeedSequence().entropy)  # fresh randomness until manual_seed
default_generator = np.random.Generator(np.random.PCG64(_initial_seed))
"""The global generator. `manual_seed` reseeds this object in place (a reference stays valid)."""


def manual_seed(seed):
    """Seed the global generator (PyTorch's name); returns it. Two runs after the same
    `manual_seed` draw the same numbers everywhere no explicit seed is given; they are numpy's
    PCG64 numbers, not PyTorch's."""
    global _initial_seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: the seed must be a non-negative integer, got {seed!r}")
    _initial_seed = int(seed)
    default_generator.bit_generator.state = np.random.PCG64(_initial_seed).state
    return default_generator


def initial_seed():
    """The seed of the last `manual_seed` (or the random one chosen at import)."""
    return _initial_seed


def get_rng_state():
    """The global generator's state: numpy's bit generator state (a dict, JSON-able), where
    PyTorch returns a ByteTensor. Give it back to `set_rng_state` to replay the same draws."""
    return default_generator.bit_generator.state


def set_rng_state(state):
    """Restore a state from `get_rng_state`."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError(f"set_rng_state: expected a state from tg.get_rng_state() (a PCG64 "
                         f"state dict), got {type(state).__name__}")
    default_generator.bit_generator.state = state


def child_seed():
    """A seed drawn from the global generator (for an object built without a seed)."""
    return int(default_generator.integers(0, 2 ** 63))


def as_generator(seed=None):
    """The Generator to draw from: an existing Generator as is, a new one from an int seed (or
    SeedSequence), or the global generator for None (each draw then advances it)."""
    if seed is None:
        return default_generator
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def child_generator(seed=None):
    """A generator for an object to keep: as `as_generator`, but None gives a new Generator of
    its own, seeded by a child seed of the global generator (so `manual_seed` fixes it too)."""
    return np.random.default_rng(child_seed()) if seed is None else as_generator(seed)


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
