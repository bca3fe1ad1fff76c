"""All differentiable ops as functions (`tensorgrad.exp(x)`), and the Tensor methods built on them.

Each op registers itself where it is defined, in elementwise/reduce/shape/linalg
(tensorgrad/autograd/registry.py): this module's functions and `__all__`, `DIFFERENTIABLE` and
the Tensor methods come from that registry. This module is also the array namespace that
gradients use under create_graph (see xp.py): it registers itself as such below, and the
engine's helpers (scaled, reduce_to) exist here with xp's signatures.
To add an op: one `Op(..., method=True)` line beside its siblings (or `@register(method=True)`
on a Python wrapper), and an entry in tests/ops/op_cases.py (a test fails until you do).
"""
import sys as _sys

import numpy as np

from ..autograd import anomaly as _anomaly
from ..autograd import registry as _registry
from ..autograd.registry import DIFFERENTIABLE
from ..autograd.tensor import apply as _apply
from . import elementwise, linalg, reduce, shape  # noqa: F401  (each registers its ops)
from ._base import Op as _Op
from ._base import Tensor, data_of  # noqa: F401
from .elementwise import (
    abs,
    add,
    div,
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    mul,
    neg,
    not_equal,
    pow,
    sub,
)
from .linalg import matmul
from .shape import astype, getitem, matrix_transpose, reduce_to, reshape, transpose  # noqa: F401


def scaled(x, scale):
    """x * scale: the create_graph twin of xp.scaled (which defers the product)."""
    return mul(x, scale)


def _clone(self):
    """A copy of the data that stays in the graph (its gradient flows back to self)."""
    return astype(self, self.dtype, copy=True)


def _to(self, *args, dtype=None, copy=False, device=None, non_blocking=False):
    """PyTorch's `to`: `x.to(np.float64)`, `x.to("float64")`, `x.to(other)` (other's dtype),
    `x.to("cpu")` (the only device: accepted, nothing moves). Returns self when nothing
    changes (and copy is False); a dtype change stays in the graph, as `astype`."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype if dtype is None else dtype
        elif isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda", "mps", "meta"):
            device = a
        elif a is not None:
            dtype = a if dtype is None else dtype
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(f"to(): tensorgrad runs on numpy, on the CPU only; got device "
                         f"{device!r}")
    dtype = self.dtype if dtype is None else np.dtype(dtype)
    if dtype == self.dtype and not copy:
        return self
    return astype(self, dtype, copy=True)


def _install_operators():
    """Operators and a few properties on Tensor (the registered ops installed their methods)."""
    T = Tensor
    nokw = {}  # shared, never mutated: ops without parameters

    def fwd(fn):  # an Op instance is not a function, so it would not bind as a method
        if isinstance(fn, _Op):
            return lambda self, other: _apply(fn, (self, other), nokw)
        return fn

    def rev(fn):
        if isinstance(fn, _Op):
            return lambda self, other: _apply(fn, (other, self), nokw)
        return lambda self, other: fn(other, self)

    T.__add__, T.__radd__ = fwd(add), rev(add)
    T.__sub__, T.__rsub__ = fwd(sub), rev(sub)
    T.__mul__, T.__rmul__ = fwd(mul), rev(mul)
    T.__truediv__, T.__rtruediv__ = fwd(div), rev(div)
    T.__pow__, T.__rpow__ = fwd(pow), rev(pow)
    T.__matmul__, T.__rmatmul__ = matmul, rev(matmul)
    T.__neg__ = lambda self: _apply(neg, (self,), nokw)
    T.__pos__ = lambda self: self
    T.__abs__ = lambda self: _apply(abs, (self,), nokw)
    T.__lt__, T.__le__, T.__gt__, T.__ge__ = less, less_equal, greater, greater_equal
    T.__eq__, T.__ne__ = equal, not_equal
    T.__and__, T.__rand__ = logical_and, rev(logical_and)
    T.__or__, T.__ror__ = logical_or, rev(logical_or)
    T.__xor__ = logical_xor
    T.__invert__ = logical_not
    T.__getitem__ = getitem
    T.T = property(lambda self: transpose(self))
    T.mT = property(matrix_transpose)
    T.view = reshape
    T.float = lambda self: astype(self, "float32")
    T.double = lambda self: astype(self, "float64")
    T.long = lambda self: astype(self, "int64")
    T.int = lambda self: astype(self, "int32")
    T.bool = lambda self: astype(self, "bool")
    T.to = _to
    T.clone = _clone


_install_operators()
_anomaly.bind(_sys.modules[__name__], "_apply")  # the operators' apply: detect_anomaly swaps it

__all__ = []  # the registry fills it (and this module) with every registered op
_registry.set_graph_namespace(_sys.modules[__name__])
__all__.sort()
