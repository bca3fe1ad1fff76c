"""Elementwise ops: arithmetic, activations, maximum/minimum/where/clip, comparisons.

Each primitive is one `Op(name, forward, vjp_for_input_0, vjp_for_input_1, ...)` line
(`method=True`: a public op and Tensor method; `public=True`: a public op only): the
forward runs on numpy arrays and each vjp maps the output gradient `g` to its input's gradient,
written against the array namespace `xp` (autograd/xp.py). Broadcasting is undone by the
engine, so the vjps below read like the calculus. Versions specialised for a fused program's
fixed shapes live apart, in tensorgrad/compile/lowerings.py.
"""
import math
from functools import partial

import numpy as np
from scipy.special import erf as _erf
from scipy.special import expit

from ..autograd.function import passthrough
from ._base import Op as _Op
from ._base import alias, nondiff, register

# every op here maps g elementwise, so it accepts a gradient that only broadcasts to its output
Op = partial(_Op, elementwise=True)

# ---- arithmetic -------------------------------------------------------------------------------
add = Op("add", np.add, passthrough, passthrough, public=True)
sub = Op("sub", np.subtract,
         passthrough,
         lambda xp, g, out, a, b: -g,  # (g may be compact: the engine does every reduction)
         public=True)
mul = Op("mul", np.multiply,
         lambda xp, g, out, a, b: g * b,
         lambda xp, g, out, a, b: g * a, public=True)
div = Op("div", np.true_divide,
         lambda xp, g, out, a, b: g / b,
         lambda xp, g, out, a, b: -g * out / b, public=True)
pow = Op("pow", np.power,
         lambda xp, g, out, a, b: g * b * a ** (b - 1),
         lambda xp, g, out, a, b: g * out * xp.log(xp.where(a > 0, a, 1)), public=True)
square = Op("square", np.square,
            lambda xp, g, out, x: x * (g * 2), method=True)
rsqrt = Op("rsqrt", lambda x: 1 / np.sqrt(x),
           lambda xp, g, out, x: g * -0.5 * out / x, method=True)
neg = Op("neg", np.negative,
         lambda xp, g, out, x: -g, public=True)
alias("negative", neg)  # numpy's names
alias("subtract", sub)
alias("multiply", mul)
alias("divide", div)
alias("true_divide", div)
alias("power", pow)

# ---- unary functions ----------------------------------------------------------------------------
exp = Op("exp", np.exp,
         lambda xp, g, out, x: g * out, method=True)
log = Op("log", np.log,
         lambda xp, g, out, x: g / x, method=True)
sqrt = Op("sqrt", np.sqrt,
          lambda xp, g, out, x: g / (out * 2), method=True)
abs = Op("abs", np.abs,
         lambda xp, g, out, x: g * xp.sign(x), method=True)
tanh = Op("tanh", np.tanh,
          lambda xp, g, out, x: g * (1 - out * out), method=True)
sigmoid = Op("sigmoid", expit,
             lambda xp, g, out, x: g * out * (1 - out), method=True)
# the gradient reads the output (out > 0 exactly where x > 0, nan included), as PyTorch's
# does: a fused program then frees the input once the output is computed
relu = Op("relu", lambda x: np.maximum(x, 0),
          lambda xp, g, out, x: g * (out > 0), method=True)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)  # a Python float: keeps float32 gradients float32
erf = Op("erf", _erf,
         lambda xp, g, out, x: g * _TWO_OVER_SQRT_PI * xp.exp(-(x * x)), method=True)
# log(1 + exp(beta x)) / beta, and x where beta x > threshold (torch's linear region); the
# gradient is sigmoid(beta x) there, 1 in the linear region
_softplus = Op("softplus",
               lambda x, beta=1.0, threshold=20.0: np.where(
                   x * beta > threshold, x, np.logaddexp(0, x * beta) / beta),
               lambda xp, g, out, x, beta=1.0, threshold=20.0: xp.where(
                   x * beta > threshold, g, g * xp.sigmoid(x * beta)))
