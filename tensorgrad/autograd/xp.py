"""The array namespace gradients are written against in an ordinary (first-order) backward.

Every vjp calls `xp.<name>(...)`. Here `xp` is this thin layer over numpy (fast, no graph); under
`create_graph=True` it is `tensorgrad.ops`, whose functions have the same names and signatures,
so the same gradient code builds a differentiable graph. Both get every registered op's name
from the registry (registry.py: here the op's forward on arrays, unless the tables below have a
faster version of it); only the engine's helpers (scaled, reduce_to) are written in both places
(tests/autograd/test_xp.py checks that the names agree).
"""
import math
import sys
from types import SimpleNamespace

import numpy as np

from ..mode import HITS as _HITS
from ..mode import reference_swap

_ONES = {}  # the cached constants (_constant)
# numpy's C dot without the __array_function__ dispatch wrapper around it (a 9-layer step makes
# about 90 calls): the arrays here are always plain ndarrays
dot = getattr(np.dot, "_implementation", np.dot)
concatenate = getattr(np.concatenate, "_implementation", np.concatenate)  # likewise
vdot = getattr(np.vdot, "_implementation", np.vdot)


def _constant(key, make, *args):
    """make(*args), made once per key and kept read-only (the constants below). Their keys hold
    a value's repr, not the value: 0.0 == -0.0 (a division by it would flip an infinity's sign)
    and nan != nan (a new entry on every call)."""
    a = _ONES.get(key)
    if a is None:
        a = _ONES[key] = make(*args)
        a.flags.writeable = False
    return a


def filled(n, dtype, value=1.0):
    """A cached read-only vector of n values `value` (the constant of a row or column sum)."""
    return _constant((n, dtype, repr(value)), np.full, n, value, dtype)


def number(value, dtype):
    """`value` as a cached read-only 0-d array of the float `dtype`: in a ufunc with an array of
    that dtype it computes exactly as the Python number does (NumPy 2 casts the number to the
    array's dtype), without numpy converting a Python number on every call."""
    return _constant((repr(value), dtype, "0-d"), np.array, value, dtype)


def zeros_of(shape, dtype):
    """A cached read-only array of zeros: np.maximum(x, zeros_of(x.shape, x.dtype)) takes
    numpy's contiguous loop, faster than against a 0-d zero (the same values)."""
    return _constant((shape, dtype, "zeros"), np.zeros, shape, dtype)


def fast_sum(a, axis=None, keepdims=False, scale=None):
    """np.add.reduce (times `scale`, if given), but a row or column sum of a float matrix goes
    through BLAS (a product with a constant vector): several times faster than numpy's
    reduction on mini-batch shapes, and a mean costs no extra division."""
    if a.ndim == 2 and a.dtype.kind == "f" and axis is not None:
        ax = axis if axis.__class__ is int else (axis[0] if len(axis) == 1 else None)
        if ax is not None:
            ax %= 2
            value = 1.0 if scale is None else scale
            _HITS["blas_reduction"] += 1
            if ax == 0:
                s = dot(filled(a.shape[0], a.dtype, value), a)
                return s.reshape(1, -1) if keepdims else s
            s = dot(a, filled(a.shape[1], a.dtype, value))
            return s.reshape(-1, 1) if keepdims else s
    s = np.add.reduce(a, axis=axis, keepdims=keepdims)
    return s if scale is None else s * scale


def plain_sum(a, axis=None, keepdims=False, scale=None):
    """fast_sum as numpy reduces (blas_reduction off, tensorgrad/mode.py)."""
    s = np.add.reduce(a, axis=axis, keepdims=keepdims)
    return s if scale is None else s * scale


class Scaled:
    """The gradient `x * scale` (scale a 0-d array or number), not computed yet: the L2 term's
    2 lambda W. The engine adds it into another gradient of the same leaf in one pass (axpy)
    instead of writing it out and adding it, or computes it when no other gradient comes."""

    __slots__ = ("x", "scale", "shape", "dtype")

    def __init__(self, x, scale):
        self.x, self.scale, self.shape, self.dtype = x, scale, x.shape, x.dtype

    def array(self):
        return self.x * self.scale


def scaled(x, scale):
    """x * scale, lazily in an ordinary backward (tensorgrad.ops.scaled multiplies at once)."""
    return Scaled(x, scale)


def reciprocal(n):
    """1 / n for a mean's scale; nan for an empty axis, as numpy's mean gives."""
    return 1.0 / n if n else np.nan


def _sum(a, axis=None, keepdims=False):
    return fast_sum(a, axis, keepdims)


def _mean(a, axis=None, keepdims=False):
    if axis is None:
        n = a.size
    elif axis.__class__ is int:
        n = a.shape[axis]
    else:
        n = math.prod(a.shape[i] for i in axis)
    return fast_sum(a, axis, keepdims, reciprocal(n))


