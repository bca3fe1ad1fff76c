"""compile.fuse: a traced composition is one graph node with exactly the unfused gradients."""
import contextlib
import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.compile.fuse import fuse
from tensorgrad.testing import shapes


def _norm(x, w, b, eps=1e-5):
    """Batch-norm-like: reductions, broadcasting, pow, and two auxiliary outputs."""
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return (x - mu) * (w * (var + eps) ** -0.5) + b, mu, var


_norm_fused = fuse(_norm)


def _inputs(shape, seed, grads=(True, True, True)):
    rng = np.random.default_rng(seed)
    c = shape[1:]
    arrays = [rng.standard_normal(shape), rng.standard_normal(c) + 2, rng.standard_normal(c)]
    return [tg.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]


batch_shapes = shapes(min_dims=2, max_dims=3, min_side=2, max_side=5)


@given(shape=batch_shapes, seed=st.integers(0, 99),
       grads=st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(any))
def test_fused_values_and_gradients_equal_the_unfused_ones(shape, seed, grads):
    results = []
    for fn in (_norm, _norm_fused):
        xs = _inputs(shape, seed, grads)
        out, mu, var = fn(*xs)
        g = np.random.default_rng(seed + 1).standard_normal(out.shape)
        out.backward(g)
        results.append((out.data, mu.data, var.data, [x.grad for x in xs]))
    (o1, m1, v1, g1), (o2, m2, v2, g2) = results
    for a, b in ((o1, o2), (m1, m2), (v1, v2)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    for a, b, wanted in zip(g1, g2, grads):
        if not wanted:
            assert a is None and b is None
        else:
            np.testing.assert_allclose(b.data, a.data, rtol=1e-10, atol=1e-12)


@given(shape=batch_shapes, seed=st.integers(0, 99))
def test_fused_passes_gradcheck_and_gradgradcheck(shape, seed):
    xs = _inputs(shape, seed)
    fn = lambda x, w, b: _norm_fused(x, w, b)[0]  # noqa: E731
    assert tg.gradcheck(fn, xs)
    assert tg.gradgradcheck(fn, xs)


def test_one_node_one_trace_per_shape_and_keyword():
    f = fuse(_norm)
    xs = _inputs((4, 3), 0)
    tg.fast_paths(reset=True)
    out = f(*xs)[0]
    assert out.grad_fn.name == "fused[_norm]" and _hits("fused_program") == 1
    f(*_inputs((4, 3), 1))
    assert len(f.programs) == 1
    f(*_inputs((5, 3), 1))
    f(*_inputs((4, 3), 1), eps=0.1)
    assert len(f.programs) == 3


def test_aux_outputs_carry_no_graph_and_no_grad_records_nothing():
    xs = _inputs((4, 3), 0)
    out, mu, var = _norm_fused(*xs)
    assert out.requires_grad and not mu.requires_grad and not var.requires_grad
    with tg.no_grad():
        out2 = _norm_fused(*xs)[0]
    assert not out2.requires_grad and out2.grad_fn is None
    np.testing.assert_array_equal(out2.data, out.data)


def test_an_input_the_result_ignores_gets_a_zero_gradient():
    f = fuse(lambda x, y: (x * 2).sum())
    x, y = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0], requires_grad=True)
    f(x, y).backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(y.grad.data, [0.0])


def test_a_captured_tensor_that_requires_grad_is_an_error():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    f = fuse(lambda x: x * w)
    with pytest.raises(tg.TraceError, match="not an argument"):
        f(tg.tensor([1.0, 1.0], requires_grad=True))


def test_non_tensor_arguments_are_rejected():
    with pytest.raises(TypeError, match="argument 0 must be a Tensor"):
        _norm_fused(np.ones((3, 2)), *_inputs((3, 2), 0)[1:])


