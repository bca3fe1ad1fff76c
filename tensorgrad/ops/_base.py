"""Small helpers the op modules share: array access, non-differentiable results, axis arguments."""
import importlib

import numpy as np

from ..autograd import Tensor
from ..autograd.function import Op
from ..autograd.registry import alias, register
from ..autograd.tracing import record_nondiff, static_read

__all__ = ["Op", "register", "alias", "Tensor", "data_of", "shape_of", "nondiff",
           "axis_or_dim", "normalize_axis", "reduced_shape"]

_t = importlib.import_module("..autograd.tensor", __package__)  # (its `_tracer` hook)


def data_of(x):
    """The array behind a Tensor, or the value itself (numbers, arrays)."""
    return x.data if isinstance(x, Tensor) else x


@static_read
def shape_of(x):
    """The shape of a Tensor's array, an array or a nested sequence (static: allowed on a
    traced tensor)."""
    if isinstance(x, Tensor):
        return x.data.shape
    return x.shape if x.__class__ is np.ndarray else np.shape(x)


def nondiff(fn, *args, **kwargs):
    """Apply a numpy function whose result carries no gradient (comparisons, sign, ...): no
    graph node; inside a fuse trace, a recorded step without gradient."""
    if _t._tracer is not None:
        return record_nondiff(fn, args, kwargs)
    out = fn(*[data_of(a) for a in args], **kwargs)
    return Tensor._wrap(out if out.__class__ is np.ndarray else np.asarray(out))


def axis_or_dim(name, axis, dim):
    """numpy's `axis=` or PyTorch's `dim=`, whichever was given (not both)."""
    if dim is None:
        return axis
    if axis is not None:
        raise TypeError(f"{name}: pass axis= or dim=, not both")
    return dim


def normalize_axis(name, ndim, axis=None, dim=None):
    """numpy `axis=` or PyTorch `dim=` (int, tuple or None) as a sorted tuple of axes, or None."""
    if dim is None:  # fast paths: all axes, or one valid non-negative axis
        if axis is None:
            return None
        if axis.__class__ is int and 0 <= axis < ndim:
            return (axis,)
    axis = axis_or_dim(name, axis, dim)
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(f"{name}: axis {a} is out of range for a tensor with {ndim} dims")
        out.append(int(a) % max(ndim, 1))
    if ndim == 0:
        return None
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(out))


_REDUCED = {}


def reduced_shape(shape, axis):
    """`shape` with the reduced axes kept as size 1 (how to re-expand a reduction's gradient)."""
    key = (shape, axis)
    out = _REDUCED.get(key)
    if out is None:
        if len(_REDUCED) > 4096:  # a bounded memo: mini-batch work repeats a few shapes
            _REDUCED.clear()
        out = _REDUCED[key] = (1,) * len(shape) if axis is None else \
            tuple(1 if i in axis else s for i, s in enumerate(shape))
    return out


def keep(name, keepdims, keepdim):
    """numpy `keepdims=` or PyTorch `keepdim=`."""
    if keepdim is not None:
        return bool(keepdim)
    return bool(keepdims)
