"""Properties of the graph walk: backward, grad, accumulation, no_grad, detach, higher order."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import Op
from tensorgrad.autograd import walk
from tensorgrad.autograd.xp import Scaled
from tensorgrad.testing import (
    _TWICE,
    _compare,
    _Outcome,
    arrays,
    broadcastable_shapes,
    programs,
    shapes,
    tensors,
)


@given(tensors())
def test_gradient_of_sum_is_ones(x):
    x.sum().backward()
    assert x.grad.shape == x.shape and np.all(x.grad.data == 1)


@given(tensors(shapes(min_dims=1)), st.floats(-3, 3), st.floats(-3, 3), st.data())
def test_backward_is_linear_in_grad(x, a, b, data):
    y = (x * x).tanh() * 3
    g1 = data.draw(arrays(x.shape))
    g2 = data.draw(arrays(x.shape))
    (d1,) = tg.grad(y, x, g1, retain_graph=True)
    (d2,) = tg.grad(y, x, g2, retain_graph=True)
    (d12,) = tg.grad(y, x, a * g1 + b * g2)
    np.testing.assert_allclose(d12.data, a * d1.data + b * d2.data, rtol=1e-10, atol=1e-10)


@given(tensors())
def test_gradients_accumulate_across_backward_calls(x):
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full(x.shape, 5.0))


def test_no_grad_records_nothing_and_works_as_decorator():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = (x * 2).exp().sum()
    assert not y.requires_grad and y.grad_fn is None

    @tg.no_grad()
    def f(t):
        return t * t
    assert not f(x).requires_grad
    assert (x * x).requires_grad  # recording is back on
    with tg.no_grad():
        with tg.enable_grad():
            assert (x * x).requires_grad


def test_detach_cuts_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    z = (y.detach() * x).sum()  # d/dx = y (treated as a constant)
    z.backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 4.0])
    assert np.shares_memory(y.detach().data, y.data)


@given(broadcastable_shapes(2))
def test_broadcast_gradients_equal_explicit_broadcast_to(shapes2):
    sa, sb = shapes2
    a = tg.tensor(np.random.default_rng(0).standard_normal(sa), requires_grad=True)
    b = tg.tensor(np.random.default_rng(1).standard_normal(sb), requires_grad=True)
    out_shape = np.broadcast_shapes(sa, sb)
    (a * b).sin() if False else None
    ga, gb = tg.grad((a * b).tanh().sum(), [a, b])
    a2 = tg.broadcast_to(a, out_shape)
    b2 = tg.broadcast_to(b, out_shape)
    ea, eb = tg.grad((a2 * b2).tanh().sum(), [a, b])
    np.testing.assert_allclose(ga.data, ea.data, rtol=1e-12)
    np.testing.assert_allclose(gb.data, eb.data, rtol=1e-12)


@pytest.mark.parametrize("fn", [lambda z: tg.softmax(z, axis=1), lambda z: tg.log_softmax(z, 1),
                                lambda z: tg.logsumexp(z, axis=1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_stays_finite_for_huge_logits(fn, dtype):
    z = tg.tensor(np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4]], dtype=dtype), requires_grad=True)
    out = fn(z)
    assert np.all(np.isfinite(out.data))
    (out * tg.tensor(np.arange(out.data.size, dtype=dtype).reshape(out.shape))).sum().backward()
    assert np.all(np.isfinite(z.grad.data))


def test_deep_chain_of_100000_ops_does_not_recurse():
    x = tg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_no_work_for_inputs_that_do_not_require_grad():
    calls = []
    probe = Op("probe", np.multiply,
               lambda xp, g, out, a, b: calls.append("a") or g * b,
               lambda xp, g, out, a, b: calls.append("b") or g * a)
    x = tg.tensor(np.ones((3, 2)))                     # an input batch: no grad
    w = tg.tensor(np.ones((3, 2)), requires_grad=True)
    probe(x, w).sum().backward()
    assert calls == ["b"]
    # a branch that leads to no tensor requiring grad records no graph at all
    assert probe(x, x).grad_fn is None


def test_grad_only_walks_paths_to_the_requested_inputs():
    calls = []
    probe = Op("probe", np.multiply,
               lambda xp, g, out, a, b: calls.append("a") or g * b,
               lambda xp, g, out, a, b: calls.append("b") or g * a)
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    (ga,) = tg.grad(probe(a, b).sum(), [a])
    assert calls == ["a"] and a.grad is None and b.grad is None
    np.testing.assert_allclose(ga.data, [3.0, 4.0])


def test_backward_twice_without_retain_graph_is_a_clear_error():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(tg.GraphFreedError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 4 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_nonscalar_backward_needs_a_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 10.0], dtype=np.float32))
    np.testing.assert_allclose(x.grad.data, [2.0, 20.0])


def test_leaves_never_share_a_gradient_buffer():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], dtype=np.float32)
    (a + b).backward(g)
    a.grad.data *= 5
    assert np.all(b.grad.data == 1) and np.all(g == 1)


def test_hessian_vector_product():
    x = tg.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    v = np.array([0.3, 1.0, -2.0])
    (g,) = tg.grad((x ** 3).sum(), x, create_graph=True)
    (hv,) = tg.grad(g, x, v)
    np.testing.assert_allclose(hv.data, 6 * x.data * v)


def test_gradient_penalty_trains_through_the_gradient():
    w = tg.tensor(np.array([[0.5, -1.0], [2.0, 0.1]]), requires_grad=True)
    x = tg.tensor(np.array([[1.0, 2.0], [-1.0, 0.5]]), requires_grad=True)
    out = (x @ w).tanh().sum()
    (gx,) = tg.grad(out, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    assert w.grad is not None
    tg.gradcheck(lambda w: (tg.grad((x @ w).tanh().sum(), x, create_graph=True)[0] ** 2).sum(),
                 [w])


def test_grad_allow_unused():
    a = tg.tensor([1.0], requires_grad=True)
    b = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        tg.grad((a * 2).sum(), [a, b])
    ga, gb = tg.grad((a * 2).sum(), [a, b], allow_unused=True)
    assert gb is None and ga.item() == 2


def test_gradient_dtype_follows_the_leaf():
    w = tg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (w * np.float64(2.0)).sum().backward()  # the product promotes to float64
    assert w.grad.dtype == np.float32


def test_retain_grad_on_a_non_leaf():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.data, 2 * y.data)


_BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / (b * b + 1.0), "maximum": tg.maximum, "minimum": tg.minimum}


@given(shapes=broadcastable_shapes(), op=st.sampled_from(sorted(_BINARY)),
       reduce=st.sampled_from(["sum", "mean", "sum0", "none"]), fused=st.booleans(),
       seed=st.integers(0, 99))
def test_a_reduction_s_compact_gradient_counts_every_broadcast_copy(shapes, op, reduce, fused,
                                                                    seed):
    # .sum() hands an elementwise op a compact gradient (one value standing for a full array):
    # an input it broadcast must still receive the sum over all the copies it was broadcast to
    rng = np.random.default_rng(seed)
    fn = _BINARY[op]

    def loss(a, b):
        out = fn(a, b)
        if reduce == "sum0" and out.ndim:
            return out.sum(axis=0).sum()
        return out.sum() if reduce != "mean" else out.mean()

    run = tg.fuse(loss) if fused else loss
    a, b = (tg.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)
    run(a, b).backward()
    a2, b2 = (tg.tensor(t.data, requires_grad=True) for t in (a, b))
    full = fn(a2, b2)
    scale = 1.0 / max(full.data.size, 1) if reduce == "mean" else 1.0
    full.backward(np.full(full.shape, scale))  # the same gradient, never compact
    for t, ref in ((a, a2), (b, b2)):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(t.grad.data, ref.grad.data, rtol=1e-12, atol=1e-12)


# ---- 0-d leaves: the kept gradient is an array that later terms are added into ------------------
_X0 = -0.665
_SIG = 1.0 / (1.0 + np.exp(-_X0))
_DSIG = _SIG * (1 - _SIG)
# loss(x) for a 0-d x, and d loss / dx at x = _X0
_ZERO_D = {
    "sigmoid+sum_squares": (lambda x: tg.sigmoid(x) + tg.sum_squares(x), _DSIG + 2 * _X0),
    "sum_squares+sigmoid": (lambda x: tg.sum_squares(x) + tg.sigmoid(x), _DSIG + 2 * _X0),
    "sum_squares+sum_squares": (lambda x: tg.sum_squares(x) + tg.sum_squares(x), 4 * _X0),
    "sum_squares(x, x)": (lambda x: tg.sum_squares(x, x), 4 * _X0),
    "x*x+sum_squares": (lambda x: x * x + tg.sum_squares(x), 4 * _X0),
    "sum_squares+x*3": (lambda x: tg.sum_squares(x) + x * 3.0, 2 * _X0 + 3),
    "fused": (tg.fuse(lambda x: tg.sigmoid(x) + tg.sum_squares(x)), _DSIG + 2 * _X0),
}


@pytest.mark.parametrize("case", sorted(_ZERO_D))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("api", ["backward", "grad", "backward twice"])
def test_a_0d_leaf_keeps_every_gradient_term(case, dtype, api):
    fn, expected = _ZERO_D[case]
    x = tg.tensor(np.array(_X0, dtype=dtype), requires_grad=True)
    if api == "grad":
        (got,) = tg.grad(fn(x), x)
    else:
        fn(x).backward()
        if api == "backward twice":  # the second backward adds into the kept gradient
            fn(x).backward()
            expected = 2 * expected
        got = x.grad
    np.testing.assert_allclose(got.data, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert type(got.data) is np.ndarray and got.shape == () and got.dtype == dtype


def test_a_0d_parameter_s_gradient_can_be_zeroed_in_place():
    w = tg.nn.Parameter(np.array(0.5))
    (tg.sigmoid(w) + tg.sum_squares(w)).backward()
    m = tg.nn.Module()
    m.w = w
    m.zero_grad(set_to_none=False)  # writes into .grad.data: must be an array
    assert w.grad.data == 0 and type(w.grad.data) is np.ndarray


def test_the_penalty_s_gradient_has_its_leaf_s_dtype_when_inputs_mix_dtypes():
    w32 = tg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    v64 = tg.tensor(np.ones(2), requires_grad=True)
    tg.sum_squares(w32, v64).backward()  # the float64 total's gradient reaches w32 lazily
    assert w32.grad.dtype == np.float32 and v64.grad.dtype == np.float64
    np.testing.assert_allclose(w32.grad.data, 2.0)


def test_a_leaf_root_keeps_a_gradient_of_its_own_dtype():
    x = tg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    x.backward(tg.tensor(np.full(3, 2.0)))  # a float64 Tensor as the root's gradient
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 2.0)


# ---- the walk's hooks: each fast path switched off alone, on random programs ---------------------
# (tensorgrad/autograd/walk.py, Hooks; the hooks one by one: tests/compile/test_accumulate.py)
WALK_PATHS = sorted(walk._WALK_PATHS)
# switched off, these run the same numpy arithmetic (only calls and memory differ): bitwise the
# fast result. compact_gradient (n * g for n equal terms) and lazy_scaled (the L2 term added
# last, by axpy) reassociate: within the programs' tolerance of the reference.
SAME_MATHS = {"vjp_all", "fresh_gradient", "inplace_accumulate"}


def _outcome(program, arrays, gout, directions):
    return dict(_Outcome(program.eager, program, arrays, gout, directions, True).items())


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(program=programs(), seed=st.integers(0, 2 ** 32 - 1))
def test_each_walk_path_switched_off_alone_agrees_with_fast_and_reference_mode(program, seed):
    """Values, backward(), two backward() calls, grad(), grad(create_graph=True) and second
    order of a drawn program with one of the walk's paths off: bitwise the fast result where
    the path's maths is the same, and as close to the reference as fast mode must be."""
    rng = np.random.default_rng(seed)
    arrays = program.draw_values(rng)
    with tg.no_grad():
        probe = program(*program.leaves(arrays))
    gout = rng.uniform(-1.0, 1.0, probe.shape).astype(probe.dtype)
    directions = [rng.uniform(-1.0, 1.0, a.shape).astype(a.dtype)
                  for i, a in zip(program.inputs, arrays) if i.requires_grad]
    with tg.fast_mode(True):
        fast = _outcome(program, arrays, gout, directions)
        with tg.fast_mode(False):
            ref = _outcome(program, arrays, gout, directions)
            twin = []

            def exact(what, i):  # the program in float64 (float32 results far apart)
                if not twin:
                    twin.append(_outcome(program, [a.astype(np.float64) for a in arrays],
                                         gout.astype(np.float64),
                                         [d.astype(np.float64) for d in directions]))
                return twin[0][what][i]

        for path in WALK_PATHS:
            with tg.fast_mode(False, paths=[path]):
                got = _outcome(program, arrays, gout, directions)
            for what, arrays_ in got.items():
                twice = what == _TWICE
                for i, (g, f, w) in enumerate(zip(arrays_, fast[what], ref[what])):
                    if path in SAME_MATHS:
                        np.testing.assert_array_equal(g, f, err_msg=f"{path} off: {what} {i}")
                    with tg.fast_mode(False):
                        why = _compare(g, w, program.exact and not twice, 8 if twice else 4,
                                       lambda what=what, i=i: exact(what, i))
                    assert why is None, f"{path} off: {what} of input {i}: {why}\n{program!r}"


