"""Elementwise ops: arithmetic, activations, maximum/minimum/where/clip, comparisons.

Each primitive is one `Op(name, forward, vjp_for_input_0, vjp_for_input_1, ...)` line: the
forward runs on numpy arrays and each vjp maps the output gradient `g` to its input's gradient,
written against the array namespace `xp` (autograd/xp.py). Broadcasting is undone by the
engine, so the vjps below read like the calculus. Versions specialised for a fused program's
fixed shapes live apart, in tensorgrad/compile/lowerings.py.
"""
from functools import partial

import numpy as np
from scipy.special import expit

from ..autograd.function import passthrough
from ._base import Op as _Op
from ._base import nondiff

# every op here maps g elementwise, so it accepts a gradient that only broadcasts to its output
Op = partial(_Op, elementwise=True)

# ---- arithmetic -------------------------------------------------------------------------------
add = Op("add", np.add, passthrough, passthrough)
sub = Op("sub", np.subtract,
         passthrough,
         lambda xp, g, out, a, b: -g)  # (g may be compact: the engine does every reduction)
mul = Op("mul", np.multiply,
         lambda xp, g, out, a, b: g * b,
         lambda xp, g, out, a, b: g * a)
div = Op("div", np.true_divide,
         lambda xp, g, out, a, b: g / b,
         lambda xp, g, out, a, b: -g * out / b)
pow = Op("pow", np.power,
         lambda xp, g, out, a, b: g * b * a ** (b - 1),
         lambda xp, g, out, a, b: g * out * xp.log(xp.where(a > 0, a, 1)))
square = Op("square", np.square,
            lambda xp, g, out, x: x * (g * 2))
rsqrt = Op("rsqrt", lambda x: 1 / np.sqrt(x),
           lambda xp, g, out, x: g * -0.5 * out / x)
neg = Op("neg", np.negative,
         lambda xp, g, out, x: -g)

# ---- unary functions ----------------------------------------------------------------------------
exp = Op("exp", np.exp,
         lambda xp, g, out, x: g * out)
log = Op("log", np.log,
         lambda xp, g, out, x: g / x)
sqrt = Op("sqrt", np.sqrt,
          lambda xp, g, out, x: g / (out * 2))
abs = Op("abs", np.abs,
         lambda xp, g, out, x: g * xp.sign(x))
tanh = Op("tanh", np.tanh,
          lambda xp, g, out, x: g * (1 - out * out))
sigmoid = Op("sigmoid", expit,
             lambda xp, g, out, x: g * out * (1 - out))
# the gradient reads the output (out > 0 exactly where x > 0, nan included), as PyTorch's
# does: a fused program then frees the input once the output is computed
relu = Op("relu", lambda x: np.maximum(x, 0),
          lambda xp, g, out, x: g * (out > 0))
leaky_relu = Op("leaky_relu",
                lambda x, negative_slope=0.01: np.where(x > 0, x, x * negative_slope),
                lambda xp, g, out, x, negative_slope=0.01: xp.where(x > 0, g, g * negative_slope))
elu = Op("elu",
         lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
         lambda xp, g, out, x, alpha=1.0: xp.where(x > 0, g, g * (out + alpha)))

# ---- selections ---------------------------------------------------------------------------------
# ties split the gradient evenly between the two inputs, as PyTorch does
maximum = Op("maximum", np.maximum,
             lambda xp, g, out, a, b: xp.where(a > b, g, xp.where(a == b, g / 2, 0)),
             lambda xp, g, out, a, b: xp.where(b > a, g, xp.where(a == b, g / 2, 0)))
minimum = Op("minimum", np.minimum,
             lambda xp, g, out, a, b: xp.where(a < b, g, xp.where(a == b, g / 2, 0)),
             lambda xp, g, out, a, b: xp.where(b < a, g, xp.where(a == b, g / 2, 0)))
where = Op("where", np.where,
           None,  # the condition is boolean: never differentiable
           lambda xp, g, out, c, a, b: xp.where(c, g, 0),
           lambda xp, g, out, c, a, b: xp.where(c, 0, g))


def _inside(x, lo, hi):
    if lo is None:
        return x <= hi
    if hi is None:
        return x >= lo
    return (x >= lo) & (x <= hi)


# x inside [lo, hi] (boundaries included) passes its gradient, as torch.clamp does
clip = Op("clip", lambda x, lo, hi: np.clip(x, lo, hi),
          lambda xp, g, out, x, lo, hi: xp.where(_inside(x, lo, hi), g, 0),
          lambda xp, g, out, x, lo, hi: xp.where(x < lo, g, 0),
          lambda xp, g, out, x, lo, hi: xp.where(x > hi, g, 0))


# ---- non-differentiable -------------------------------------------------------------------------
def _nondiff_op(ufunc, what):
    def fn(*args):
        return nondiff(ufunc, *args)
    fn.__name__ = fn.__qualname__ = ufunc.__name__
    fn.__doc__ = f"Elementwise {what}: a bool (or sign) tensor that records no graph."
    return fn


sign = _nondiff_op(np.sign, "sign (its derivative is zero almost everywhere)")
equal = _nondiff_op(np.equal, "a == b")
not_equal = _nondiff_op(np.not_equal, "a != b")
less = _nondiff_op(np.less, "a < b")
less_equal = _nondiff_op(np.less_equal, "a <= b")
greater = _nondiff_op(np.greater, "a > b")
greater_equal = _nondiff_op(np.greater_equal, "a >= b")
logical_and = _nondiff_op(np.logical_and, "a and b")
logical_or = _nondiff_op(np.logical_or, "a or b")
logical_xor = _nondiff_op(np.logical_xor, "a xor b")
logical_not = _nondiff_op(np.logical_not, "not a")
isfinite = _nondiff_op(np.isfinite, "isfinite")
isnan = _nondiff_op(np.isnan, "isnan")
