"""One property-test entry per public differentiable op: the op and how to draw its inputs.

test_op_gradients.py runs gradcheck and gradgradcheck over every entry, test_op_forward.py
compares each forward with the numpy function it mirrors (`ref`); test_completeness.py fails if
an op of the public list (tensorgrad.DIFFERENTIABLE) has no entry here.
"""
import numpy as np
from hypothesis import strategies as st
from scipy import special

import tensorgrad as tg
from tensorgrad.testing import axes, broadcastable_tensors, shapes, tensors


def _one_axis(x):
    return st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1)


def _nonscalar(min_dims=1, max_dims=3):
    return shapes(min_dims=min_dims, max_dims=max_dims)


def _reshape_target(x):
    n = x.data.size
    divs = [d for d in range(1, n + 1) if n % d == 0]
    return st.sampled_from(divs).map(lambda d: (d, -1) if n else (0,))


def _perm(x):
    return st.permutations(range(x.ndim)).map(tuple)


def _two_axes(x):
    return st.tuples(st.integers(0, x.ndim - 1), st.integers(0, x.ndim - 1))


def _broadcast_target(x):
    return st.tuples(st.integers(1, 3), st.integers(1, 2)).map(
        lambda extra: extra[:1] + tuple(extra[1] if s == 1 else s for s in x.shape))


def _squeeze_axis(x):
    ones = [i for i, s in enumerate(x.shape) if s == 1]
    return st.one_of(st.none(), st.sampled_from(ones)) if ones else st.none()


def _index(x):
    """Slices, ints, None, Ellipsis, boolean masks, integer arrays with repeats."""
    if x.ndim == 0:
        return st.sampled_from([(), None, Ellipsis])
    n0 = x.shape[0]
    return st.one_of(
        st.integers(-n0, n0 - 1),
        st.tuples(st.integers(0, n0 - 1), st.just(None)),
        st.builds(slice, st.integers(0, n0), st.integers(0, n0) | st.none(),
                  st.sampled_from([1, 2, -1])),
        st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=6).map(np.array),  # repeats
        st.lists(st.booleans(), min_size=n0, max_size=n0).map(np.array),            # mask
        st.just((Ellipsis, None)),
    )


def _pad_width(x):
    return st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=x.ndim,
                    max_size=x.ndim).map(tuple)


def _sum_to_case():
    @st.composite
    def draw(draw):
        small = draw(shapes(max_dims=2))
        lead = draw(st.lists(st.integers(1, 3), max_size=2))
        big = tuple(lead) + tuple(draw(st.integers(1, 3)) if s == 1 else s for s in small)
        return (draw(tensors(big)), small)
    return draw()


def _unindex_case():
    @st.composite
    def draw(draw):
        shape = draw(shapes(min_dims=1, max_dims=3))
        x = np.zeros(shape)
        idx = draw(_index(tg.tensor(x)))
        g = draw(tensors(x[idx].shape))
        return (g, idx, shape)
    return draw()


def _matmul_pair():
    """1-D, 2-D and batched N-D operands with broadcasting batch dims."""
    @st.composite
    def draw(draw):
        m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "bmm", "bcast", "vb", "bv"]))
        b1 = (draw(st.integers(1, 2)),)
        shapes_ = {"vv": ((k,), (k,)), "mv": ((m, k), (k,)), "vm": ((k,), (k, n)),
                   "mm": ((m, k), (k, n)), "bmm": (b1 + (m, k), b1 + (k, n)),
                   "bcast": ((2, 1, m, k), (3, k, n)), "vb": ((k,), (2, k, n)),
                   "bv": ((2, m, k), (k,))}[kind]
        return tuple(draw(tensors(s)) for s in shapes_)
    return draw()


