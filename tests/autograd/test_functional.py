"""tg.autograd.functional against torch.autograd.functional: values and nested result structure
from the golden file tests/golden/functional.npz (written by make_golden.py with torch; these
tests do not need it), then what torch's functions promise beyond values: the caller's tensors
untouched, differentiable results under create_graph only, strict mode, v's checks, dtypes."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
from tensorgrad.testing import arrays, broadcastable_shapes

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "functional.npz"
RTOL, ATOL = 1e-10, 1e-12

# the functions of make_golden.py's FUNCTIONAL_FNS, written the same way
SCALAR_INPUT_C = np.array([0.5, -1.0, 2.0])
FNS = {
    "elementwise": lambda x: x.exp() * x.tanh() + x ** 3,
    "matmul": lambda a, b: a @ b,
    "reduction": lambda x: (x ** 2).sum(1) + x.mean(1) ** 2,
    "broadcast": lambda x, y: x * y + y.exp(),
    "mlp": lambda x, w1, b1, w2: (x @ w1 + b1).tanh() @ w2,
    "multi_output": lambda x, y: (x * y.sum(), (x.sum() * y).tanh(), (x ** 2).sum()),
    "scalar_input": lambda x: x.exp() * tg.tensor(SCALAR_INPUT_C) + x ** 2,
    "unused_input": lambda x, y: (x ** 2, x.sum() * 2),
}


def _scalar_of(fn):
    def scalar(*xs):
        out = fn(*xs)
        return sum(((o * o).sum() for o in (out if isinstance(out, tuple) else (out,))), 0) * 0.5
    return scalar


def _golden():
    with np.load(GOLDEN) as f:
        return {k: f[k] for k in f.files}


G = _golden()
CASES = json.loads(str(G["cases"]))


def _structure(res):
    if isinstance(res, tuple):
        return [_structure(r) for r in res]
    assert isinstance(res, tg.Tensor), type(res)
    return f"T{list(res.shape)}"


def _flatten(res, key, out):
    if isinstance(res, tuple):
        for i, r in enumerate(res):
            _flatten(r, f"{key}_{i}", out)
    else:
        out[key] = res


def _args(name):
    """(the inputs as the golden call passed them, v of vjp, v of jvp/hvp/vhp)."""
    case = CASES[name]
    xs = tuple(tg.tensor(G[f"{name}__x{k}"]) for k in range(len(case["inputs"])))
    n_out = sum(1 for k in G if k.startswith(f"{name}__v_out"))
    v_out = tuple(tg.tensor(G[f"{name}__v_out{i}"]) for i in range(n_out))
    v_in = tuple(tg.tensor(G[f"{name}__v_in{k}"]) for k in range(len(xs)))
    value = FNS[name](*xs)
    if not case["tuple"]:
        xs, v_in = xs[0], v_in[0]
    if not isinstance(value, tuple):
        v_out = v_out[0]
    return xs, v_out, v_in


def _call(name, call, **kwargs):
    fn, scalar = FNS[name], _scalar_of(FNS[name])
    xs, v_out, v_in = _args(name)
    return {
        "value": lambda: fn(*(xs if isinstance(xs, tuple) else (xs,))),
        "jacobian": lambda: jacobian(fn, xs, **kwargs),
        "hessian": lambda: hessian(scalar, xs, **kwargs),
        "vjp": lambda: vjp(fn, xs, v_out, **kwargs),
        "jvp": lambda: jvp(fn, xs, v_in, **kwargs),
        "hvp": lambda: hvp(scalar, xs, v_in, **kwargs),
        "vhp": lambda: vhp(scalar, xs, v_in, **kwargs),
    }[call]()


def _assert_golden(name, call, res):
    expected = json.loads(str(G[f"{name}__structure"]))[call]
    assert _structure(res) == expected
    flat = {}
    _flatten(res, f"{name}__{call}", flat)
    assert set(flat) == {k for k in G if k == f"{name}__{call}" or k.startswith(f"{name}__{call}_")}
    for key, t in flat.items():
        assert t.dtype == np.float64 and not t.requires_grad, key
        np.testing.assert_allclose(t.data, G[key], rtol=RTOL, atol=ATOL, err_msg=key)


CALLS = ["value", "jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]


@pytest.mark.usefixtures("each_mode")
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_golden(name, call):
    _assert_golden(name, call, _call(name, call))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kwargs", [dict(strategy="forward-mode"), dict(vectorize=True),
                                    dict(strategy="forward-mode", vectorize=True)])
def test_jacobian_strategies_and_vectorize_give_the_same_jacobian(name, kwargs):
    _assert_golden(name, "jacobian", _call(name, "jacobian", **kwargs))


@pytest.mark.parametrize("name", ["matmul", "mlp", "multi_output", "scalar_input"])
def test_hessian_with_forward_mode_outer_jacobian(name):
    _assert_golden(name, "hessian", _call(name, "hessian",
                                          outer_jacobian_strategy="forward-mode"))


def test_autograd_aliases_are_the_top_level_objects():
    assert tg.autograd.grad is tg.grad
    assert tg.autograd.Function is tg.Function
    assert tg.autograd.functional.jacobian is jacobian


# ---- the caller's tensors and the graph ---------------------------------------------------------
@pytest.mark.parametrize("requires_grad", [False, True])
def test_inputs_are_left_alone_and_results_carry_no_graph(requires_grad):
    x = tg.tensor(np.array([0.3, -0.7, 1.1]), requires_grad=requires_grad)
    y = tg.tensor(np.array([[0.5, 2.0]]), requires_grad=requires_grad)
    before = (x.data.copy(), y.data.copy())
    f = lambda a, b: (a.reshape(3, 1) * b).tanh()  # noqa: E731
    results = [jacobian(f, (x, y)), hessian(lambda a, b: f(a, b).sum(), (x, y)),
               vjp(f, (x, y), tg.ones(3, 2, dtype=np.float64)),
               jvp(f, (x, y), (x, y)), hvp(lambda a, b: f(a, b).sum(), (x, y), (x, y)),
               vhp(lambda a, b: f(a, b).sum(), (x, y), (x, y))]
    flat = {}
    _flatten(tuple(results), "r", flat)
    assert all(not t.requires_grad and t.grad_fn is None for t in flat.values())
    assert x.requires_grad is requires_grad and y.requires_grad is requires_grad
    assert x.grad is None and y.grad is None and x.is_leaf and y.is_leaf
    np.testing.assert_array_equal(x.data, before[0])
    np.testing.assert_array_equal(y.data, before[1])


def test_works_under_no_grad():
    x = tg.tensor(np.array([0.3, -0.7]))
    with tg.no_grad():
        jac = jacobian(lambda a: a ** 3, x)
        _, hv = hvp(lambda a: (a ** 3).sum(), x, tg.ones(2, dtype=np.float64))
    np.testing.assert_allclose(jac.data, np.diag(3 * x.data ** 2))
    np.testing.assert_allclose(hv.data, 6 * x.data)


def _mlp(x, w):
    return (x @ w).tanh().sum(0) * w.sum()


@pytest.mark.parametrize("which", ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"])
def test_create_graph_results_are_differentiable(which):
    """gradcheck and gradgradcheck (float64) of the results as functions of the caller's
    inputs and of v: create_graph keeps them in the caller's graph."""
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    w = tg.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    v_out = tg.tensor(rng.standard_normal(4), requires_grad=True)
    v_x = tg.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    v_w = tg.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    scalar = lambda a, b: (_mlp(a, b) ** 2).sum()  # noqa: E731
    fn, args = {
        "jacobian": (lambda a, b: jacobian(_mlp, (a, b), create_graph=True), (x, w)),
        "hessian": (lambda a, b: hessian(scalar, (a, b), create_graph=True)[1], (x, w)),
        "vjp": (lambda a, b, v: vjp(_mlp, (a, b), v, create_graph=True), (x, w, v_out)),
        "jvp": (lambda a, b, va, vb: jvp(_mlp, (a, b), (va, vb), create_graph=True),
                (x, w, v_x, v_w)),
        "hvp": (lambda a, b, va, vb: hvp(scalar, (a, b), (va, vb), create_graph=True),
                (x, w, v_x, v_w)),
        "vhp": (lambda a, b, va, vb: vhp(scalar, (a, b), (va, vb), create_graph=True),
                (x, w, v_x, v_w)),
    }[which]

    def flat(*a):
        out = {}
        _flatten(fn(*a), "r", out)
        assert all(t.requires_grad for t in out.values())
        return tuple(out.values())
    assert tg.gradcheck(flat, args)
    assert tg.gradgradcheck(flat, args)


