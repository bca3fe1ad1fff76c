"""Small parameters stored in one flat array, so a stateless update is a few numpy calls for all
of them instead of a few per parameter (what PyTorch's `foreach` kernels do).

The k-layer MLP has 4 small arrays per layer (bias, gamma, beta, a narrow weight): on a 9-layer
network a per-parameter SGD loop is 34 x 3 numpy calls an update (docs/performance.md).
`nn.Module.flatten_parameters()` builds a `FlatParams`: it copies the small parameters into one
array and re-points each `p.data` at its view (same shape, memory order and values). An optimizer
whose group holds exactly those parameters (`FlatParams.of`) gathers their gradients with one
concatenate and updates the flat array in place, so every parameter's array is updated in place.
A parameter whose array was replaced since (`Module.to`, `p.data = ...`, a deep copy) turns the
flat path off for its group, never into a silently wrong update.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, is_

import numpy as np

from ..autograd import Tensor
from ..autograd.xp import concatenate

_data_of, _base_of = attrgetter("data"), attrgetter("base")
SMALL = 1 << 16  # elements; larger parameters stay on their own (gathering costs a full pass)


def _order(a: np.ndarray) -> str:
    return "F" if a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous else "C"


class FlatParams:
    """`params`' arrays as views of `data`; `gather()` fills `grad` with their gradients."""

    generation = 0  # bumped by every new FlatParams (optimizers cache what `of` found)

    def __init__(self, params: Sequence[Tensor]) -> None:
        FlatParams.generation += 1
        self.params = list(params)
        dtypes = {p.data.dtype for p in self.params}
        if len(dtypes) != 1:
            raise TypeError(f"FlatParams: parameters of one dtype expected, got "
                            f"{sorted(map(str, dtypes))}")
        sizes = [p.data.size for p in self.params]
        self.data = np.empty(sum(sizes), dtypes.pop())
        self.grad = np.empty_like(self.data)
        self.orders = []
        at = 0
        for p, size in zip(self.params, sizes):
            old, order = p.data, _order(p.data)
            seg = self.data[at:at + size]
            view = seg.reshape(old.shape[::-1]).T if order == "F" else seg.reshape(old.shape)
            view[...] = old
            p.data = view
            p._flat = self
            self.orders.append(order)
            at += size
        self.views = [p.data for p in self.params]
        self.transposed = [i for i, o in enumerate(self.orders) if o == "F"]

    @staticmethod
    def of(params: Sequence[Tensor]) -> tuple[FlatParams | None, list[Tensor]]:
        """(the flat storage holding exactly the small ones of `params`, or None; the others)."""
        small = [p for p in params if p.data.size <= SMALL]
        flat = getattr(small[0], "_flat", None) if small else None
        if flat is None or not flat.valid() or len(flat.params) != len(small) \
                or {id(p) for p in flat.params} != {id(p) for p in small}:
            return None, list(params)
        return flat, [p for p in params if p.data.size > SMALL]

    def valid(self) -> bool:
        """False once any parameter's array was replaced or no longer shares our memory."""
        return all(map(is_, map(_data_of, self.params), self.views)) and \
            all(map(is_, map(_base_of, self.views), repeat(self.data)))

    def gather(self) -> bool:
        """Copy every gradient into `grad` (one call); False if some parameter has none."""
        try:
            arrays = [p.grad.data for p in self.params]
        except AttributeError:  # a parameter without a gradient
            return False
        for i in self.transposed:  # flattening g.T in C order is flattening g in F order
            arrays[i] = arrays[i].T
        concatenate(arrays, axis=None, out=self.grad, casting="same_kind")
        return True