def _linear_args():
    @st.composite
    def draw(draw):
        lead = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
        fin, fout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        x = draw(tensors(tuple(lead) + (fin,)))
        w = draw(tensors((fout, fin)))
        if draw(st.booleans()):  # nn.Linear's storage: (in, out) memory order
            w = tg.tensor(np.asfortranarray(w.data), requires_grad=True)
        b = draw(st.one_of(st.none(), tensors((fout,))))
        return (x, w, b)
    return draw()


def _where_args():
    @st.composite
    def draw(draw):
        a, b, c = draw(broadcastable_tensors(3))
        return (tg.tensor(c.data > 0), a, b)
    return draw()


def _separated_pair():
    """Two broadcastable tensors with |a - b| >= 0.1 everywhere (max/min ties are kinks)."""
    return broadcastable_tensors(2).map(
        lambda ab: (ab[0], tg.tensor(ab[1].data + np.where(
            ab[1].data >= ab[0].data, 0.1, -0.1), requires_grad=True)))


def _concat_args():
    @st.composite
    def draw(draw):
        shape = draw(shapes(min_dims=1, max_dims=3))
        axis = draw(st.integers(0, len(shape) - 1))
        k = draw(st.integers(1, 3))
        xs = []
        for _ in range(k):
            s = list(shape)
            s[axis] = draw(st.integers(1, 3))
            xs.append(draw(tensors(tuple(s))))
        return tuple(xs) + (axis,)
    return draw()


def _stack_args():
    @st.composite
    def draw(draw):
        shape = draw(shapes(max_dims=2))
        xs = tuple(draw(tensors(shape)) for _ in range(draw(st.integers(1, 3))))
        return xs + (draw(st.integers(-(len(shape) + 1), len(shape))),)
    return draw()


def _several_tensors():
    @st.composite
    def draw(draw):
        return tuple(draw(tensors()) for _ in range(draw(st.integers(1, 3))))
    return draw()


def _clip_bounds(x):
    return st.sampled_from([(-1.05, 1.05), (None, 0.55), (-0.45, None)])


def _np_linear(x, w, b):
    return x @ w.T if b is None else x @ w.T + b


def _np_sum_to(x, shape):
    x = x.sum(axis=tuple(range(x.ndim - len(shape))))
    return x.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1), keepdims=True)


def _np_unindex(g, idx, shape):
    """Each element of g added at the flat position x[idx] reads (repeats accumulate)."""
    where = np.arange(int(np.prod(shape))).reshape(shape)[idx]
    out = np.bincount(np.ravel(where), np.ravel(g), int(np.prod(shape)))
    return out.astype(g.dtype).reshape(shape)


def _np_pad(x, pad_width):
    return np.pad(x, pad_width) if x.ndim else x


def _np_logsumexp(x, axis, keepdims):  # (scipy's gives a 0-d input with keepdims shape (1,))
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _np_leaky_relu(x, negative_slope):
    return np.maximum(x, 0) + negative_slope * np.minimum(x, 0)


def _np_softplus(x, beta, threshold):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