def test_create_graph_with_inputs_that_need_no_grad_is_differentiable_in_nothing_else():
    x = tg.tensor(np.array([0.3, -0.7]))
    jac = jacobian(lambda a: a ** 3, x, create_graph=True)
    assert jac.requires_grad and x.grad is None
    (g,) = tg.grad(jac.sum(), jac)  # its graph starts at the detached copy of x
    np.testing.assert_array_equal(g.data, np.ones((2, 2)))


# ---- strict mode, independence, errors ----------------------------------------------------------
def test_unused_input_and_constant_output_give_zeros_without_strict():
    x, y = tg.tensor(np.array([1.0, 2.0])), tg.tensor(np.array([3.0]))
    jx, jy = jacobian(lambda a, b: a * 2, (x, y))
    np.testing.assert_array_equal(jy.data, np.zeros((2, 1)))
    np.testing.assert_array_equal(jx.data, 2 * np.eye(2))
    const = jacobian(lambda a: tg.ones(2, dtype=np.float64), x)
    np.testing.assert_array_equal(const.data, np.zeros((2, 2)))
    _, (gx, gy) = vjp(lambda a, b: a * 2, (x, y), tg.ones(2, dtype=np.float64))
    assert gy.shape == (1,) and not gy.data.any()
    _, jv = jvp(lambda a, b: (a.sum(), tg.zeros(3, dtype=np.float64)), (x, y), (x, y))
    assert jv[0].item() == 3.0 and jv[1].shape == (3,) and not jv[1].data.any()
    h = hessian(lambda a, b: (a ** 2).sum(), (x, y))
    np.testing.assert_array_equal(h[0][0].data, 2 * np.eye(2))
    assert h[1][1].shape == (1, 1) and not h[1][1].data.any() and h[0][1].shape == (2, 1)
    linear = hessian(lambda a: a.sum() * 3, x)  # a constant gradient: a zero Hessian
    np.testing.assert_array_equal(linear.data, np.zeros((2, 2)))
    for product in (hvp, vhp):
        _, (hx, hy) = product(lambda a, b: (a ** 2).sum(), (x, y), (x, y))
        np.testing.assert_array_equal(hx.data, 2 * x.data)
        assert hy.shape == (1,) and not hy.data.any()


