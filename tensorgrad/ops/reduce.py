"""Reductions (sum mean var std max min logsumexp) and softmax / log_softmax over an axis;
the non-differentiable argmax, argmin, all, any and allclose.

Axes arrive normalised (a sorted tuple, or None for all): a vjp re-expands `g` to the reduced
shape with size-1 axes and lets broadcasting carry it back over the input.
"""
import math
import sys
from collections import namedtuple

import numpy as np

from ..autograd.tracing import static_read, value_read
from ..autograd.xp import dot, fast_sum, plain_sum, reciprocal
from ..mode import HITS as _HITS
from ..mode import reference_swap
from ._base import (
    Op,
    Tensor,
    axis_or_dim,
    data_of,
    keep,
    nondiff,
    normalize_axis,
    reduced_shape,
    register,
    shape_of,
)
from .elementwise import maximum, minimum


def _count(shape, axis):
    if axis is None:
        return math.prod(shape)
    if len(axis) == 1:
        return shape[axis[0]]
    return math.prod(shape[a] for a in axis)


def _expand(xp, g, x, axis, keepdims):
    """`g` of a reduction over `axis` reshaped so it broadcasts against the input `x`."""
    return g if keepdims else xp.reshape(g, reduced_shape(x.shape, axis))


# The gradients of sum and mean stay compact (g with size-1 axes where x was reduced): the
# engine broadcasts them only where an op needs a full-size gradient.
_sum = Op("sum", fast_sum,
          lambda xp, g, out, x, axis, keepdims: _expand(xp, g, x, axis, keepdims))


_mean = Op("mean",
           lambda x, axis, keepdims:
               fast_sum(x, axis, keepdims, reciprocal(_count(x.shape, axis))),
           lambda xp, g, out, x, axis, keepdims:
               _expand(xp, g, x, axis, keepdims) / _count(x.shape, axis))


def _var_forward(x, axis, keepdims, ddof):
    n = _count(x.shape, axis)
    m = fast_sum(x, axis, True)
    m /= n
    d = x - m
    d *= d
    return fast_sum(d, axis, keepdims) / (n - ddof)


# d var / dx = 2 (x - mean) / (n - ddof); the scale goes on the (small) reduced g first
_var = Op("var", _var_forward,
          lambda xp, g, out, x, axis, keepdims, ddof:
              (x - xp.mean(x, axis, keepdims=True))
              * (_expand(xp, g, x, axis, keepdims) * (2 / (_count(x.shape, axis) - ddof))))


def _float_result(xs):
    dtype = np.result_type(*xs)
    if dtype.kind != "f":
        raise TypeError(f"sum_squares: inputs must be floating point, got {dtype}")
    return dtype


def _sum_squares_forward(*xs):
    dtype = _float_result(xs)
    total = dtype.type(0)
    for x in xs:
        v = x.ravel(order="K")  # a view of a contiguous array, C or Fortran order
        total += dot(v, v)  # one BLAS pass, no squared temporary
    _HITS["blas_reduction"] += 1
    return np.asarray(total, dtype=dtype)


def _sum_squares_vjp_all(xp, g, out, xs, retain_graph=True):
    s = g * 2  # once for all the inputs
    return [xp.scaled(x, s) for x in xs]


# sum of x_i ** 2 over every element of every input (the L2 penalty): d/dx_i = 2 g x_i, handed
# over lazily (xp.scaled): the engine folds it into the weight's other gradient in one pass
_sum_squares = Op("sum_squares", _sum_squares_forward,
                  lambda xp, g, out, *xs, argnum: xp.scaled(xs[argnum], g * 2), variadic=True,
                  vjp_all=_sum_squares_vjp_all)


def _extreme_vjp(xp, g, out, x, axis, keepdims):
    """Gradient of max/min: to the arg-extremes, split evenly between ties (as torch.amax)."""
    hit = x == _expand(xp, out, x, axis, keepdims)
    count = xp.astype(xp.sum(hit, axis, keepdims=True), x.dtype)
    return xp.where(hit, _expand(xp, g, x, axis, keepdims) / count, 0)


