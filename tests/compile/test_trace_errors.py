"""compile.fuse never replays a wrong answer: every op is recorded and recomputed on each call
(comparisons and the other non-differentiable ops included), and whatever would freeze a value
seen while tracing (reading it, branching on it, drawing random numbers, in-place changes)
raises tg.TraceError naming the fused function and the user's line."""
import copy
import operator

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F

# ---- defect 1: non-differentiable ops are recorded, not frozen as constants ----------------------
A = np.array([1.0, -1.0, 2.0, -0.5])
SIGNS = [A, -A, np.array([-3.0, 0.25, 4.0, -2.0])]  # three calls: first, flipped, mixed


def _run(fn, inputs, grads=None):
    """fn's values and its inputs' gradients (the output's gradient: 1, 2, ...) per call; the
    float inputs require grad (or those flagged in `grads`)."""
    out = []
    for arrays in inputs:
        flags = grads or [a.dtype.kind == "f" for a in arrays]
        xs = [tg.tensor(a, requires_grad=g) for a, g in zip(arrays, flags)]
        y = fn(*xs)
        got = None
        if y.requires_grad:
            y.backward(np.arange(1.0, y.size + 1).reshape(y.shape))
            got = [None if x.grad is None else x.grad.data for x in xs]
        out.append((y.data, got))
    return out


def _assert_fused_matches_eager(fn, inputs, fused=None, grads=None):
    """fuse(fn) (or `fused`) gives fn's values and gradients on each call."""
    fused = tg.fuse(fn) if fused is None else fused
    for (want, want_g), (got, got_g) in zip(_run(fn, inputs, grads),
                                            _run(fused, inputs, grads)):
        np.testing.assert_array_equal(got, want)
        if want_g is None:
            assert got_g is None
        else:
            for g, w in zip(got_g, want_g):
                if w is None:  # eager: unused; fused: zeros (see test_fuse.py)
                    assert g is None or not g.any()
                else:
                    np.testing.assert_array_equal(g, w)


def test_where_of_a_comparison_is_recomputed_on_every_call():
    f = tg.fuse(lambda x: tg.where(x > 0, x, x * 0.1))
    assert np.allclose(f(tg.tensor([1.0, -1.0, 2.0])).data, [1.0, -0.1, 2.0])
    np.testing.assert_allclose(f(tg.tensor([-1.0, 1.0, -2.0])).data, [-0.1, 1.0, -0.2],
                               rtol=1e-6)
    _assert_fused_matches_eager(lambda x: tg.where(x > 0, x, x * 0.1), [(a,) for a in SIGNS])


def _select(cond, x):
    return tg.where(cond, x * 2.0, x * -3.0)


NAN = [np.array([1.0, np.nan, 2.0, -1.0]), np.array([np.nan, 1.0, -2.0, np.nan]),
       np.array([3.0, 4.0, np.nan, 1.0])]
INF = [np.array([1.0, np.inf, 2.0, -1.0]), np.array([-np.inf, 1.0, -2.0, np.inf]),
       np.array([3.0, 4.0, np.inf, 1.0])]

NONDIFF = {  # name -> (function of one or two inputs, the inputs of three calls)
    "sign": (lambda x: x * tg.sign(x) + tg.sign(x), [(a,) for a in SIGNS]),
    "isnan": (lambda x: tg.where(tg.isnan(x), 0.0, x * 2.0), [(a,) for a in NAN]),
    "isfinite": (lambda x: tg.where(tg.isfinite(x), x * 2.0, 0.0), [(a,) for a in INF]),
    "equal": (lambda x, y: _select(tg.equal(x, y), x), [(a, np.abs(a)) for a in SIGNS]),
    "not_equal": (lambda x, y: _select(tg.not_equal(x, y), x), [(a, np.abs(a)) for a in SIGNS]),
    "less": (lambda x, y: _select(tg.less(x, y), x), [(a, -a[::-1]) for a in SIGNS]),
    "less_equal": (lambda x: _select(x <= 1.0, x), [(a,) for a in SIGNS]),
    "greater": (lambda x: _select(x > 0.0, x), [(a,) for a in SIGNS]),
    "greater_equal": (lambda x: _select(tg.greater_equal(x, -0.5), x), [(a,) for a in SIGNS]),
    "logical_and": (lambda x: _select(tg.logical_and(x > -1.0, x < 1.5), x),
                    [(a,) for a in SIGNS]),
    "logical_or": (lambda x: _select((x < -0.75) | (x > 1.5), x), [(a,) for a in SIGNS]),
    "logical_xor": (lambda x: _select(tg.logical_xor(x > 0, x > 1.5), x), [(a,) for a in SIGNS]),
    "logical_not": (lambda x: _select(~(x > 0), x), [(a,) for a in SIGNS]),
    "bool inputs": (lambda x, m: _select(tg.logical_and(m, x > 0), x),
                    [(a, a < 1.5) for a in SIGNS]),
}