@pytest.mark.parametrize("call, match", [
    (lambda x, y: jacobian(lambda a, b: a * 2, (x, y), strict=True),
     r"jacobian: output 0 of the user-provided function is independent of input 1"),
    (lambda x, y: jacobian(lambda a: tg.ones(2), x, strict=True),
     r"jacobian: output 0 of the user-provided function does not require gradients"),
    (lambda x, y: vjp(lambda a, b: a * 2, (x, y), tg.ones(2), strict=True),
     r"vjp: the output of the user-provided function is independent of input 1"),
    (lambda x, y: jvp(lambda a, b: a * 2, (x, y), (x, y), strict=True),
     r"jvp: the output of the user-provided function is independent of input 1"),
    (lambda x, y: hessian(lambda a: a.sum() * 3, x, strict=True),
     r"hessian: while computing the hessian, found that the jacobian .* input 0 is independent"),
    (lambda x, y: hvp(lambda a, b: (a ** 2).sum(), (x, y), (x, y), strict=True),
     r"hvp: the output of the user-provided function is independent of input 1"),
    (lambda x, y: vhp(lambda a: a.sum() * 3, x, x, strict=True),
     r"vhp: while computing the hessian, found that the jacobian .* input 0 is independent"),
    (lambda x, y: jacobian(lambda a: a * 2, x, create_graph=True, strict=True),
     r"jacobian: the jacobian of the user-provided function is independent of input 0\. "
     r"This is not allowed in strict mode when create_graph=True"),
])
def test_strict_mode_raises_where_torch_does(call, match):
    x, y = tg.tensor(np.array([1.0, 2.0])), tg.tensor(np.array([3.0]))
    with pytest.raises(RuntimeError, match=match):
        call(x, y)


def test_strict_mode_passes_a_function_that_uses_every_input():
    x, y = tg.tensor(np.array([1.0, 2.0])), tg.tensor(np.array([3.0]))
    f = lambda a, b: (a * b).tanh()  # noqa: E731
    for strict_call in (lambda: jacobian(f, (x, y), strict=True, create_graph=True),
                        lambda: hessian(lambda a, b: f(a, b).sum(), (x, y), strict=True),
                        lambda: jvp(f, (x, y), (x, y), strict=True),
                        lambda: hvp(lambda a, b: f(a, b).sum(), (x, y), (x, y), strict=True)):
        strict_call()