_max = Op("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), _extreme_vjp)
_min = Op("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims), _extreme_vjp)


def _logsumexp_forward(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return out.reshape(() if axis is None else
                       tuple(s for i, s in enumerate(x.shape) if i not in axis))


_logsumexp = Op("logsumexp", _logsumexp_forward,
                lambda xp, g, out, x, axis, keepdims:
                    _expand(xp, g, x, axis, keepdims)
                    * xp.exp(x - _expand(xp, out, x, axis, keepdims)))


def _softmax_forward(x, axis):
    e = np.exp(x - np.maximum.reduce(x, axis=axis, keepdims=True))
    e /= fast_sum(e, axis, True)
    return e


def _log_softmax_forward(x, axis):
    z = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    s = fast_sum(np.exp(z), axis, True)
    z -= np.log(s)
    return z


_softmax = Op("softmax", _softmax_forward,
              lambda xp, g, out, x, axis: out * (g - xp.sum(g * out, axis, keepdims=True)))
_log_softmax = Op("log_softmax", _log_softmax_forward,
                  lambda xp, g, out, x, axis: g - xp.exp(out) * xp.sum(g, axis, keepdims=True))


# switched-off fast paths (tensorgrad/mode.py): the forwards as plain numpy computes them
_module = sys.modules[__name__]
reference_swap(_module, "blas_reduction", fast_sum=plain_sum)  # mean, var, softmax
reference_swap(_sum, "blas_reduction",
               forward=lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims))
reference_swap(_var, "blas_reduction", forward=lambda x, axis, keepdims, ddof:
               np.var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def _plain_sum_squares(*xs):
    dtype = _float_result(xs)
    total = dtype.type(0)
    for x in xs:
        total += np.sum(np.square(x))
    return np.asarray(total, dtype=dtype)


reference_swap(_sum_squares, "blas_reduction", forward=_plain_sum_squares)


# ---- public functions ---------------------------------------------------------------------------
@static_read
def _ndim(x):
    return x.data.ndim if isinstance(x, Tensor) else np.ndim(x)


@register(method=True)
def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Sum over `axis` (int, tuple or None = all); PyTorch's dim=/keepdim= also accepted."""
    return _sum(x, axis=normalize_axis("sum", _ndim(x), axis, dim),
                keepdims=keep("sum", keepdims, keepdim))


@register(method=True)
def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Arithmetic mean over `axis`."""
    return _mean(x, axis=normalize_axis("mean", _ndim(x), axis, dim),
                 keepdims=keep("mean", keepdims, keepdim))


@register
def sum_squares(*xs):
    """sum(x ** 2) over all elements of all inputs, as one 0-d tensor (a squared L2 norm).

    One op and one BLAS dot product per input, where `sum(x ** 2)` makes a squared temporary
    per input and two graph nodes: the L2 penalty over a model's weight matrices uses it.
    """
    if not xs:
        raise ValueError("sum_squares: needs at least one input")
    return _sum_squares(*xs)


def _ddof(name, ddof, correction, unbiased):
    if correction is not None:
        return int(correction)
    if unbiased is not None:
        return 1 if unbiased else 0
    return int(ddof)


@register(method=True)
def var(x, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=None, correction=None,
        unbiased=None):
    """Variance over `axis`; numpy's population variance by default (ddof=0).

    PyTorch's `correction=` (or `unbiased=True`, i.e. ddof=1) is accepted too.
    """
    axis = normalize_axis("var", _ndim(x), axis, dim)
    ddof = _ddof("var", ddof, correction, unbiased)
    n = _count(shape_of(x), axis)
    if n - ddof <= 0:
        raise ValueError(f"var: {n} element(s) along axis {axis} with ddof={ddof}: the variance "
                         f"is undefined (shape {shape_of(x)})")
    return _var(x, axis=axis, keepdims=keep("var", keepdims, keepdim), ddof=ddof)


@register(method=True)
def std(x, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=None, correction=None,
        unbiased=None):
    """Standard deviation: sqrt(var(...)), same arguments as `var`."""
    from .elementwise import sqrt
    return sqrt(var(x, axis, keepdims, ddof, dim=dim, keepdim=keepdim, correction=correction,
                    unbiased=unbiased))


def _check_nonempty(name, x, axis):
    shape = shape_of(x)
    if _count(shape, axis) == 0:
        raise ValueError(f"{name}: reduction over an empty axis (shape {shape}, axis {axis})")


# torch.max(x, dim) / torch.min(x, dim): a named pair, as torch.return_types.max
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _extreme(name, op, arg, pairwise, x, axis, keepdims, dim, keepdim):
    if isinstance(axis, Tensor):  # torch.max(a, b): the elementwise maximum
        if dim is not None or keepdim is not None:
            raise TypeError(f"{name}: a second tensor takes no dim=/keepdim=")
        return pairwise(x, axis)
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))):
        raise TypeError(f"{name}: dim= takes one int and returns (values, indices), as torch."
                        f"{name} does; for the values over several axes pass axis=, got "
                        f"dim={dim!r}")
    ax = normalize_axis(name, _ndim(x), axis, dim)
    _check_nonempty(name, x, ax)
    kd = keep(name, keepdims, keepdim)
    values = op(x, axis=ax, keepdims=kd)
    if dim is None:
        return values
    return ValuesIndices(values, arg(x, dim=dim, keepdim=kd))


@register(method=True)
def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Largest value over `axis` (int, tuple or None = all): values only, as numpy's max and
    torch.amax. With `dim=` (one int) the pair (values, indices), as torch.max(x, dim);
    `max(a, b)` of two tensors is `maximum(a, b)`, as torch.max(a, b)."""
    return _extreme("max", _max, argmax, maximum, x, axis, keepdims, dim, keepdim)


@register(method=True)
def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Smallest value over `axis`: as `max` (values; (values, indices) with dim=)."""
    return _extreme("min", _min, argmin, minimum, x, axis, keepdims, dim, keepdim)


@register(method=True)
def logsumexp(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """log(sum(exp(x))) over `axis`, stable for large inputs."""
    return _logsumexp(x, axis=normalize_axis("logsumexp", _ndim(x), axis, dim),
                      keepdims=keep("logsumexp", keepdims, keepdim))


def _one_axis(name, x, axis, dim):
    if dim is None and axis.__class__ is int and 0 < _ndim(x) > axis >= 0:
        return axis  # the usual call: one valid non-negative axis
    if _ndim(x) == 0:  # a 0-d input has one element: axis 0 / -1 mean "all" (as in PyTorch)
        normalize_axis(name, 0, axis if dim is None else None, dim)
        return None
    ax = normalize_axis(name, _ndim(x), axis if dim is None else None, dim)
    if ax is None or len(ax) != 1:
        raise ValueError(f"{name}: needs exactly one axis, got {axis if dim is None else dim}")
    return ax[0]


@register(method=True)
def softmax(x, axis=-1, *, dim=None):
    """exp(x) / sum(exp(x)) along one axis (default the last), computed stably."""
    return _softmax(x, axis=_one_axis("softmax", x, axis, dim))


@register(method=True)
def log_softmax(x, axis=-1, *, dim=None):
    """x - logsumexp(x) along one axis (default the last), computed stably."""
    return _log_softmax(x, axis=_one_axis("log_softmax", x, axis, dim))




# ---- non-differentiable -------------------------------------------------------------------------
def _arg_axis(name, x, axis, dim):
    """One axis (an int) or None (over the flattened input), numpy's axis= or torch's dim=."""
    axis = axis_or_dim(name, axis, dim)
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: takes one axis (an int) or None, got {axis!r}")
    ax = normalize_axis(name, _ndim(x), axis)
    return None if ax is None else ax[0]  # (a 0-d input: its one element)


def _arg(name, fn, x, axis, keepdims, dim, keepdim):
    ax = _arg_axis(name, x, axis, dim)
    if _count(shape_of(x), None if ax is None else (ax,)) == 0:
        raise ValueError(f"{name}: an empty axis has no {name[3:]} (shape {shape_of(x)})")
    return nondiff(fn, x, axis=ax, keepdims=keep(name, keepdims, keepdim))


@register(method=True, differentiable=False)
def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the largest value along one axis (None: of the flattened input), int64; ties
    give the first, as numpy's and torch's."""
    return _arg("argmax", np.argmax, x, axis, keepdims, dim, keepdim)


@register(method=True, differentiable=False)
def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the smallest value along one axis (None: of the flattened input), int64."""
    return _arg("argmin", np.argmin, x, axis, keepdims, dim, keepdim)


@register(method=True, differentiable=False)
def all(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Whether every element over `axis` (int, tuple or None = all) is nonzero: a bool tensor."""
    return nondiff(np.all, x, axis=normalize_axis("all", _ndim(x), axis, dim),
                   keepdims=keep("all", keepdims, keepdim))


@register(method=True, differentiable=False)
def any(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Whether some element over `axis` is nonzero: a bool tensor."""
    return nondiff(np.any, x, axis=normalize_axis("any", _ndim(x), axis, dim),
                   keepdims=keep("any", keepdims, keepdim))


@register(method=True, differentiable=False)
@value_read("tg.allclose of a traced tensor", "its Python bool would freeze the first call's "
            "values: compare outside the fused function")
def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether |input - other| <= atol + rtol * |other| everywhere (a Python bool), as
    torch.allclose and np.allclose."""
    return bool(np.allclose(data_of(input), data_of(other), rtol=rtol, atol=atol,
                            equal_nan=equal_nan))
