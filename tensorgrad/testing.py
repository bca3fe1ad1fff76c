"""Hypothesis strategies and one assertion to property-test ops, yours or the library's.

    from tensorgrad.testing import assert_op_gradients, tensors, broadcastable_tensors, axes
    def test_my_op():
        assert_op_gradients(my_op, tensors(low=0.5))                 # gradcheck + gradgradcheck
        assert_op_gradients(tg.mul, broadcastable_tensors(2))         # shapes that broadcast
        assert_op_gradients(tg.sum, tensors(), axis=lambda x: axes(x.ndim))

Values are float64, bounded, and kept away from kinks (`avoid=(0,)` for relu/abs) so that
finite differences are meaningful. Needs hypothesis (the `test` extra).
"""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from .gradcheck import gradcheck, gradgradcheck
from .tensor import Tensor

__all__ = ["shapes", "broadcastable_shapes", "arrays", "tensors", "broadcastable_tensors",
           "axes", "assert_op_gradients"]


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes, including 0-d and size-1 axes by default."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of `num_shapes` shapes that broadcast together (size-1 and missing axes)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda bs: bs.input_shapes)


def _push_away(v, avoid, gap):
    for k in avoid:
        if abs(v - k) < gap:
            v = k + gap if v >= k else k - gap
    return v


@st.composite
def arrays(draw, shape=None, low=-2.0, high=2.0, dtype=np.float64, avoid=(), gap=0.1,
           distinct=False):
    """Float arrays with values in [low, high], at least `gap` away from each point in `avoid`.

    `shape` may be a tuple or a strategy (default: `shapes()`). With distinct=True every pair
    of values differs by at least `gap` (no ties for max/min/sort-like ops).
    """
    if shape is None:
        shape = shapes()
    if isinstance(shape, SearchStrategy):
        shape = draw(shape)
    n = int(np.prod(shape))
    if distinct:
        if n and (high - low) / gap < n:
            raise ValueError(f"arrays: cannot fit {n} distinct values {gap} apart in "
                             f"[{low}, {high}]")
        base = low + gap * np.arange(n) + draw(st.floats(0, max(0.0, (high - low) - gap * n)))
        order = draw(st.permutations(range(n))) if n else []
        vals = base[np.asarray(order, dtype=int)] if n else base
        return np.asarray(vals, dtype=dtype).reshape(shape)
    elements = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False,
                         allow_subnormal=False, width=64)
    if avoid:
        elements = elements.map(lambda v: _push_away(v, avoid, gap))
    return draw(hnp.arrays(dtype=dtype, shape=shape, elements=elements))


def tensors(shape=None, requires_grad=True, **array_kwargs):
    """Tensors (float64, requiring grad by default) over `arrays(shape, **array_kwargs)`."""
    return arrays(shape, **array_kwargs).map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_tensors(num=2, min_dims=0, max_dims=3, max_side=4, **array_kwargs):
    """A tuple of `num` tensors whose shapes broadcast together."""
    @st.composite
    def draw_tuple(draw):
        shps = draw(broadcastable_shapes(num, min_dims=min_dims, max_dims=max_dims,
                                         max_side=max_side))
        return tuple(draw(tensors(s, **array_kwargs)) for s in shps)
    return draw_tuple()


def axes(ndim, allow_none=True, allow_tuple=True, allow_negative=True):
    """Valid `axis` arguments for an ndim-dimensional input: None, an int, or a tuple of ints."""
    options = []
    if allow_none:
        options.append(st.none())
    if ndim > 0:
        lo = -ndim if allow_negative else 0
        options.append(st.integers(lo, ndim - 1))
        if allow_tuple:
            options.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                    unique=True).map(tuple))
    return st.one_of(*options) if options else st.none()


def assert_op_gradients(op, *inputs, gradgrad=True, eps=1e-6, atol=1e-5, rtol=1e-3,
                        max_examples=None, **params):
    """Property: `op` passes gradcheck (and gradgradcheck) on every generated input.

    `inputs` are strategies, one per positional argument; a strategy that draws a tuple (such as
    broadcastable_tensors) supplies several arguments. `params` are keyword arguments of `op`:
    a strategy, a constant, or a function of the drawn inputs returning a strategy (for
    arguments that depend on them, e.g. ``axis=lambda x: axes(x.ndim)``).
    """
    extra = {} if max_examples is None else {"max_examples": max_examples}

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large], **extra)
    @given(st.data())
    def check(data):
        args = []
        for i, s in enumerate(inputs):
            v = data.draw(s, label=f"input {i}")
            args.extend(v if isinstance(v, tuple) else [v])
        kw = {}
        for k, v in params.items():
            if isinstance(v, SearchStrategy):
                v = data.draw(v, label=k)
            elif callable(v):
                v = data.draw(v(*args), label=k)
            kw[k] = v

        def f(*xs):
            return op(*xs, **kw)

        gradcheck(f, args, eps=eps, atol=atol, rtol=rtol)
        if gradgrad:
            gradgradcheck(f, args, eps=eps, atol=atol, rtol=rtol)

    check()
