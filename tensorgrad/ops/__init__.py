"""All differentiable ops as functions (`tensorgrad.exp(x)`), and the Tensor methods built on them.

This module is also the array namespace that gradients use under create_graph (see xp.py): the
helper names there (sum_to, unindex, getitem, astype, ...) exist here with the same signatures.
To add an op: define its `Op` beside its siblings in elementwise/reduce/shape/linalg, expose a
function here, and give it an entry in tests/ops/op_cases.py (a test fails until you do).
"""
from ._base import Tensor, data_of
from .elementwise import (
    abs,
    add,
    div,
    elu,
    equal,
    exp,
    greater,
    greater_equal,
    isfinite,
    isnan,
    less,
    less_equal,
    log,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    maximum,
    minimum,
    mul,
    neg,
    not_equal,
    pow,
    relu,
    rsqrt,
    sigmoid,
    sign,
    sqrt,
    square,
    sub,
    tanh,
    where,
)
from .elementwise import elu as _elu
from .elementwise import leaky_relu as _leaky_relu
from .linalg import linear, matmul, vdot
from .reduce import log_softmax, logsumexp, max, mean, min, softmax, std, sum, sum_squares, var
from .shape import (
    astype,
    broadcast_to,
    cat,
    concatenate,
    expand,
    expand_dims,
    flatten,
    getitem,
    matrix_transpose,
    pad,
    permute,
    reduce_to,
    reshape,
    squeeze,
    stack,
    sum_to,
    swapaxes,
    transpose,
    unindex,
    unsqueeze,
)

# elementwise ops exposed under numpy's names
negative = neg
subtract = sub
multiply = mul
divide = true_divide = div
power = pow
del elu


def scaled(x, scale):
    """x * scale: the create_graph twin of xp.scaled (which defers the product)."""
    return mul(x, scale)


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    return _leaky_relu(x, negative_slope=negative_slope)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _elu(x, alpha=alpha)


def clip(x, a_min=None, a_max=None, *, min=None, max=None):
    """Limit values to [a_min, a_max] (PyTorch's min=/max= and `clamp` accepted)."""
    from .elementwise import clip as _clip
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of a_min / a_max")
    return _clip(x, lo, hi)


clamp = clip

# The public op list: each name is property-tested (gradcheck + gradgradcheck) by
# tests/ops/test_op_gradients.py, and a completeness test keeps this list and the cases in step.
DIFFERENTIABLE = {
    "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "square": square, "rsqrt": rsqrt,
    "matmul": matmul, "neg": neg,
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "tanh": tanh, "sigmoid": sigmoid,
    "relu": relu, "leaky_relu": leaky_relu, "elu": elu,
    "maximum": maximum, "minimum": minimum, "where": where, "clip": clip,
    "sum": sum, "sum_squares": sum_squares, "mean": mean, "var": var, "std": std, "max": max,
    "min": min,
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
    "reshape": reshape, "transpose": transpose, "permute": permute, "swapaxes": swapaxes,
    "matrix_transpose": matrix_transpose, "flatten": flatten, "broadcast_to": broadcast_to,
    "expand": expand, "sum_to": sum_to, "squeeze": squeeze, "unsqueeze": unsqueeze,
    "expand_dims": expand_dims, "getitem": getitem, "unindex": unindex,
    "concatenate": concatenate, "stack": stack, "pad": pad, "astype": astype, "linear": linear,
    "vdot": vdot,
}


def _install_tensor_methods():
    """Operators and methods on Tensor, all routed through the functions above."""
    from ..autograd.function import Op
    from ..autograd.tensor import apply
    T = Tensor

    nokw = {}  # shared, never mutated: ops without parameters

    def fwd(fn):  # an Op instance is not a function, so it would not bind as a method
        if isinstance(fn, Op):
            return lambda self, other: apply(fn, (self, other), nokw)
        return fn

    def rev(fn):
        if isinstance(fn, Op):
            return lambda self, other: apply(fn, (other, self), nokw)
        return lambda self, other: fn(other, self)

    T.__add__, T.__radd__ = fwd(add), rev(add)
    T.__sub__, T.__rsub__ = fwd(sub), rev(sub)
    T.__mul__, T.__rmul__ = fwd(mul), rev(mul)
    T.__truediv__, T.__rtruediv__ = fwd(div), rev(div)
    T.__pow__, T.__rpow__ = fwd(pow), rev(pow)
    T.__matmul__, T.__rmatmul__ = matmul, rev(matmul)
    T.__neg__ = lambda self: apply(neg, (self,), nokw)
    T.__pos__ = lambda self: self
    T.__abs__ = lambda self: apply(abs, (self,), nokw)
    T.__lt__, T.__le__, T.__gt__, T.__ge__ = less, less_equal, greater, greater_equal
    T.__eq__, T.__ne__ = equal, not_equal
    T.__and__, T.__rand__ = logical_and, rev(logical_and)
    T.__or__, T.__ror__ = logical_or, rev(logical_or)
    T.__xor__ = logical_xor
    T.__invert__ = logical_not
    T.__getitem__ = getitem

    for name in ("exp", "log", "sqrt", "square", "rsqrt", "abs", "tanh", "sigmoid", "relu",
                 "leaky_relu", "elu",
                 "sum", "mean", "var", "std", "max", "min", "logsumexp", "softmax",
                 "log_softmax", "maximum", "minimum", "clip", "clamp", "reshape", "transpose",
                 "permute", "swapaxes", "flatten", "broadcast_to", "expand", "squeeze",
                 "unsqueeze", "expand_dims", "astype", "matmul", "sign", "pad", "sum_to"):
        fn = globals()[name]
        setattr(T, name, (lambda op: lambda self: apply(op, (self,), nokw))(fn)
                if isinstance(fn, Op) else fn)
    T.T = property(lambda self: transpose(self))
    T.mT = property(matrix_transpose)
    T.view = reshape
    T.float = lambda self: astype(self, "float32")
    T.double = lambda self: astype(self, "float64")


_install_tensor_methods()

__all__ = sorted(set(DIFFERENTIABLE) | {
    "negative", "subtract", "multiply", "divide", "true_divide", "power", "clamp", "cat",
    "sign", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not", "isfinite", "isnan"})
