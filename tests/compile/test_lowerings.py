"""compile.lowerings: the versions of a forward or vjp that fused programs specialise for fixed
shapes must compute exactly what the general function computes (values, dtype; a vjp may sum
down to its input's shape already), for every layout."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.autograd.xp import numpy_ns
from tensorgrad.compile.lowerings import LOWERINGS, lowering_for
from tensorgrad.ops.elementwise import relu, rsqrt, square, sub
from tensorgrad.ops.linalg import _linear
from tensorgrad.ops.reduce import _mean
from tensorgrad.testing import shapes

DTYPES = st.sampled_from([np.float32, np.float64])


def _lower(op, i, examples, **params):
    """The op's lowering (looked up by its name) asked for input i (None: the forward)."""
    return LOWERINGS[op.name](i, examples, **params)


def _same(op, i, examples, **params):
    low = _lower(op, i, examples, **params)
    assert low is not None, f"{op.name}: no lowering for {[np.shape(e) for e in examples]}"
    if i is None:
        got, want = low(*examples), op.forward(*examples, **params)
    else:
        got, want = low(numpy_ns, *examples), op.vjps[i](numpy_ns, *examples, **params)
        if got.shape != want.shape:  # a lowered vjp may sum down to its input's shape already
            assert got.shape == examples[2 + i].shape
            want = numpy_ns.reduce_to(want, got.shape, examples[1].shape if op.elementwise
                                      else None)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def _array(rng, shape, dtype, order="C"):
    return np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 7), k=st.integers(1, 7), m=st.integers(1, 7), dtype=DTYPES,
       order=st.sampled_from("CF"), bias=st.booleans(), seed=st.integers(0, 99))
def test_linear(n, k, m, dtype, order, bias, seed):
    rng = np.random.default_rng(seed)
    x, w = _array(rng, (n, k), dtype), _array(rng, (m, k), dtype, order)
    b = _array(rng, (m,), dtype) if bias else None
    out = _linear.forward(x, w, b)
    g = _array(rng, (n, m), dtype)
    _same(_linear, 1, [g, out, x, w, b])  # the weight's gradient, in either memory order
    assert _lower(_linear, None, [x, w, b]) is None
    assert _lower(_linear, 0, [g, out, x, w, b]) is None


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), c=st.integers(1, 9), dtype=DTYPES, seed=st.integers(0, 99))
def test_column_mean_and_row_vector_subtraction(n, c, dtype, seed):
    rng = np.random.default_rng(seed)
    x, g_rows = _array(rng, (n, c), dtype), _array(rng, (c,), dtype)
    kw = dict(axis=(0,), keepdims=False)
    mu = _mean.forward(x, **kw)
    _same(_mean, None, [x], **kw)
    _same(_mean, 0, [g_rows, mu, x], **kw)
    g = _array(rng, (n, c), dtype)
    _same(sub, 1, [g, x - mu, x, mu])


@settings(max_examples=40, deadline=None)
@given(shape=shapes(), dtype=DTYPES, seed=st.integers(0, 99))
def test_unary_ops_with_typed_constants(shape, dtype, seed):
    # relu, square and rsqrt lowered with their constants as 0-d arrays (xp.number): the same
    # values and dtype as with Python numbers, for any shape, 0-d included
    rng = np.random.default_rng(seed)
    x = np.abs(_array(rng, shape, dtype)) + dtype(0.5)
    x = np.where(rng.random(shape) < 0.3, -x, x).astype(dtype) if shape else x
    g = _array(rng, shape, dtype)
    for op in (relu, square, rsqrt):
        v = np.abs(x) if op is rsqrt else x
        if op is not square:
            _same(op, None, [v])
        _same(op, 0, [g, np.asarray(op.forward(v)), v])


def test_other_shapes_keep_the_general_functions():
    x = np.ones((3, 4, 2))
    assert _lower(_mean, None, [x], axis=(0,), keepdims=False) is None
    assert _lower(_mean, None, [np.ones((3, 4))], axis=(1,), keepdims=False) is None
    assert _lower(_linear, 1, [np.ones((3, 4, 5)), None, x, np.ones((5, 2)), None]) is None
    assert _lower(sub, 0, [np.ones((3, 4))] * 4) is None
    assert _lower(sub, 1, [np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4)),
                           np.ones((1, 4))]) is None


def test_sub_keeps_the_general_vjp_for_a_compact_gradient():
    # g of shape (1, 1) stands for a (2, 3) gradient (a mean's, not broadcast yet): a product
    # with a -1 vector of one row would sum one row of it, not the six terms
    g, out, a = np.full((1, 1), 1 / 6), np.ones((2, 3)), np.ones((2, 3))
    assert _lower(sub, 1, [g, out, a, np.ones(1)]) is None
    assert _lower(sub, 1, [np.ones((2, 3)), out, a, np.ones(3)]) is not None  # batch norm's


def test_a_fused_difference_with_a_one_element_operand_has_its_gradient_on_every_call():
    f = tg.fuse(lambda x, c: (x - c).mean())
    for _ in range(3):  # the first call's backward probes, the later ones run compiled
        x = tg.tensor(np.ones((2, 3)), requires_grad=True)
        c = tg.tensor(np.ones(1), requires_grad=True)
        f(x, c).backward()
        np.testing.assert_array_equal(c.grad.data, [-1.0])
        np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 1 / 6))


def test_a_fused_program_runs_the_lowered_functions(monkeypatch):
    used = []
    lower = LOWERINGS["linear"]

    def spy(i, examples, **kw):
        low = lower(i, examples, **kw)
        used.append((i, low is not None))
        return low
    monkeypatch.setitem(LOWERINGS, "linear", spy)

    @tg.fuse
    def block(x, w, b):
        h = tg.ops.linear(x, w, b)
        return (h - h.mean(axis=0)).sum()

    x = tg.tensor(np.ones((4, 3)))
    w, b = tg.tensor(np.ones((2, 3)), requires_grad=True), tg.tensor(np.zeros(2),
                                                                     requires_grad=True)
    for _ in range(2):  # the second backward runs the specialised program
        block(x, w, b).backward()
    assert (1, True) in used  # the weight's gradient lowered
    np.testing.assert_allclose(w.grad.data, np.zeros((2, 3)), atol=1e-12)


def test_every_lowering_is_checked_here():
    assert set(LOWERINGS) == {"linear", "mean", "sub", "relu", "square", "rsqrt"}, \
        f"new lowerings need a test above: {sorted(LOWERINGS)}"


def test_lowerings_are_found_by_op_name_for_the_ops_they_were_written_for():
    for op in (_linear, _mean, sub, relu, square, rsqrt):
        assert lowering_for(op) is LOWERINGS[op.name]
    # another op of the same name (a user's) keeps its own functions
    users_relu = tg.Op("relu", lambda x: np.maximum(x, 0), lambda xp, g, out, x: g * (x > 0))
    assert lowering_for(users_relu) is None
    assert lowering_for(tg.ops.elementwise.exp) is None  # no lowering


def test_a_users_op_named_like_a_lowered_one_runs_its_own_functions_when_fused():
    calls = []

    def forward(x):
        calls.append("forward")
        return x - 1.0

    mean = tg.Op("mean", forward, lambda xp, g, out, x: g, elementwise=True)

    @tg.fuse
    def f(x):
        return mean(x * 2.0).sum()

    for _ in range(2):
        x = tg.tensor(np.ones((3, 2)), requires_grad=True)
        f(x).backward()
        np.testing.assert_array_equal(x.grad.data, np.full((3, 2), 2.0))
    assert calls == ["forward"] * 3  # the trace and two compiled calls