@pytest.mark.parametrize("name", sorted(NONDIFF))
def test_non_differentiable_ops_are_recomputed_on_every_call(name):
    fn, inputs = NONDIFF[name]
    _assert_fused_matches_eager(fn, inputs)


def test_a_result_of_non_differentiable_ops_only_carries_no_graph():
    f = tg.fuse(lambda x: tg.sign(x) * 2.0)
    for a in SIGNS:
        y = f(tg.tensor(a, requires_grad=True))
        assert not y.requires_grad
        np.testing.assert_array_equal(y.data, np.sign(a) * 2.0)


def test_detach_is_recorded_as_a_gradient_free_step():
    _assert_fused_matches_eager(lambda x: x * x.detach(), [(a,) for a in SIGNS])


def test_a_comparison_keeps_working_inside_nested_fused_functions():
    inner = tg.fuse(lambda x: tg.where(x > 0, x, -x))
    outer = tg.fuse(lambda x: inner(x) * 2.0)
    _assert_fused_matches_eager(lambda x: tg.where(x > 0, x, -x) * 2.0, [(a,) for a in SIGNS],
                                outer)


def test_one_hot_float_targets_of_cross_entropy_are_inputs_of_the_trace():
    rng = np.random.default_rng(0)
    logits = [rng.standard_normal((4, 3)) for _ in range(3)]
    targets = [np.eye(3)[rng.integers(0, 3, 4)] for _ in range(3)]
    _assert_fused_matches_eager(lambda x, t: F.cross_entropy(x, t),
                                [(x, t) for x, t in zip(logits, targets)], grads=[True, False])


# ---- defect 2 and every path that reads a traced value: tg.TraceError at the user's line -------
def _raises(fn, *arrays, line, name=None, match=None):
    """Calling fuse(fn) raises TraceError naming fn and containing the source text `line`."""
    fused = tg.fuse(fn)
    with pytest.raises(tg.TraceError) as info:
        fused(*[tg.tensor(a) for a in (arrays or (A,))])
    msg = str(info.value)
    assert f"fuse({name or fn.__name__})" in msg, msg
    assert line in msg, msg
    assert __file__.rsplit("/", 1)[-1] in msg, msg
    if match is not None:
        assert match in msg, msg
    return msg


def test_branching_on_item_raises():
    def leaky(x):
        if x.sum().item() > 0:
            return x * 2.0
        return x * 3.0

    _raises(leaky, line="if x.sum().item() > 0:", match="item()")


def test_branching_on_a_comparison_raises():
    def leaky(x):
        if x.sum() > 0:
            return x * 2.0
        return x * 3.0

    _raises(leaky, line="if x.sum() > 0:", match="bool()")


def test_a_branch_is_not_replayed_silently_on_the_second_call():
    calls = []

    def branchy(x):
        calls.append(1)
        return x * 2.0 if x.sum() > 0 else x * 3.0

    f = tg.fuse(branchy)
    for a in (A, -A):
        with pytest.raises(tg.TraceError):
            f(tg.tensor(a))


def _float(x):
    return x * float(x.sum())


def _int(x):
    return x * int(x.sum())


def _index(x):
    return x * [1.0, 2.0, 3.0][operator.index(x[0].astype("int64"))]


def _range(x):
    return x * len(range(x[0].astype("int64")))


def _numpy(x):
    return x * x.numpy()


def _tolist(x):
    return x * x.tolist()[0]


def _asarray(x):
    return x * np.asarray(x)


def _array_dtype(x):
    return x * np.array(x, dtype=np.float64)


def _iterate(x):
    total = x[0] * 0.0
    for v in x:
        if v > 0:
            total = total + v
    return total


def _data(x):
    return x * x.data


def _wrap(x):
    return x * tg.Tensor(x)


def _tensor(x):
    return x * tg.tensor(x)


def _tensor_index(x):
    return x[tg.tensor(np.array([0, 2]))[(x[:2] > 0).astype("int64")]]


def _mask_index(x):
    return x[x > 0].sum()


def _deepcopy(x):
    return x * copy.deepcopy(x)


VALUE_READS = {  # function -> its offending line's text
    _float: "x * float(x.sum())", _int: "x * int(x.sum())",
    _index: "operator.index(x[0]", _range: "len(range(x[0]", _numpy: "x * x.numpy()",
    _tolist: "x * x.tolist()[0]", _asarray: "x * np.asarray(x)",
    _array_dtype: "np.array(x, dtype=np.float64)", _iterate: "if v > 0:", _data: "x * x.data",
    _wrap: "x * tg.Tensor(x)", _tensor: "x * tg.tensor(x)",
    _tensor_index: "(x[:2] > 0).astype", _mask_index: "x[x > 0].sum()",
    _deepcopy: "x * copy.deepcopy(x)",
}