def test_a_walk_before_the_fast_hooks_are_installed_is_the_reference_walk(monkeypatch):
    monkeypatch.setattr(walk, "_FAST", [])
    monkeypatch.setattr(walk, "_CHOSEN", {})
    assert walk._hooks(True) is walk.REFERENCE and walk._hooks(False) is walk.REFERENCE
    x = tg.tensor(np.ones((3, 4)), requires_grad=True)
    tg.fast_paths(reset=True)
    (x.sum() + tg.sum_squares(x)).backward()
    assert {n for n, p in tg.fast_paths().items() if p.hits} <= {"blas_reduction"}
    np.testing.assert_array_equal(x.grad.data, np.full((3, 4), 3.0))


def test_the_hooks_are_chosen_once_per_set_of_paths():
    chosen = walk._hooks(True)
    assert walk._hooks(True) is chosen and walk._hooks(False) is not chosen
    with tg.fast_mode(False, paths=["vjp_all"]):
        assert walk._hooks(True).gradients is walk._vjps
    assert walk._hooks(True) is chosen and chosen.gradients is walk._vjps_all


def _materialized(g):
    return g.array() if isinstance(g, Scaled) else np.asarray(g)


@settings(max_examples=60, deadline=None)
@given(st.lists(shapes(min_dims=0, max_dims=2, max_side=4), min_size=1, max_size=3),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16), st.booleans())
def test_gradients_vjp_all_is_the_vjps_one_by_one(input_shapes, dtype, seed, fused):
    """The gradients hook: an op's combined vjp (a fused node, sum_squares) against one vjp per
    input, bitwise (the same arithmetic, once for all inputs)."""
    rng = np.random.default_rng(seed)
    xs = [tg.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
          for s in input_shapes]
    f = tg.fuse(lambda *xs: sum((x.tanh() * 2.0).sum() for x in xs)) if fused else tg.sum_squares
    need = list(range(len(xs)))
    got = {}
    for hook in (walk._vjps, walk._vjps_all):
        t = f(*xs)
        assert t._op.vjp_all is not None, t._op
        g = np.asarray(rng.uniform(-1, 1), dtype) if hook is walk._vjps else got["g"]
        got["g"] = g
        grads = hook(walk._namespace(False), t, g, t.data, t._raw, need, True)
        got[hook] = [_materialized(grads[i]) for i in need]
    for a, b in zip(got[walk._vjps], got[walk._vjps_all]):
        np.testing.assert_array_equal(a, b)