def test_nested_fused_functions_are_inlined_into_the_outer_trace():
    inner = fuse(lambda x: x * x)
    outer = fuse(lambda x: inner(x).sum() * 3)
    x = tg.tensor([1.0, -2.0, 0.5], requires_grad=True)
    outer(x).backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_inputs_reached_by_one_array_get_separate_gradient_buffers():
    # inside the program (a + b) * c hands the same array to a and b: the leaves must not
    # share it (accumulating into one would change the other)
    @tg.fuse
    def f(a, b, c):
        return ((a + b) * c).sum()

    a, b, c = (tg.tensor(np.full((3, 2), v), requires_grad=True) for v in (1.0, 2.0, 3.0))
    f(a, b, c).backward()
    assert not np.may_share_memory(a.grad.data, b.grad.data)
    a.grad.data += 1.0  # what a later backward's in-place accumulation does
    np.testing.assert_array_equal(b.grad.data, np.full((3, 2), 3.0))


def test_a_gradient_passed_through_a_program_is_the_leafs_own_full_array():
    # inside the program x's gradient is the incoming array itself, b's a column sum of it and
    # y's a compact 0-d one (the vjp of sum): each leaf must still get a full, writable array
    # of its own, as the engine gives it for unfused ops
    @tg.fuse
    def f(x, b, y):
        return x + b + (y * 0.0).sum()

    x = tg.tensor(np.ones((3, 2)), requires_grad=True)
    b = tg.tensor(np.ones((1, 2)), requires_grad=True)
    y = tg.tensor(np.ones(4), requires_grad=True)
    w = tg.tensor(np.arange(6.0).reshape(3, 2))
    out = f(x, b, y)
    (out * w).sum().backward()
    np.testing.assert_array_equal(x.grad.data, w.data)
    np.testing.assert_array_equal(b.grad.data, [[6.0, 9.0]])
    np.testing.assert_array_equal(y.grad.data, np.zeros(4))
    for t in (x, b, y):
        assert t.grad.data.flags.writeable and t.grad.shape == t.shape
    assert not np.may_share_memory(x.grad.data, w.data)
    x.grad.data += 1.0  # a later backward accumulates in place: nothing else may change
    np.testing.assert_array_equal(w.data, np.arange(6.0).reshape(3, 2))


def test_specialised_backward_follows_the_incoming_gradient_shape_and_dtypes():
    # the backward is specialised on its first call: later calls with a broadcast gradient (from
    # .sum()) or a full one, and a float32 input beside a float64 one, must still be exact
    def f(x, b):
        return (x * b + b).exp()

    fused = fuse(f)
    rng = np.random.default_rng(4)
    for reduce in ("sum", "weighted", "sum", "weighted"):
        grads, data = [], rng.standard_normal((4, 3)).astype(np.float32)
        for fn in (f, fused):
            x = tg.tensor(data, requires_grad=True)
            b = tg.tensor(np.linspace(0.1, 0.3, 3), requires_grad=True)  # float64
            out = fn(x, b)
            (out.sum() if reduce == "sum" else (out * np.arange(12.0).reshape(4, 3)).sum()
             ).backward()
            grads.append((x.grad.data, b.grad.data))
        (gx, gb), (fx, fb) = grads
        assert fx.dtype == np.float32 and fb.dtype == np.float64 and fb.shape == (3,)
        np.testing.assert_allclose(fx, gx, rtol=1e-6)
        np.testing.assert_allclose(fb, gb, rtol=1e-12)


def test_an_l2_term_inside_a_fused_function_adds_to_the_other_gradients():
    # sum_squares hands over its gradient lazily (xp.Scaled); inside a program it is computed
    # where other gradients of the same input are added to it (this raised a TypeError)
    rng = np.random.default_rng(0)
    w0, v0 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def f(w, v):
        return tg.ops.sum_squares(w) * 2.0 + (w * v).sum()

    grads = []
    for fn in (f, tg.fuse(f)):
        w, v = tg.tensor(w0, requires_grad=True), tg.tensor(v0)
        for _ in range(3):  # probing backward, then the compiled one
            w.grad = None
            fn(w, v).backward()
            grads.append(w.grad.data)
    for g in grads:
        np.testing.assert_allclose(g, 4 * w0 + v0, rtol=1e-12)