@pytest.mark.parametrize("fn", list(VALUE_READS), ids=lambda f: f.__name__)
def test_reading_a_traced_value_raises_at_the_users_line(fn):
    _raises(fn, line=VALUE_READS[fn])


def test_the_message_says_why_and_what_to_do():
    msg = _raises(lambda x: x * x.sum().item(), line="x * x.sum().item()", name="<lambda>")
    assert "tg.where" in msg and "first call" in msg


def test_a_tensor_leaked_from_a_trace_cannot_be_used_later():
    leaked = []

    def keep(x):
        y = x * 2.0
        leaked.append(y)
        return y

    tg.fuse(keep)(tg.tensor(A))
    with pytest.raises(tg.TraceError, match="fuse\\(keep\\)"):
        leaked[0] + 1.0
    with pytest.raises(tg.TraceError):
        leaked[0].item()
    assert "traced" in repr(leaked[0])


def test_in_place_changes_of_a_traced_tensor_raise():
    def requires_grad_(x):
        y = x * 2.0
        y.requires_grad_()
        return y

    def write_data(x):
        y = x * 2.0
        y.data[0] = 5.0
        return y

    def set_data(x):
        y = x * 2.0
        y.data = np.zeros(4)
        return y

    def setitem(x):
        y = x * 2.0
        y[0] = 5.0
        return y

    def retain_grad(x):
        y = x * 2.0
        y.retain_grad()
        return y

    _raises(requires_grad_, line="y.requires_grad_()")
    _raises(write_data, line="y.data[0] = 5.0")
    _raises(set_data, line="y.data = np.zeros(4)")
    _raises(setitem, line="y[0] = 5.0")
    _raises(retain_grad, line="y.retain_grad()")


def test_a_gradient_taken_inside_the_trace_raises():
    def inner_backward(x):
        y = (x * x).sum()
        y.backward()
        return y

    def inner_grad(x):
        y = (x * x).sum()
        return tg.grad(y, x)[0]

    x = tg.tensor(A, requires_grad=True)
    for fn, line in ((inner_backward, "y.backward()"), (inner_grad, "tg.grad(y, x)[0]")):
        with pytest.raises(tg.TraceError, match=line.replace("(", "\\(").replace(")", "\\)")
                           .replace("[", "\\[").replace("]", "\\]")):
            tg.fuse(fn)(x)


def test_a_captured_tensor_that_requires_grad_raises_at_the_users_line():
    w = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)

    def scaled(x):
        return x * w

    msg = _raises(scaled, line="return x * w", match="not an argument")
    assert "(4,)" in msg


def test_random_draws_inside_a_trace_raise():
    layer = nn.Dropout(0.5, seed=0)
    cases = {
        "randn": (lambda x: x + tg.randn(4, seed=0), "tg.randn(4, seed=0)"),
        "rand": (lambda x: x + tg.rand(4), "tg.rand(4)"),
        "F.dropout": (lambda x: F.dropout(x, 0.5), "F.dropout(x, 0.5)"),
        "nn.Dropout": (lambda x: layer(x), "layer(x)"),
    }
    for fn, line in cases.values():
        msg = _raises(fn, line=line, name="<lambda>")
        assert "argument" in msg and "random" in msg


def test_dropout_in_eval_mode_and_p_zero_stay_allowed():
    layer = nn.Dropout(0.5).eval()
    _assert_fused_matches_eager(lambda x: layer(x) + F.dropout(x, 0.0) + F.dropout(x, 0.5, False),
                                [(a,) for a in SIGNS])


def test_shapes_are_static_and_may_be_read():
    def shaped(x):
        n = len(x)
        assert x.shape == (4,) and x.ndim == 1 and x.size == 4 and x.numel() == 4
        assert x.dtype == np.float64 and x.dim() == 1
        return (x * n + tg.zeros_like(x) + tg.ones_like(x) * x.shape[0]).reshape(2, 2)

    _assert_fused_matches_eager(shaped, [(a,) for a in SIGNS])


def test_iterating_over_a_traced_tensor_is_allowed():
    def rows(x):
        return tg.stack([r * 2.0 for r in x]).sum(axis=1)

    _assert_fused_matches_eager(rows, [(a.reshape(2, 2),) for a in SIGNS])


def test_printing_a_traced_tensor_shows_no_value():
    seen = []

    def show(x):
        seen.append(repr(x * 2.0))
        return x * 2.0

    tg.fuse(show)(tg.tensor(A))
    assert "traced" in seen[0] and "(4,)" in seen[0] and "2." not in seen[0]


