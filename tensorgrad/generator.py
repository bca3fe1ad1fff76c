"""The global generator (`manual_seed`, `get_rng_state`, `set_rng_state`) and how objects get
theirs, apart from the Tensor so that data code can use it.

One global numpy Generator (PCG64) stands behind every draw that names no seed or generator:
`tg.randn` and friends, the `nn.init` initialisers and `F.dropout` draw from it directly, as
PyTorch's functions draw from its default generator. An object that keeps a generator of its
own (Dropout, DataLoader, the augmentations) and is built without a seed takes a private child
seed from it when it is constructed (`child_generator`), and checkpoints its own state.
"""
import numpy as np

__all__ = ["as_generator", "child_generator", "child_seed", "default_generator", "manual_seed",
           "initial_seed", "get_rng_state", "set_rng_state"]

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