T = tensors
POS = dict(low=0.3, high=3.0)
# fn: the op as called; ref: the numpy function it mirrors (or a numpy composition), called on
# the arrays with the same parameters (test_op_forward.py); inputs / params: hypothesis draws
CASES = {
    "add": dict(fn=tg.add, ref=np.add, inputs=[broadcastable_tensors(2)]),
    "sub": dict(fn=tg.sub, ref=np.subtract, inputs=[broadcastable_tensors(2)]),
    "mul": dict(fn=tg.mul, ref=np.multiply, inputs=[broadcastable_tensors(2)]),
    "div": dict(fn=tg.div, ref=np.true_divide,
                inputs=[broadcastable_tensors(2, low=0.5, high=2.0)]),
    "pow": dict(fn=tg.pow, ref=np.power, inputs=[broadcastable_tensors(2, low=0.5, high=2.0)]),
    "matmul": dict(fn=tg.matmul, ref=np.matmul, inputs=[_matmul_pair()]),
    "linear": dict(fn=tg.linear, ref=_np_linear, inputs=[_linear_args()]),
    "vdot": dict(fn=tg.vdot, ref=np.vdot,
                 inputs=[shapes().flatmap(lambda s: st.tuples(T(s), T(s)))]),
    "square": dict(fn=tg.square, ref=np.square, inputs=[T()]),
    "rsqrt": dict(fn=tg.rsqrt, ref=lambda x: 1 / np.sqrt(x), inputs=[T(**POS)]),
    "pow_fast_exponents": dict(fn=lambda x, e: x ** e, ref=lambda x, e: x ** e, inputs=[T(**POS)],
                               params=dict(e=st.sampled_from([2, 2.0, 0.5, -0.5, 3, -1.5]))),
    "neg": dict(fn=tg.neg, ref=np.negative, inputs=[T()]),
    "exp": dict(fn=tg.exp, ref=np.exp, inputs=[T()]),
    "log": dict(fn=tg.log, ref=np.log, inputs=[T(**POS)]),
    "sqrt": dict(fn=tg.sqrt, ref=np.sqrt, inputs=[T(**POS)]),
    "abs": dict(fn=tg.abs, ref=np.abs, inputs=[T(avoid=(0,))]),
    "tanh": dict(fn=tg.tanh, ref=np.tanh, inputs=[T()]),
    "sigmoid": dict(fn=tg.sigmoid, ref=lambda x: 1 / (1 + np.exp(-x)), inputs=[T()]),
    "relu": dict(fn=tg.relu, ref=lambda x: np.maximum(x, 0.0), inputs=[T(avoid=(0,))]),
    "leaky_relu": dict(fn=tg.leaky_relu, ref=_np_leaky_relu, inputs=[T(avoid=(0,))],
                       params=dict(negative_slope=st.sampled_from([0.01, 0.2]))),
    "elu": dict(fn=tg.elu, ref=lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
                inputs=[T(avoid=(0,))], params=dict(alpha=st.sampled_from([0.01, 1.0]))),
    "erf": dict(fn=tg.erf, ref=special.erf, inputs=[T()]),
    "softplus": dict(fn=tg.softplus, ref=_np_softplus, inputs=[T(avoid=(0.5, 1.0))],
                     params=dict(beta=st.sampled_from([1.0, 2.0]),
                                 threshold=st.sampled_from([20.0, 1.0]))),  # kinks avoided
    "maximum": dict(fn=tg.maximum, ref=np.maximum, inputs=[_separated_pair()]),
    "minimum": dict(fn=tg.minimum, ref=np.minimum, inputs=[_separated_pair()]),
    "where": dict(fn=tg.where, ref=np.where, inputs=[_where_args()]),
    "clip": dict(fn=lambda x, bounds: tg.clip(x, *bounds),
                 ref=lambda x, bounds: np.clip(x, *bounds),
                 inputs=[T(avoid=(-1.05, 1.05, 0.55, -0.45))], params=dict(bounds=_clip_bounds)),
    "sum": dict(fn=tg.sum, ref=np.sum, inputs=[T()],
                params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    "sum_squares": dict(fn=tg.sum_squares, ref=lambda *xs: sum(np.sum(x * x) for x in xs),
                        inputs=[_several_tensors()]),
    "mean": dict(fn=tg.mean, ref=np.mean, inputs=[T()],
                 params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    "var": dict(fn=tg.var, ref=np.var,
                inputs=[T(_nonscalar(), distinct=True, low=-4, high=4)],
                params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans(),
                            ddof=st.just(0))),
    "std": dict(fn=tg.std, ref=np.std,
                inputs=[T(shapes(min_dims=1, min_side=2), distinct=True, low=-4, high=4)],
                params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans(),
                            ddof=st.sampled_from([0, 1]))),
    "max": dict(fn=tg.max, ref=np.max, inputs=[T(distinct=True, low=-4, high=4)],
                params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    "min": dict(fn=tg.min, ref=np.min, inputs=[T(distinct=True, low=-4, high=4)],
                params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    "logsumexp": dict(fn=tg.logsumexp, ref=_np_logsumexp, inputs=[T()],
                      params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    "softmax": dict(fn=tg.softmax, ref=special.softmax, inputs=[T()],
                    params=dict(axis=_one_axis)),
    "log_softmax": dict(fn=tg.log_softmax, ref=special.log_softmax, inputs=[T()],
                        params=dict(axis=_one_axis)),
    "reshape": dict(fn=tg.reshape, ref=np.reshape, inputs=[T()],
                    params=dict(shape=_reshape_target)),
    "transpose": dict(fn=tg.transpose, ref=np.transpose, inputs=[T()], params=dict(axes=_perm)),
    "permute": dict(fn=lambda x, axes: x.permute(*axes), ref=np.transpose, inputs=[T()],
                    params=dict(axes=_perm)),
    "swapaxes": dict(fn=lambda x, ab: tg.swapaxes(x, *ab), ref=lambda x, ab: np.swapaxes(x, *ab),
                     inputs=[T(_nonscalar())], params=dict(ab=_two_axes)),
    "matrix_transpose": dict(fn=lambda x: x.mT, ref=np.matrix_transpose,
                             inputs=[T(_nonscalar(2, 4))]),
    "flatten": dict(fn=tg.flatten, ref=np.ravel, inputs=[T()]),
    "broadcast_to": dict(fn=tg.broadcast_to, ref=np.broadcast_to, inputs=[T()],
                         params=dict(shape=_broadcast_target)),
    "expand": dict(fn=lambda x, shape: x.expand(*shape), ref=np.broadcast_to, inputs=[T()],
                   params=dict(shape=_broadcast_target)),
    "sum_to": dict(fn=tg.sum_to, ref=_np_sum_to, inputs=[_sum_to_case()]),
    "squeeze": dict(fn=tg.squeeze, ref=np.squeeze, inputs=[T()],
                    params=dict(axis=_squeeze_axis)),
    "unsqueeze": dict(fn=tg.unsqueeze, ref=np.expand_dims, inputs=[T()],
                      params=dict(axis=lambda x: st.integers(-(x.ndim + 1), x.ndim))),
    "expand_dims": dict(fn=tg.expand_dims, ref=np.expand_dims, inputs=[T()],
                        params=dict(axis=lambda x: st.integers(0, x.ndim))),
    "getitem": dict(fn=lambda x, idx: x[idx], ref=lambda x, idx: x[idx], inputs=[T()],
                    params=dict(idx=_index)),
    "unindex": dict(fn=tg.unindex, ref=_np_unindex, inputs=[_unindex_case()]),
    "concatenate": dict(fn=lambda *a: tg.concatenate(a[:-1], axis=a[-1]),
                        ref=lambda *a: np.concatenate(a[:-1], axis=a[-1]),
                        inputs=[_concat_args()]),
    "stack": dict(fn=lambda *a: tg.stack(a[:-1], axis=a[-1]),
                  ref=lambda *a: np.stack(a[:-1], axis=a[-1]), inputs=[_stack_args()]),
    "pad": dict(fn=tg.pad, ref=_np_pad, inputs=[T()], params=dict(pad_width=_pad_width)),
    "astype": dict(fn=lambda x: tg.astype(x * 1.5, np.float32).astype(np.float64),
                   ref=lambda x: (x * 1.5).astype(np.float32).astype(np.float64),
                   inputs=[T()], eps=1e-2, atol=1e-4, rtol=1e-4),  # linear: a big eps is exact
}


# ---- non-differentiable functions ---------------------------------------------------------------
def _ties(ts):
    """Tensors rounded to -2..2: equal values, ties and zeros are common (comparisons, argmax,
    all/any)."""
    ts = ts if isinstance(ts, tuple) else (ts,)
    return tuple(tg.tensor(np.round(t.data), requires_grad=True) for t in ts)


def _specials(t):
    """Some elements nan, inf or -inf (isnan, isfinite)."""
    x = t.data
    return tg.tensor(np.where(x > 1.2, np.nan, np.where(x < -1.5, -np.inf,
                                                        np.where(x < -1.2, np.inf, x))))


def _arg_axis(x):
    return st.one_of(st.none(), st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))


def _np_arg(fn):
    # numpy refuses axis 0 of a 0-d array, which torch (and tensorgrad) read as "its one element"
    return lambda x, axis, keepdims: fn(x, axis=axis if x.ndim else None, keepdims=keepdims)


def _close_pair():
    return broadcastable_tensors(2).map(
        lambda ab: (ab[0], tg.tensor(ab[0].data + ab[1].data * 1e-6 * (ab[1].data > 1))))


PAIR, ONE = [broadcastable_tensors(2).map(_ties)], [T().map(_ties)]
# every public function without gradient (test_completeness.py): its forward against numpy's,
# and no graph recorded although the inputs require grad (test_op_forward.py)
NONDIFF_CASES = {
    "sign": dict(fn=tg.sign, ref=np.sign, inputs=ONE),
    "equal": dict(fn=tg.equal, ref=np.equal, inputs=PAIR),
    "not_equal": dict(fn=tg.not_equal, ref=np.not_equal, inputs=PAIR),
    "less": dict(fn=tg.less, ref=np.less, inputs=PAIR),
    "less_equal": dict(fn=tg.less_equal, ref=np.less_equal, inputs=PAIR),
    "greater": dict(fn=tg.greater, ref=np.greater, inputs=PAIR),
    "greater_equal": dict(fn=tg.greater_equal, ref=np.greater_equal, inputs=PAIR),
    "eq": dict(fn=lambda a, b: a.eq(b), ref=np.equal, inputs=PAIR),
    "ne": dict(fn=lambda a, b: a.ne(b), ref=np.not_equal, inputs=PAIR),
    "lt": dict(fn=lambda a, b: a.lt(b), ref=np.less, inputs=PAIR),
    "le": dict(fn=tg.le, ref=np.less_equal, inputs=PAIR),
    "gt": dict(fn=tg.gt, ref=np.greater, inputs=PAIR),
    "ge": dict(fn=lambda a, b: a.ge(b), ref=np.greater_equal, inputs=PAIR),
    "logical_and": dict(fn=tg.logical_and, ref=np.logical_and, inputs=PAIR),
    "logical_or": dict(fn=tg.logical_or, ref=np.logical_or, inputs=PAIR),
    "logical_xor": dict(fn=tg.logical_xor, ref=np.logical_xor, inputs=PAIR),
    "logical_not": dict(fn=tg.logical_not, ref=np.logical_not, inputs=ONE),
    "isfinite": dict(fn=tg.isfinite, ref=np.isfinite, inputs=[T().map(_specials)]),
    "isnan": dict(fn=tg.isnan, ref=np.isnan, inputs=[T().map(_specials)]),
    "argmax": dict(fn=tg.argmax, ref=_np_arg(np.argmax), inputs=ONE,
                   params=dict(axis=_arg_axis, keepdims=st.booleans())),
    "argmin": dict(fn=lambda x, axis, keepdims: x.argmin(dim=axis, keepdim=keepdims),
                   ref=_np_arg(np.argmin), inputs=ONE,
                   params=dict(axis=_arg_axis, keepdims=st.booleans())),
    "all": dict(fn=tg.all, ref=np.all, inputs=ONE,
                params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    "any": dict(fn=lambda x, axis, keepdims: x.any(dim=axis, keepdim=keepdims), ref=np.any,
                inputs=ONE, params=dict(axis=lambda x: axes(x.ndim), keepdims=st.booleans())),
    # a Python bool, wrapped to compare like the others
    "allclose": dict(fn=lambda a, b: tg.tensor(tg.allclose(a, b)), ref=np.allclose,
                     inputs=[_close_pair()]),
}