def _hits(path):
    return tg.fast_paths()[path].hits


_BIG = 400 * 50 * 8  # the bytes of one large array below


def _big_inputs(seed):
    # large enough that the arrays dominate what tracemalloc sees (numpy reports to it)
    return _inputs((400, 50), seed)


def _lean(on):
    """As is, or with lean forwards off (a fused function then compiles its programs anew)."""
    return contextlib.nullcontext() if on else tg.fast_mode(False, paths=["lean_forward"])


def _traced_memory(run):
    """(bytes still allocated after run(), peak during it), relative to before; and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = run()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - base, peak - base, result


def test_once_its_backward_is_compiled_a_forward_keeps_only_what_that_backward_reads():
    f = fuse(_norm)
    g = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
    want = None
    for call in range(4):  # full forward + probing backward, full + compiled, then lean twice
        xs = _inputs((5, 3), 7)
        tg.fast_paths(reset=True)
        out, mu, var = f(*xs)
        assert _hits("lean_forward") == (call >= 1)  # lean from the first forward after a compile
        out.backward(g)
        got = [out.data, mu.data, var.data] + [x.grad.data for x in xs]
        if want is None:
            want = got
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    xs = _inputs((5, 3), 7)
    out, mu, var = _norm(*xs)
    out.backward(g)
    for a, b in zip([out.data, mu.data, var.data] + [x.grad.data for x in xs], want):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_a_lean_forward_holds_less_memory_for_the_backward_than_a_full_one():
    # the graph of a lean forward keeps only the values its backward reads; with lean_forward
    # off it keeps every intermediate (the same program otherwise)
    held, grads = {}, {}
    for lean in (True, False):
        with _lean(lean):
            f = fuse(_norm)
            for _ in range(2):  # probing backward, then the compiled one
                f(*_big_inputs(0))[0].backward(np.ones((400, 50)))
            xs = _big_inputs(0)
            held[lean], _, (out, _, _) = _traced_memory(lambda: f(*xs))
            out.backward(np.ones((400, 50)))
            grads[lean] = [x.grad.data for x in xs]
    # _norm's (x - mu) * factor is read by no vjp: one (400, 50) float64 array less at least
    assert held[False] - held[True] > 0.9 * _BIG
    for a, b in zip(grads[True], grads[False]):
        np.testing.assert_array_equal(a, b)


def test_a_forward_no_backward_follows_keeps_only_its_results():
    f = fuse(_norm)
    xs = _big_inputs(1)
    with_graph = [t.data for t in f(*xs)]
    peaks = {}
    for lean in (False, True):
        with _lean(lean):
            with tg.no_grad():
                f(*xs)  # compiles the forward that keeps only the results
                tg.fast_paths(reset=True)
                _, peaks[lean], without = _traced_memory(lambda: [t.data for t in f(*xs)])
            assert _hits("lean_forward") == lean
        for a, b in zip(without, with_graph):
            np.testing.assert_array_equal(a, b)
    # the lean forward frees each intermediate after its last use instead of at the return
    assert peaks[False] - peaks[True] > 0.9 * _BIG


def test_a_backward_frees_the_saved_values_as_it_goes_unless_the_graph_is_retained():
    f = fuse(_norm)
    g = np.ones((400, 50))
    for _ in range(2):
        f(*_big_inputs(2))[0].backward(g)
    peaks = {}
    for retain in (True, False):
        xs = _big_inputs(2)
        out = f(*xs)[0]
        tg.fast_paths(reset=True)
        _, peaks[retain], _ = _traced_memory(lambda: out.backward(g, retain_graph=retain))
        assert _hits("early_free") == (not retain)
    assert peaks[False] < peaks[True]


def test_the_last_backward_through_a_node_frees_its_values_a_retained_one_keeps_them():
    f = fuse(_norm)
    g = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
    for _ in range(2):  # probing backward, then the compiled one
        xs = _inputs((5, 3), 3)
        f(*xs)[0].backward(g)
    want = [x.grad.data.copy() for x in xs]
    xs = _inputs((5, 3), 3)
    out = f(*xs)[0]
    tg.fast_paths(reset=True)
    out.backward(g, retain_graph=True)
    assert _hits("early_free") == 0
    out.backward(g)  # the second goes through the same values, then frees them
    assert _hits("early_free") == 1
    for x, w in zip(xs, want):
        np.testing.assert_array_equal(x.grad.data, 2 * w)
    with pytest.raises(tg.GraphFreedError):
        out.backward(g)


def test_a_backward_after_an_unfinished_last_backward_says_the_values_are_gone():
    stop = []

    def vjp(xp, g, out, x):
        if stop:  # stops inside the program, after the node handed over its values
            raise KeyboardInterrupt
        return g * 2

    double = tg.Op("double", lambda x: x * 2, vjp, elementwise=True)
    f = fuse(lambda x: (double(x) * x).sum())
    for _ in range(2):
        f(tg.tensor(np.ones((5, 3)), requires_grad=True)).backward()
    out = f(tg.tensor(np.ones((5, 3)), requires_grad=True))
    stop.append(True)
    with pytest.raises(KeyboardInterrupt):
        out.backward()
    stop.clear()
    with pytest.raises(tg.GraphFreedError, match="did not finish"):
        out.backward()


def test_a_tensor_passed_twice_has_one_gradient_per_position_under_create_graph():
    f = tg.fuse(lambda x, y: x * y)
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (g,) = tg.grad(f(x, x), x, np.ones(2), create_graph=True)
    np.testing.assert_array_equal(g.data, [2.0, 4.0])  # d(x * x)/dx, as unfused
    (h,) = tg.grad(g.sum(), x)
    np.testing.assert_array_equal(h.data, [2.0, 2.0])


def test_a_result_no_input_requiring_grad_reaches_requires_no_grad():
    f = tg.fuse(lambda x, c: c * 2.0)
    x = tg.tensor(np.ones(2), requires_grad=True)
    c = tg.tensor(np.array([1.0, -1.0]))
    assert f(x, c).requires_grad is False  # as (c * 2.0) unfused
    assert f(c, x).requires_grad is True   # the same program, the other mask


@pytest.mark.parametrize("off", [[], ["vjp_all"], None])
def test_two_backwards_with_the_same_gradient_array_through_a_retained_fused_node(off):
    """A fused node's per-input gradients (vjp_all off) are handed out once each: a leaf keeps
    one and adds the next backward's into it, so the second backward must not hand out that
    same (since grown) array again because it brings the same gradient object (x also gets a
    gradient from outside the node: the one added into what x keeps)."""
    fused = tg.fuse(lambda x, w: tg.tanh(x * w) * x)

    def block(x, w):
        other = x * 3.0  # recorded first, so its gradient reaches x after the node's
        return other + fused(x, w)  # (add hands the same gradient array to both)
    x = tg.tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), requires_grad=True)
    w = tg.tensor(np.full((1, 3), 0.5), requires_grad=True)
    g = np.ones((2, 3))
    mode = tg.fast_mode(False) if off is None else tg.fast_mode(False, paths=off) if off else \
        tg.fast_mode(True)
    with mode:
        once = [t.grad for t in _grads_after(block, x, w, g, times=1)]
        twice = [t.grad for t in _grads_after(block, x, w, g, times=2)]
    for a, b in zip(once, twice):
        np.testing.assert_allclose(b.data, 2 * a.data, rtol=1e-12)


def _grads_after(block, x, w, g, times):
    x.grad = w.grad = None
    out = block(x, w)
    for k in range(times):
        out.backward(g, retain_graph=k < times - 1)
    return x, w