def reduce_to(g, shape, full=None):
    """Sum `g` over the axes where it is larger than `shape`; axes where it is smaller (a
    compact gradient) stay as they are, so the result broadcasts to `shape`.

    `full`: the shape `g` stands for (an elementwise op's output: its vjps may return a compact
    gradient that broadcasts to it). Along an axis that `shape` broadcast (size 1 or missing)
    and `full` has as n > 1, a compact `g` holds n equal terms of the sum: times n."""
    if full is not None and full != g.shape:
        n = compact_count(g.shape, shape, full)
        if n != 1:
            return reduce_to(g, shape) * n
    lead = g.ndim - len(shape)
    ones = tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    if not ones:  # only leading axes: one reduction, and the result is a fresh array
        if lead == 1 and g.ndim == 2:
            return fast_sum(g, 0)
        return np.add.reduce(g, axis=tuple(range(lead))) if lead else g
    g = np.add.reduce(g, axis=tuple(range(lead)) + ones, keepdims=True)
    return g.reshape(g.shape[lead:]) if lead else g


def full_reduce_to(g, shape, full=None):
    """reduce_to without compact gradients (compact_gradient off, tensorgrad/mode.py): `g`
    spread to its full shape (`full`, or `shape`'s where g is smaller), then summed to `shape`."""
    target = np.broadcast_shapes(g.shape, shape if full is None else full)
    return reduce_to(g if g.shape == target else np.broadcast_to(g, target), shape)


def compact_count(g_shape, shape, full):
    """How many equal terms a compact gradient of `g_shape`, standing for its broadcast to
    `full`, sums to per element when reduced to `shape` (see reduce_to)."""
    n, off_g, off = 1, len(full) - len(g_shape), len(full) - len(shape)
    for i, d in enumerate(full):
        if d != 1 and (i < off or shape[i - off] == 1) and (i < off_g or g_shape[i - off_g] == 1):
            n *= d
    return n


def _expand_dims(a, axis):
    shape = list(a.shape)
    shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, 1)
    return a.reshape(shape)


def sum_to(g, shape):
    """Sum `g` down to `shape` (undo numpy broadcasting): the adjoint of broadcast_to."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    if axes:
        g = np.add.reduce(g, axis=axes, keepdims=True)
    return g.reshape(shape)


def is_basic_index(idx):
    """True when `idx` uses only ints, slices, None and Ellipsis (no element is selected twice)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))
               for i in items)


def unindex(g, idx, shape):
    """Scatter-add `g` into zeros of `shape` at `idx`: the adjoint of `x[idx]`.

    Repeated integer indices accumulate (np.add.at); basic indices and boolean masks, which
    never select an element twice, use a plain assignment.
    """
    out = np.zeros(shape, dtype=g.dtype)
    if is_basic_index(idx) or _is_mask(idx):
        out[idx] = g
    else:
        np.add.at(out, idx, g)
    return out


def _is_mask(idx):
    return isinstance(idx, np.ndarray) and idx.dtype == np.bool_


def astype(a, dtype):
    return a.astype(dtype)


def getitem(a, idx):
    return a[idx]


# The fast versions of what the built-in vjps call (the registry adds every other op): methods
# instead of numpy's Python-level wrappers (np.reshape, np.transpose, ...), same result, a
# fraction of the call overhead on the small arrays of a mini-batch
numpy_ns = SimpleNamespace(
    sum=_sum, mean=_mean, sum_to=sum_to, scaled=scaled, reduce_to=reduce_to, unindex=unindex,
    astype=astype, getitem=getitem, exp=np.exp, log=np.log, sign=np.sign, where=np.where,
    matmul=np.matmul,
    reshape=lambda a, shape: a.reshape(shape),
    transpose=lambda a, axes=None: a.transpose(axes),
    swapaxes=lambda a, i, j: a.swapaxes(i, j),
    broadcast_to=np.broadcast_to, expand_dims=_expand_dims,
    squeeze=lambda a, axis=None: a.squeeze(axis),
)

# switched-off fast paths (tensorgrad/mode.py): their plain helpers in the fast walk's namespace
reference_swap(sys.modules[__name__], "blas_reduction", fast_sum=plain_sum)
reference_swap(numpy_ns, "lazy_scaled", scaled=lambda x, scale: x * scale)
reference_swap(numpy_ns, "compact_gradient", reduce_to=full_reduce_to)

# reference mode's namespace (tensorgrad/mode.py): each helper as plain numpy computes it (no
# BLAS sums, no lazy product)
reference_ns = SimpleNamespace(
    sum=lambda a, axis=None, keepdims=False: np.sum(a, axis=axis, keepdims=keepdims),
    mean=lambda a, axis=None, keepdims=False: np.mean(a, axis=axis, keepdims=keepdims),
    scaled=lambda x, scale: x * scale, matmul=np.matmul,
    sum_to=sum_to, unindex=unindex, astype=astype, getitem=getitem, exp=np.exp, log=np.log,
    sign=np.sign, where=np.where, reshape=np.reshape, transpose=np.transpose,
    swapaxes=np.swapaxes, broadcast_to=np.broadcast_to, expand_dims=np.expand_dims,
    squeeze=np.squeeze,
)