def test_v_is_checked_against_the_shapes_it_pairs_with():
    x, y = tg.tensor(np.ones((2, 3))), tg.tensor(np.ones(4))
    f = lambda a, b: (a.sum(1), b * 2)  # noqa: E731
    with pytest.raises(RuntimeError, match=r"vjp: entry 1 in v has invalid shape: should be "
                                           r"\(4,\) \(the shape of output 1\) but got \(3,\)"):
        vjp(f, (x, y), (tg.ones(2), tg.ones(3)))
    with pytest.raises(RuntimeError, match=r"vjp: v is a tuple of invalid length: should be 2 "
                                           r"\(one per output\) but got 1"):
        vjp(f, (x, y), (tg.ones(2),))
    with pytest.raises(RuntimeError, match=r"jvp: v has invalid shape: should be \(2, 3\) \(the "
                                           r"shape of input 0\) but got \(3, 2\)"):
        jvp(lambda a: a * 2, x, tg.ones((3, 2)))
    with pytest.raises(RuntimeError, match=r"hvp: the given v should contain a single Tensor"):
        hvp(lambda a: a.sum(), x, (tg.ones((2, 3)), tg.ones(1)))
    with pytest.raises(RuntimeError, match=r"vhp: entry 0 in v has invalid shape"):
        vhp(lambda a, b: a.sum() + b.sum(), (x, y), (tg.ones(6), tg.ones(4)))


def test_v_none_only_for_a_single_one_element_tensor():
    x = tg.tensor(np.array([0.5, 2.0]))
    with pytest.raises(RuntimeError, match=r"vjp: v can only be None if the output of the "
                                           r"function is a single Tensor with a single element; "
                                           r"got shapes \(2,\)"):
        vjp(lambda a: a * 2, x)
    for fn in (jvp, hvp, vhp):
        with pytest.raises(RuntimeError, match=rf"{fn.__name__}: v can only be None if the input"
                                               rf" is a single Tensor with a single element"):
            fn(lambda a: (a ** 2).sum(), x)
    s = tg.tensor(np.array(0.7))
    _, g = vjp(lambda a: (a ** 3).sum(), x[:1].reshape(()))
    assert g.shape == () and np.isclose(g.item(), 0.75)
    out, jv = jvp(lambda a: a * tg.tensor(np.array([1.0, 2.0])), s)
    np.testing.assert_allclose(jv.data, [1.0, 2.0])
    for fn in (hvp, vhp):
        _, h = fn(lambda a: a ** 3, s)
        assert np.isclose(h.item(), 6 * 0.7)


def test_type_errors_name_the_function_and_the_argument():
    x = tg.tensor(np.ones(2))
    with pytest.raises(TypeError, match=r"jacobian: the inputs must be either a Tensor or a "
                                        r"tuple of Tensors but the given inputs has type list"):
        jacobian(lambda a: a, [x])
    with pytest.raises(TypeError, match=r"vjp: the inputs must be .* the value at index 1 has "
                                        r"type ndarray"):
        vjp(lambda a, b: a, (x, np.ones(2)), x)
    with pytest.raises(TypeError, match=r"jvp: the outputs of the user-provided function must be"
                                        r" .* has type list"):
        jvp(lambda a: [a], x, x)
    with pytest.raises(TypeError, match=r"hessian: input 0 has dtype int64 \(shape \(2,\)\): "
                                        r"only floating point"):
        hessian(lambda a: a.sum(), tg.tensor(np.array([1, 2])))


def test_functions_of_one_element_check_their_output():
    x = tg.tensor(np.ones(2))
    for fn in (hvp, vhp):
        with pytest.raises(RuntimeError, match=rf"{fn.__name__}: the Tensor returned by the "
                                               rf"function should contain a single element, got "
                                               rf"shape \(2,\)"):
            fn(lambda a: a * 2, x, x)
        with pytest.raises(RuntimeError, match=rf"{fn.__name__}: the function should return a "
                                               rf"single Tensor, not a tuple of 2"):
            fn(lambda a: (a.sum(), a.sum()), x, x)
    with pytest.raises(RuntimeError, match=r"hessian: the Tensor returned .* shape \(2,\)"):
        hessian(lambda a: a * 2, x)


def test_strategy_arguments():
    x = tg.tensor(np.ones(2))
    with pytest.raises(ValueError, match=r'jacobian: strategy must be "forward-mode" or '
                                         r'"reverse-mode", got \'forward\''):
        jacobian(lambda a: a, x, strategy="forward")
    with pytest.raises(ValueError, match=r"hessian: outer_jacobian_strategy must be"):
        hessian(lambda a: a.sum(), x, outer_jacobian_strategy="reverse")
    with pytest.raises(RuntimeError, match=r'jacobian: strict=True and strategy="forward-mode"'):
        jacobian(lambda a: a, x, strategy="forward-mode", strict=True)
    with pytest.raises(NotImplementedError, match=r"jacobian: create_graph=True and "
                                                  r'strategy="forward-mode"'):
        jacobian(lambda a: a, x, strategy="forward-mode", create_graph=True)
    with pytest.raises(RuntimeError, match=r"jacobian: strict=True and vectorize=True"):
        jacobian(lambda a: a * 2, x, strict=True, vectorize=True)


