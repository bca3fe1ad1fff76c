"""Seeded mini-batches over in-memory numpy arrays, with exact resume from the middle of an
epoch."""
from __future__ import annotations

import math

import numpy as np

from ..creation import child_generator
from .checks import check_finite


class DataLoader:
    """Iterate over (x, y, ...) in mini-batches, one epoch per `for` loop.

    arrays: a tuple/list of arrays sharing their first dimension (a single array is also
    accepted; its batches are then plain arrays instead of tuples). An array-like with shape,
    len() and integer-array indexing, such as an ImageArray of uint8 images, may stand in for
    an array. Each epoch draws a new permutation from the loader's generator (seed: int,
    np.random.Generator, or None: a child seed of the global generator drawn at construction,
    so `tg.manual_seed` fixes it) and gathers every batch with np.take (or indexing), so the dataset
    itself is never copied. len(loader) is the number of batches per epoch. Float data holding
    NaN or infinity is refused here, before any training.

    An epoch left unfinished (a `break`, an exception) is continued by the next `for` loop
    rather than restarted, so the loader's state alone decides what comes next: state_dict()
    taken after k batches holds the generator state, the epoch's permutation and the position
    k, and a loader given it with load_state_dict() yields exactly the remaining batches of
    that epoch, then the same later epochs as the original. Only one iteration at a time is
    supported (as with PyTorch's single-process loader).
    """

    def __init__(self, arrays, batch_size: int = 100, shuffle: bool = True,
                 seed: int | np.random.Generator | None = None, drop_last: bool = False):
        self._single = isinstance(arrays, np.ndarray)
        arrays = (arrays,) if self._single else tuple(arrays)
        if not arrays:
            raise ValueError("DataLoader: arrays is empty; pass a tuple such as (x, y)")
        for i, a in enumerate(arrays):
            array_like = all(hasattr(a, name) for name in ("shape", "__len__", "__getitem__"))
            if not array_like or len(a.shape) == 0:
                raise TypeError(f"DataLoader: arrays[{i}] must be a numpy array (or an array-like "
                                f"such as ImageArray) with a batch dimension, got "
                                f"{type(a).__name__}{' of shape ()' if array_like else ''}")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"DataLoader: arrays must share their first dimension, got shapes "
                             f"{shapes}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        for i, a in enumerate(arrays):
            check_finite(a, f"DataLoader: arrays[{i}]")
        self.arrays = arrays
        self.num_samples = lengths[0]
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = child_generator(seed)
        self.epoch = 0          # epochs started so far (the current one included)
        self._order = None      # permutation of the epoch in progress, None between epochs
        self._position = 0      # batches of _order already handed out

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def _new_epoch(self) -> None:
        n = self.num_samples
        self._order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        self._position = 0
        self.epoch += 1

    def __iter__(self):
        if self._order is None:
            self._new_epoch()
        order, bs = self._order, self.batch_size
        while self._position < len(self):
            idx = order[self._position * bs:(self._position + 1) * bs]
            self._position += 1
            batch = tuple(np.take(a, idx, axis=0) if isinstance(a, np.ndarray) else a[idx]
                          for a in self.arrays)
            yield batch[0] if self._single else batch
        self._order = None

    def state_dict(self) -> dict:
        """Everything needed to continue exactly from here (plain numpy/python values)."""
        return {
            "rng": self.rng.bit_generator.state,
            "epoch": self.epoch,
            "order": None if self._order is None else self._order.copy(),
            "position": self._position,
            "num_samples": self.num_samples,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict(); the next `for` loop continues the saved epoch where it
        stopped."""
        for key in ("num_samples", "batch_size", "shuffle", "drop_last"):
            if state[key] != getattr(self, key):
                raise ValueError(f"DataLoader.load_state_dict: state has {key}={state[key]!r} "
                                 f"but this loader has {key}={getattr(self, key)!r}")
        order = state["order"]
        if order is not None:
            order = np.asarray(order)
            if order.shape != (self.num_samples,):
                raise ValueError(f"DataLoader.load_state_dict: order has shape {order.shape}, "
                                 f"expected ({self.num_samples},)")
            order = order.copy()
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: position {position} is outside "
                             f"0..{len(self)} batches per epoch")
        self.rng.bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self._order = order
        self._position = position

    def __repr__(self) -> str:
        shapes = ", ".join(str(a.shape) for a in self.arrays)
        return (f"DataLoader(arrays=[{shapes}], batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")