_leaky_relu = Op("leaky_relu",
                 lambda x, negative_slope=0.01: np.where(x > 0, x, x * negative_slope),
                 lambda xp, g, out, x, negative_slope=0.01: xp.where(x > 0, g, g * negative_slope))
_elu = Op("elu",
          lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
          lambda xp, g, out, x, alpha=1.0: xp.where(x > 0, g, g * (out + alpha)))


@register(method=True)
def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    return _leaky_relu(x, negative_slope=negative_slope)


@register(method=True)
def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _elu(x, alpha=alpha)


@register
def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, computed stably; x itself where beta x > threshold (as
    torch.nn.functional.softplus)."""
    return _softplus(x, beta=beta, threshold=threshold)


# ---- selections ---------------------------------------------------------------------------------
# ties split the gradient evenly between the two inputs, as PyTorch does
maximum = Op("maximum", np.maximum,
             lambda xp, g, out, a, b: xp.where(a > b, g, xp.where(a == b, g / 2, 0)),
             lambda xp, g, out, a, b: xp.where(b > a, g, xp.where(a == b, g / 2, 0)),
             method=True)
minimum = Op("minimum", np.minimum,
             lambda xp, g, out, a, b: xp.where(a < b, g, xp.where(a == b, g / 2, 0)),
             lambda xp, g, out, a, b: xp.where(b < a, g, xp.where(a == b, g / 2, 0)),
             method=True)
where = Op("where", np.where,
           None,  # the condition is boolean: never differentiable
           lambda xp, g, out, c, a, b: xp.where(c, g, 0),
           lambda xp, g, out, c, a, b: xp.where(c, 0, g), public=True)


def _inside(x, lo, hi):
    if lo is None:
        return x <= hi
    if hi is None:
        return x >= lo
    return (x >= lo) & (x <= hi)


# x inside [lo, hi] (boundaries included) passes its gradient, as torch.clamp does
_clip = Op("clip", lambda x, lo, hi: np.clip(x, lo, hi),
           lambda xp, g, out, x, lo, hi: xp.where(_inside(x, lo, hi), g, 0),
           lambda xp, g, out, x, lo, hi: xp.where(x < lo, g, 0),
           lambda xp, g, out, x, lo, hi: xp.where(x > hi, g, 0))


@register(method=True)
def clip(x, a_min=None, a_max=None, *, min=None, max=None):
    """Limit values to [a_min, a_max] (PyTorch's min=/max= and `clamp` accepted)."""
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of a_min / a_max")
    return _clip(x, lo, hi)


clamp = alias("clamp", clip, method=True)


# ---- non-differentiable -------------------------------------------------------------------------
def _nondiff_op(ufunc, what):
    def fn(*args):
        return nondiff(ufunc, *args)
    fn.__name__ = fn.__qualname__ = ufunc.__name__
    fn.__doc__ = f"Elementwise {what}: a bool (or sign) tensor that records no graph."
    return fn


def _nondiff_public(ufunc, what, method=False):
    return register(_nondiff_op(ufunc, what), method=method, differentiable=False)


sign = _nondiff_public(np.sign, "sign (its derivative is zero almost everywhere)", method=True)
equal = _nondiff_public(np.equal, "a == b")
not_equal = _nondiff_public(np.not_equal, "a != b")
less = _nondiff_public(np.less, "a < b")
less_equal = _nondiff_public(np.less_equal, "a <= b")
greater = _nondiff_public(np.greater, "a > b")
greater_equal = _nondiff_public(np.greater_equal, "a >= b")
logical_and = _nondiff_public(np.logical_and, "a and b")
logical_or = _nondiff_public(np.logical_or, "a or b")
logical_xor = _nondiff_public(np.logical_xor, "a xor b")
logical_not = _nondiff_public(np.logical_not, "not a")
isfinite = _nondiff_public(np.isfinite, "isfinite")
for _short, _long in [("eq", equal), ("ne", not_equal), ("lt", less), ("le", less_equal),
                      ("gt", greater), ("ge", greater_equal)]:
    alias(_short, _long, method=True)  # PyTorch's names, methods too
isnan = _nondiff_public(np.isnan, "isnan")
