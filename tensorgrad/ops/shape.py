"""Shape ops: reshape, transpose, broadcasting, indexing, concatenate, pad, dtype casts.

Their gradients move values around without arithmetic: reshape back, transpose by the inverse
permutation, sum a broadcast back, scatter-add what indexing gathered. squeeze, unsqueeze,
flatten, expand and stack are compositions of these.
"""
import numpy as np

from ..autograd.tensor import as_tensor
from ..autograd.tracing import value_read
from ..autograd.xp import compact_count
from ..autograd.xp import sum_to as _np_sum_to
from ..autograd.xp import unindex as _np_unindex
from ._base import Op, Tensor, alias, register, shape_of

_reshape = Op("reshape", np.reshape,
              lambda xp, g, out, x, shape: xp.reshape(g, x.shape))
_transpose = Op("transpose", np.transpose,
                lambda xp, g, out, x, axes: xp.transpose(g, tuple(np.argsort(axes))))
_broadcast_to = Op("broadcast_to", np.broadcast_to,
                   lambda xp, g, out, x, shape: xp.sum_to(g, x.shape))
_sum_to = Op("sum_to", _np_sum_to,
             lambda xp, g, out, x, shape: xp.broadcast_to(g, x.shape))
_getitem = Op("getitem", lambda x, idx: x[idx],
              lambda xp, g, out, x, idx: xp.unindex(g, idx, x.shape))
_unindex = Op("unindex", _np_unindex,
              lambda xp, g, out, x, idx, shape: xp.getitem(g, idx))
_astype = Op("astype", lambda x, dtype, copy=False: x.astype(dtype, copy=copy),
             lambda xp, g, out, x, dtype, copy=False: xp.astype(g, x.dtype))


def _concat_vjp(xp, g, out, *xs, axis, argnum):
    start = sum(x.shape[axis] for x in xs[:argnum])
    idx = (slice(None),) * axis + (slice(start, start + xs[argnum].shape[axis]),)
    return xp.getitem(g, idx)


_concatenate = Op("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis), _concat_vjp,
                  variadic=True)


def _pad_vjp(xp, g, out, x, pad_width, value):
    return xp.getitem(g, tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)))


_pad = Op("pad", lambda x, pad_width, value: np.pad(x, pad_width, constant_values=value),
          _pad_vjp)


# ---- public functions ---------------------------------------------------------------------------
_shape_of = shape_of


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


@register(method=True)
def reshape(x, *shape, **kwargs):
    """Same data in a new shape (one dimension may be -1); a tuple, separate sizes or shape=."""
    shape = _shape_arg(shape or (kwargs.pop("shape"),))
    old = _shape_of(x)
    if shape == old:
        return x if isinstance(x, Tensor) else as_tensor(x)
    return _reshape(x, shape=shape)


@register(method=True)
def permute(x, *axes, **kwargs):
    """Permute the axes: `axes` lists all of them (numpy's transpose, PyTorch's permute),
    reversed when none are given."""
    axes = axes or (kwargs.pop("axes", None),)
    nd = len(_shape_of(x))
    axes = _shape_arg(axes) if axes and axes != (None,) else tuple(range(nd))[::-1]
    if sorted(a % nd if nd else a for a in axes) != list(range(nd)):
        raise ValueError(f"permute: axes {axes} are not a permutation of the {nd} axes of a "
                         f"tensor of shape {_shape_of(x)} (to swap two axes use swapaxes)")
    axes = tuple(a % nd for a in axes)
    if axes == tuple(range(nd)):
        return x if isinstance(x, Tensor) else as_tensor(x)
    return _transpose(x, axes=axes)


@register(method=True)
def transpose(x, *axes, **kwargs):
    """Two axes given apart, `x.transpose(0, 1)`, swap them as PyTorch's transpose does (on a
    2-D tensor too, where numpy's would keep the order); otherwise numpy's: a permutation of
    all the axes (`x.transpose(2, 0, 1)`, `x.transpose((1, 0))`), reversed when none are given."""
    if len(axes) == 2 and not kwargs and all(isinstance(a, (int, np.integer)) for a in axes):
        return swapaxes(x, *axes)
    return permute(x, *axes, **kwargs)



@register(method=True)
def swapaxes(x, axis1, axis2):
    """Exchange two axes (PyTorch's `transpose(dim0, dim1)`)."""
    nd = len(_shape_of(x))
    perm = list(range(nd))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(x, tuple(perm))


@register
def matrix_transpose(x):
    """Swap the last two axes (`mT`)."""
    if len(_shape_of(x)) < 2:
        raise ValueError(f"mT: needs at least 2 dims, got shape {_shape_of(x)}")
    return swapaxes(x, -1, -2)


@register(method=True)
def broadcast_to(x, shape):
    """Broadcast to `shape` (a read-only view in numpy; the gradient sums it back)."""
    shape = tuple(shape)
    if _shape_of(x) == shape:
        return x if isinstance(x, Tensor) else as_tensor(x)
    return _broadcast_to(x, shape=shape)


