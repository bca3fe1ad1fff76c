"""Matrix products: `matmul` (1-D, 2-D and batched N-D, numpy's rules) and `linear` (x W^T + b).

For C = A B the gradients are dA = dC B^T and dB = A^T dC; 1-D operands are promoted to
matrices and the batch dimensions that broadcasting added are summed back by the engine.
"""
import numpy as np

from ..autograd.function import passthrough
from ..autograd.xp import vdot as _np_vdot
from ._base import Op, data_of, register, shape_of


def _matmul_vjp_a(xp, g, out, a, b):
    if a.ndim == 1 and b.ndim == 1:        # inner product: g is a scalar
        return g * b
    if b.ndim == 1:                         # (..., m, k) @ (k,) -> (..., m)
        return xp.expand_dims(g, -1) * b
    if a.ndim == 1:                         # (k,) @ (..., k, n) -> (..., n)
        return xp.squeeze(xp.matmul(b, xp.expand_dims(g, -1)), -1)
    return xp.matmul(g, xp.swapaxes(b, -1, -2))


def _matmul_vjp_b(xp, g, out, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:                         # (k,) @ (..., k, n): dB = a^T g, outer product
        return xp.expand_dims(a, -1) * xp.expand_dims(g, -2)
    if b.ndim == 1:                         # (..., m, k) @ (k,): dB = A^T g, summed over batch
        return xp.squeeze(xp.matmul(xp.swapaxes(a, -1, -2), xp.expand_dims(g, -1)), -1)
    return xp.matmul(xp.swapaxes(a, -1, -2), g)


_matmul = Op("matmul", np.matmul, _matmul_vjp_a, _matmul_vjp_b)


def _linear_forward(x, weight, bias):
    out = np.matmul(x, weight.T)
    if bias is not None:
        out += bias  # the product is a fresh array: add the bias in place
    return out


def _linear_vjp_weight(xp, g, out, x, weight, bias):
    if x.ndim == 1:
        return xp.expand_dims(g, -1) * x
    if x.ndim > 2:  # fold the leading dims into one batch
        g = xp.reshape(g, (-1, g.shape[-1]))
        x = xp.reshape(x, (-1, x.shape[-1]))
    if _in_out_order(data_of(weight)):  # stored (in, out), see nn.Linear
        return xp.swapaxes(xp.matmul(xp.swapaxes(x, 0, 1), g), 0, 1)  # same memory order
    return xp.matmul(xp.swapaxes(g, 0, 1), x)


def _in_out_order(w):
    return w.flags.f_contiguous and not w.flags.c_contiguous


_linear = Op("linear", _linear_forward,
             lambda xp, g, out, x, weight, bias: xp.matmul(g, weight),
             _linear_vjp_weight,
             passthrough)  # the bias: the engine sums g over the batch


# sum(a * b) over all elements (numpy's vdot for real arrays): one BLAS dot, no temporary
_vdot = Op("vdot", lambda a, b: np.asarray(_np_vdot(a, b)),
           lambda xp, g, out, a, b: b * g,
           lambda xp, g, out, a, b: a * g)


@register
def vdot(a, b):
    """sum(a * b) over all elements of two same-shaped tensors, as a 0-d tensor (numpy's vdot
    for real arrays, without its flattening of different shapes)."""
    sa, sb = shape_of(a), shape_of(b)
    if sa != sb:
        raise ValueError(f"vdot: operands must have the same shape, got {sa} and {sb}")
    return _vdot(a, b)


@register(method=True)
def matmul(a, b):
    """Matrix product with numpy's rules (1-D vectors, 2-D matrices, batched N-D)."""
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes "
                         f"{sa} and {sb} (use * for scalars)")
    return _matmul(a, b)


@register
def linear(x, weight, bias=None):
    """y = x W^T + b with PyTorch's layout: weight (out_features, in_features), bias (out,)."""
    sx, sw = shape_of(x), shape_of(weight)
    if len(sw) != 2 or len(sx) < 1 or sx[-1] != sw[1]:
        raise ValueError(f"linear: input of shape {sx} does not match weight of shape {sw} "
                         f"(expected input (..., {sw[1] if len(sw) == 2 else '?'}))")
    return _linear(x, weight, bias)
