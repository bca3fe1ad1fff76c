"""Lowerings: versions of an op's forward or vjp specialised for a fused program's fixed shapes.

`LOWERINGS[op name](i, examples, **params)` returns a version of the forward (i None; examples:
the inputs) or of input i's vjp (examples: g, out, inputs) for arrays of the examples' shapes
and dtypes, or None where the general function stays. A fused program, whose shapes never
change, asks once and then runs the result instead of the general function, so a lowering must
compute the same values (a vjp's version may instead return the gradient already summed to
exactly its input's shape) and read only static properties of the examples. The maths stays in
tensorgrad/ops/; tests/compile/test_lowerings.py checks each lowering against it.
"""
import numpy as np

from ..autograd.xp import dot, filled, number, reciprocal, zeros_of
from ..ops import elementwise, linalg, reduce

__all__ = ["LOWERINGS", "lowering_for"]


def _float(*arrays):
    return all(a.dtype.kind == "f" for a in arrays)


def _sub(i, examples):
    """b's gradient when b is a row vector under a float matrix (batch norm's x - mean): minus
    the column sums of g as one product with a constant -1 vector. Only for a full g: a compact
    one (a mean's (1, c)) stands for more rows than it has."""
    g, out, a, b = examples if i == 1 else (None,) * 4
    if g is None or g.ndim != 2 or g.shape != out.shape or b.shape != g.shape[1:] or \
            g.dtype.kind != "f":
        return None
    minus_ones = filled(g.shape[0], g.dtype, -1.0)
    return lambda xp, g, out, a, b: dot(minus_ones, g)


def _square(i, examples):
    """The constant 2 as a 0-d array of g's dtype (xp.number)."""
    if i is None:
        return None
    g = examples[0]
    two = number(2, g.dtype) if _float(g) else None
    return None if two is None else (lambda xp, g, out, x: x * (g * two))


def _rsqrt(i, examples):
    """The constants as 0-d arrays (xp.number)."""
    if i is None:
        x, = examples
        one = number(1, x.dtype) if _float(x) else None
        return None if one is None else (lambda x: one / np.sqrt(x))
    g = examples[0]
    half = number(-0.5, g.dtype) if _float(g) else None
    return None if half is None else (lambda xp, g, out, x: g * half * out / x)


def _relu(i, examples):
    """Zero as an array (xp.zeros_of, xp.number)."""
    x = examples[0] if i is None else examples[2]
    if not _float(x):
        return None
    if i is None:
        zeros = zeros_of(x.shape, x.dtype)
        return lambda x: np.maximum(x, zeros)
    zero = number(0, x.dtype)
    return lambda xp, g, out, x: g * (out > zero)


def _mean(i, examples, axis, keepdims):
    """The column means of a float matrix (batch norm's): the forward is one product with the
    constant 1/n vector, the vjp g reshaped and divided, with no axis logic."""
    x = examples[0] if i is None else examples[2]
    if x.ndim != 2 or axis != (0,) or keepdims:
        return None
    n, row = x.shape[0], (1, x.shape[1])
    if i is None:
        if x.dtype.kind != "f":
            return None
        weights = filled(n, x.dtype, reciprocal(n))
        return lambda x: dot(weights, x)
    g = examples[0]
    if g.shape != row[1:] or g.dtype.kind != "f":
        return None
    n = number(n, g.dtype)  # as a 0-d array (xp.number): the same quotient, a cheaper call
    return lambda xp, g, out, x: g.reshape(row) / n


def _linear(i, examples):
    """The weight's gradient of a 2-D linear layer: the weight's memory order read once, not
    on every call."""
    if i != 1:
        return None
    g, out, x, w = examples[:4]
    if g.ndim != 2 or x.ndim != 2 or w.ndim != 2:
        return None
    if linalg._in_out_order(w):  # stored (in, out), see nn.Linear: the gradient in that order
        return lambda xp, g, out, x, weight, bias: np.matmul(x.T, g).T
    return lambda xp, g, out, x, weight, bias: np.matmul(g.T, x)


LOWERINGS = {"sub": _sub, "square": _square, "rsqrt": _rsqrt, "relu": _relu, "mean": _mean,
             "linear": _linear}

# the ops the lowerings are written for: another op of the same name (a user's) keeps its own
_OPS = {"sub": elementwise.sub, "square": elementwise.square, "rsqrt": elementwise.rsqrt,
        "relu": elementwise.relu, "mean": reduce._mean, "linear": linalg._linear}


def lowering_for(op):
    """The lowering of `op` (a function as above), or None."""
    return LOWERINGS.get(op.name) if _OPS.get(op.name) is op else None
