"""Seeded mini-batches over in-memory numpy arrays, with exact resume from the middle of an
epoch, the next batches prepared on a background thread while the current one is used."""
from __future__ import annotations

import math
import queue
import threading

import numpy as np

from .. import mode as _mode
from ..generator import child_generator
from .augment import Normalize
from .checks import check_finite
from .images import ImageArray


def _gather(arrays, idx) -> tuple:
    """The rows idx of every array, as new arrays."""
    return tuple(np.take(a, idx, axis=0) if isinstance(a, np.ndarray) else a[idx]
                 for a in arrays)


def _draws_random_numbers(a) -> bool:
    """Whether a is an ImageArray whose transform may draw random numbers (anything but a
    Normalize): prefetching would draw them ahead of the batches handed out."""
    return isinstance(a, ImageArray) and not (a.transform is None
                                              or isinstance(a.transform, Normalize))


def _prefetch(arrays, order, batch_size, start, end, out, slots, stop) -> None:
    """The prefetch thread: batches start..end-1 of `order`, in order, into the queue `out` as
    (batch, None), or (None, exception) for a batch whose gathering raised (then it ends). It
    takes one of `slots` before gathering each batch (the consumer gives one back per batch it
    takes), and ends when `stop` is set. It holds only what it is given (no loader)."""
    for k in range(start, end):
        slots.acquire()
        if stop.is_set():
            return
        try:
            item = (_gather(arrays, order[k * batch_size:(k + 1) * batch_size]), None)
        except BaseException as exc:  # raised again in the consumer, when its batch is due
            item = (None, exc)
        out.put(item)
        if item[1] is not None:
            return


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

    prefetch_factor (default 0: none): batches gathered (and, from an ImageArray, converted)
    ahead of the one in use, on one background daemon thread that each `for` loop starts and
    ends (numpy's gathers and arithmetic release the GIL, so this can overlap with a training
    step; it pays only when BLAS leaves a core free, see docs/performance.md). The batches and
    their order are the same, bit for bit: a prefetched batch depends only on the epoch's
    permutation, drawn before the thread starts, and no thread crosses into the next epoch.
    state_dict() describes the batches handed out, never those prepared ahead; an exception
    raised while gathering a batch is raised in the `for` loop when that batch is due. An
    ImageArray whose transform draws random numbers (anything but a Normalize) is refused;
    another array-like's indexing must be thread-safe and draw nothing a checkpoint records.
    It is a fast path ("prefetch_batch" in tg.fast_paths(), read when a `for` loop starts):
    in reference mode (tg.set_fast(False)) or with TENSORGRAD_FAST_OFF=prefetch_batch every
    batch is gathered in the consumer's thread. Unlike PyTorch's workers (processes, each
    prefetching prefetch_factor batches), this is one thread of the training process, and it
    needs no num_workers.
    """

    def __init__(self, arrays, batch_size: int = 100, shuffle: bool = True,
                 seed: int | np.random.Generator | None = None, drop_last: bool = False,
                 prefetch_factor: int = 0):
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
        if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor,
                                                               (int, np.integer)) \
                or prefetch_factor < 0:
            raise ValueError(f"DataLoader: prefetch_factor must be a non-negative integer, got "
                             f"{prefetch_factor!r}")
        for i, a in enumerate(arrays):
            if prefetch_factor and _draws_random_numbers(a):
                raise ValueError(f"DataLoader: arrays[{i}] is an ImageArray whose transform "
                                 f"({a.transform!r}) may draw random numbers, which prefetching "
                                 f"would draw ahead of the batches handed out; augment in "
                                 f"fit(augment=...) instead, or use prefetch_factor=0")
        for i, a in enumerate(arrays):
            check_finite(a, f"DataLoader: arrays[{i}]")
        self.arrays = arrays
        self.prefetch_factor = int(prefetch_factor)
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

    def _prefetch_depth(self) -> int:
        """Batches to prepare ahead in the `for` loop starting now (0: none)."""
        if not _mode.FAST and "prefetch_batch" in _mode.OFF:
            return 0
        return self.prefetch_factor

    def __iter__(self):
        if self._order is None:
            self._new_epoch()
        depth = self._prefetch_depth()
        if depth and self._position < len(self):
            yield from self._prefetched(depth)
            return
        order, bs = self._order, self.batch_size
        while self._position < len(self):
            idx = order[self._position * bs:(self._position + 1) * bs]
            self._position += 1
            batch = _gather(self.arrays, idx)
            yield batch[0] if self._single else batch
        self._order = None

    def _prefetched(self, depth: int):
        """The rest of the epoch, each batch prepared on a background thread, at most `depth`
        batches ahead of the one handed out; `_position` counts the batches handed out here, as
        without prefetching. Leaving (the epoch's end, a `break`, an exception, the generator's
        garbage collection) stops the thread and waits for it to end (it finishes the batch in
        hand, if any); what it prepared is dropped."""
        start, end = self._position, len(self)
        out, slots, stop = queue.SimpleQueue(), threading.Semaphore(depth), threading.Event()
        thread = threading.Thread(
            target=_prefetch, args=(self.arrays, self._order, self.batch_size, start, end, out,
                                    slots, stop),
            name="tensorgrad-prefetch", daemon=True)
        thread.start()
        try:
            for k in range(start, end):
                batch, error = out.get()
                slots.release()
                self._position = k + 1
                if error is not None:
                    if hasattr(error, "add_note"):  # Python 3.11+
                        error.add_note(f"(raised on the prefetch thread, gathering batch {k} "
                                       f"of the epoch)")
                    raise error
                _mode.HITS["prefetch_batch"] += 1
                yield batch[0] if self._single else batch
            self._order = None
        finally:
            stop.set()
            slots.release()  # wakes the thread if it waits for a slot
            thread.join()

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
        prefetch = f", prefetch_factor={self.prefetch_factor}" if self.prefetch_factor else ""
        return (f"DataLoader(arrays=[{shapes}], batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}{prefetch})")