def test_identity_and_empty_output():
    x = tg.tensor(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(jacobian(lambda a: a, x).data,
                                  np.eye(2).reshape(1, 2, 1, 2))
    _, jv = jvp(lambda a: a, x, x)
    np.testing.assert_array_equal(jv.data, x.data)
    empty = jacobian(lambda a: a[:, :0] * 2, x)
    assert empty.shape == (1, 0, 1, 2)


# ---- dtypes -------------------------------------------------------------------------------------
def test_float32_inputs_keep_their_dtype():
    rng = np.random.default_rng(1)
    x64, w64 = rng.standard_normal((3, 2)), rng.standard_normal((2, 2))
    f = lambda a, b: (a @ b).tanh()  # noqa: E731
    s = lambda a, b: (f(a, b) ** 2).sum()  # noqa: E731
    results = {}
    for dtype in (np.float32, np.float64):
        xs = (tg.tensor(x64.astype(dtype)), tg.tensor(w64.astype(dtype)))
        vs = (tg.tensor(x64.astype(dtype)), tg.tensor(w64.astype(dtype)))
        results[dtype] = (jacobian(f, xs), jacobian(f, xs, strategy="forward-mode"),
                          hessian(s, xs), vjp(f, xs, tg.tensor(np.ones((3, 2), dtype))),
                          jvp(f, xs, vs), hvp(s, xs, vs), vhp(s, xs, vs))
    low, high = {}, {}
    _flatten(results[np.float32], "r", low)
    _flatten(results[np.float64], "r", high)
    for key in high:
        assert low[key].dtype == np.float32 and high[key].dtype == np.float64, key
        np.testing.assert_allclose(low[key].data, high[key].data, rtol=1e-4, atol=1e-5)


def test_jacobian_block_has_the_input_dtype_as_torch():
    """d(float64 output)/d(float32 input) is float32, the input's dtype (as torch)."""
    x = tg.tensor(np.array([1.0, 2.0], np.float32))
    jac = jacobian(lambda a: a.astype(np.float64) * 3, x)
    assert jac.dtype == np.float32
    np.testing.assert_array_equal(jac.data, 3 * np.eye(2))
    _, jv = jvp(lambda a: a.astype(np.float64) * 3, x, x)
    assert jv.dtype == np.float64  # the output's


# ---- random shapes against finite differences ---------------------------------------------------
def _numeric_jacobian(f, xs, eps=1e-6):
    """Central differences of each output element of f with respect to each element of xs."""
    outs = f(*[tg.tensor(x) for x in xs])
    outs = outs if isinstance(outs, tuple) else (outs,)
    jac = [[np.zeros(o.shape + x.shape) for x in xs] for o in outs]
    for j, x in enumerate(xs):
        for k in np.ndindex(x.shape):
            plus, minus = [a.copy() for a in xs], [a.copy() for a in xs]
            plus[j][k] += eps
            minus[j][k] -= eps
            fp, fm = f(*[tg.tensor(a) for a in plus]), f(*[tg.tensor(a) for a in minus])
            fp, fm = (fp, fm) if isinstance(fp, tuple) else ((fp,), (fm,))
            for i in range(len(outs)):
                jac[i][j][(Ellipsis,) + k] = (fp[i].data - fm[i].data) / (2 * eps)
    return jac


@given(broadcastable_shapes(2, max_dims=2, max_side=3), st.data(),
       st.sampled_from(["reverse-mode", "forward-mode"]))
def test_jacobian_matches_finite_differences(shapes, data, strategy):
    x = data.draw(arrays(shapes[0]))
    y = data.draw(arrays(shapes[1]))

    def f(a, b):
        prod = (a * b).tanh()
        return prod, (a.exp() * 0.5).sum() + (b ** 2).mean() * prod.sum()
    jac = jacobian(f, (tg.tensor(x), tg.tensor(y)), strategy=strategy)
    numeric = _numeric_jacobian(f, [x, y])
    for i in range(2):
        for j in range(2):
            assert jac[i][j].shape == numeric[i][j].shape
            np.testing.assert_allclose(jac[i][j].data, numeric[i][j], rtol=1e-6, atol=1e-7)