@register(method=True)
def expand(x, *sizes):
    """PyTorch's expand: broadcast_to where -1 keeps a dimension's size."""
    sizes = _shape_arg(sizes)
    old = (1,) * (len(sizes) - len(_shape_of(x))) + _shape_of(x)
    return broadcast_to(x, tuple(o if s == -1 else s for s, o in zip(sizes, old)))


@register(method=True)
def sum_to(x, shape):
    """Sum a broadcast result back down to `shape` (the adjoint of broadcast_to)."""
    shape = tuple(shape)
    if _shape_of(x) == shape:
        return x if isinstance(x, Tensor) else as_tensor(x)
    return _sum_to(x, shape=shape)


def reduce_to(x, shape, full=None):
    """Sum `x` over the axes where it is larger than `shape` (broadcast axes), keeping axes
    where it is smaller: the result broadcasts to `shape` (the engine's unbroadcast step).
    `full`: the shape a compact `x` stands for, as in tensorgrad.autograd.xp.reduce_to."""
    xs = _shape_of(x)
    n = 1 if full is None or full == xs else compact_count(xs, shape, full)
    lead = len(xs) - len(shape)  # negative for a compact x with fewer axes: align the right
    target = tuple(1 if s == 1 else d for s, d in zip(shape[max(0, -lead):], xs[max(0, lead):]))
    out = sum_to(x, target)
    return out if n == 1 else out * n


@register(method=True)
def squeeze(x, axis=None, *, dim=None):
    """Remove size-1 axes (all of them, or the given ones)."""
    shape = _shape_of(x)
    axis = dim if dim is not None else axis
    if axis is None:
        new = tuple(s for s in shape if s != 1)
    else:
        axes = {a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)}
        bad = [a for a in axes if shape[a] != 1]
        if bad:
            raise ValueError(f"squeeze: axis {bad[0]} has size {shape[bad[0]]}, not 1 "
                             f"(shape {shape})")
        new = tuple(s for i, s in enumerate(shape) if i not in axes)
    return reshape(x, new)


@register(method=True)
def expand_dims(x, axis):
    """Insert a size-1 axis at `axis` (PyTorch: unsqueeze)."""
    shape = list(_shape_of(x))
    axis = axis % (len(shape) + 1) if axis < 0 else axis
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


unsqueeze = register(expand_dims, name="unsqueeze", method=True)


@register(method=True)
def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one (all of them by default, giving 1-D)."""
    shape = _shape_of(x)
    if len(shape) == 0:
        return reshape(x, (1,))
    s, e = start_dim % len(shape), end_dim % len(shape)
    merged = int(np.prod(shape[s:e + 1]))
    return reshape(x, shape[:s] + (merged,) + shape[e + 1:])


@value_read("indexing with a traced tensor",
            "its values would stay the first call's (and a boolean mask gives a shape that "
            "depends on the values): select with tg.where, or index with a constant")
def _index_arg(idx):
    """Tensors inside an index become arrays; lists become arrays (numpy's fancy indexing)."""
    if isinstance(idx, tuple):
        return tuple(_index_arg(i) for i in idx)
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, list):
        return np.asarray(idx)
    return idx


@register
def getitem(x, idx):
    """x[idx] with slices, ints, None, Ellipsis, boolean masks and integer arrays.

    Integer arrays may repeat an index: the gradient accumulates over the repeats.
    """
    return _getitem(x, idx=_index_arg(idx))


@register
def unindex(g, idx, shape):
    """Scatter-add `g` into a zero tensor of `shape` at `idx` (the adjoint of getitem)."""
    return _unindex(g, idx=_index_arg(idx), shape=tuple(shape))


@register(method=True)
def astype(x, dtype, copy=False):
    """Cast to `dtype`; between float dtypes the gradient is cast back."""
    dtype = np.dtype(dtype)
    if not copy and (x.dtype if isinstance(x, Tensor) else np.result_type(x)) == dtype:
        return x if isinstance(x, Tensor) else as_tensor(x)
    return _astype(x, dtype=dtype, copy=copy)


@register
def concatenate(tensors, axis=0, *, dim=None):
    """Join tensors along an existing axis (PyTorch: cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    axis = dim if dim is not None else axis
    nd = len(_shape_of(tensors[0]))
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated "
                         "(use stack)")
    return _concatenate(*tensors, axis=axis % nd)


cat = alias("cat", concatenate)


@register
def stack(tensors, axis=0, *, dim=None):
    """Join tensors along a new axis."""
    axis = dim if dim is not None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {_shape_of(t) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    nd = len(_shape_of(tensors[0])) + 1
    return concatenate([expand_dims(t, axis % nd) for t in tensors], axis=axis % nd)


@register(method=True)
def pad(x, pad_width, mode="constant", value=0.0, *, constant_values=None):
    """Pad with a constant, numpy's `np.pad` pad_width convention ((before, after) per axis)."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    if constant_values is not None:
        value = constant_values
    nd = len(_shape_of(x))
    if nd == 0:
        return x if isinstance(x, Tensor) else as_tensor(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (nd, 2))
    pw = tuple((int(a), int(b)) for a, b in pw)
    if any(a < 0 or b < 0 for a, b in pw):
        raise ValueError(f"pad: negative pad width {pw}")
    return _pad(x, pad_width=pw, value=value)