def test_integer_labels_of_cross_entropy_inside_a_trace_raise():
    logits, labels = np.zeros((4, 3)), np.array([0, 2, 1, 0])
    f = tg.fuse(lambda x, y: F.cross_entropy(x, y))
    with pytest.raises(tg.TraceError, match="F.cross_entropy\\(x, y\\)"):
        f(tg.tensor(logits), tg.tensor(labels))


def test_batch_norm_updating_running_statistics_inside_a_trace_raises():
    rm, rv = np.zeros(3), np.ones(3)
    f = tg.fuse(lambda x: F.batch_norm(x, rm, rv, training=True))
    with pytest.raises(tg.TraceError, match="running"):
        f(tg.tensor(np.arange(12.0).reshape(4, 3)))
    np.testing.assert_array_equal(rm, np.zeros(3))
    g = tg.fuse(lambda x: F.batch_norm(x, None, None, training=True))  # nothing to update
    x = np.arange(12.0).reshape(4, 3) ** 2
    np.testing.assert_allclose(g(tg.tensor(x)).data,
                               F.batch_norm(tg.tensor(x), None, None, training=True).data)


def test_a_layer_chain_with_side_effects_inside_a_trace_raises():
    model = nn.Sequential(nn.BatchNorm1d(3, affine=False, dtype=np.float64), nn.ReLU())
    f = tg.fuse(lambda x: model(x))
    with pytest.raises(tg.TraceError, match="model\\(x\\)"):
        f(tg.tensor(np.arange(12.0).reshape(4, 3)))
    model.eval()  # no side effects: the chain is inlined into the trace
    _assert_fused_matches_eager(lambda x: model(x), [(np.outer(a, [1.0, 2.0, -3.0]),)
                                                     for a in SIGNS])


def test_a_custom_function_inside_a_trace_raises():
    class Double(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

    with pytest.raises(tg.TraceError, match="Double.apply\\(x\\)"):
        tg.fuse(lambda x: Double.apply(x))(tg.tensor(A))


# ---- in-place changes: one function per in-place method and augmented assignment --------------
def _iadd(x):
    y = x * 2.0
    y += x
    return y


def _isub(x):
    y = x * 2.0
    y -= 1.0
    return y


def _imul(x):
    y = x * 2.0
    y *= x
    return y


def _itruediv(x):
    y = x * 2.0
    y /= 3.0
    return y


IN_PLACE = {  # the function, the user's line named by the error, the method named
    "add_": (lambda x: (x * 2.0).add_(x, alpha=2.0), "(x * 2.0).add_(x, alpha=2.0)", "add_"),
    "sub_": (lambda x: (x * 2.0).sub_(1.0), "(x * 2.0).sub_(1.0)", "sub_"),
    "mul_": (lambda x: (x * 2.0).mul_(x), "(x * 2.0).mul_(x)", "mul_"),
    "div_": (lambda x: (x * 2.0).div_(3.0), "(x * 2.0).div_(3.0)", "div_"),
    "zero_": (lambda x: (x * 2.0).zero_(), "(x * 2.0).zero_()", "zero_"),
    "fill_": (lambda x: (x * 2.0).fill_(1.5), "(x * 2.0).fill_(1.5)", "fill_"),
    "copy_": (lambda x: (x * 2.0).copy_(x), "(x * 2.0).copy_(x)", "copy_"),
    "clamp_": (lambda x: (x * 2.0).clamp_(-1.0, 1.0), "(x * 2.0).clamp_(-1.0, 1.0)", "clamp_"),
    "clip_": (lambda x: (x * 2.0).clip_(max=1.0), "(x * 2.0).clip_(max=1.0)", "clamp_"),
    "+=": (_iadd, "y += x", "add_"),
    "-=": (_isub, "y -= 1.0", "sub_"),
    "*=": (_imul, "y *= x", "mul_"),
    "/=": (_itruediv, "y /= 3.0", "div_"),
}


@pytest.mark.parametrize("op", list(IN_PLACE))
def test_each_in_place_method_and_augmented_assignment_raises(op):
    fn, line, method = IN_PLACE[op]
    msg = _raises(fn, line=line, name=getattr(fn, "__name__", "<lambda>"),
                  match=f"{method}() changes a tensor in place")
    assert "x = x + y rather than x += y" in msg


def test_an_in_place_change_of_an_input_or_a_captured_tensor_raises_and_changes_nothing():
    captured = tg.tensor(np.ones(4))

    def change_input(x):
        x.mul_(2.0)
        return x * 1.0

    def change_captured(x):
        captured.add_(x)
        return x * 1.0

    _raises(change_input, line="x.mul_(2.0)")
    _raises(change_captured, line="captured.add_(x)")
    np.testing.assert_array_equal(captured.data, np.ones(4))
    assert captured._version == 0
