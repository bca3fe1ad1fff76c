"""Optimizers: textbook update rules on a quadratic, PyTorch goldens, dtypes, groups,
checkpoints."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import optim
from tensorgrad.compile.flat import FlatParams

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "optimizers.npz"

# The quadratic f(p) = 0.5 * sum(c * (p - t)**2) with gradient c * (p - t).
CURVATURE = np.array([0.5, 1.0, 2.0, 4.0])
TARGET = np.array([1.0, -2.0, 0.5, 3.0])
START = np.array([0.3, 0.7, -1.2, 2.0])


def quadratic_grad(p):
    return CURVATURE * (p - TARGET)


# ---- reference update rules, written from the papers / PyTorch docs' pseudo-code ---------------


def reference_sgd(p, g, s, t, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                  maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    if momentum:
        s["b"] = g.copy() if t == 1 else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def reference_adagrad(p, g, s, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                      initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    s["G"] = s.get("G", np.full_like(p, initial_accumulator_value)) + g**2
    eta = lr / (1 + (t - 1) * lr_decay)
    return p - eta * g / (np.sqrt(s["G"]) + eps)


def reference_rmsprop(p, g, s, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                      centered=False, maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g**2
    v = s["v"]
    if centered:
        s["m"] = alpha * s.get("m", 0.0) + (1 - alpha) * g
        v = v - s["m"] ** 2
    step = g / (np.sqrt(v) + eps)
    if momentum:
        s["b"] = momentum * s.get("b", 0.0) + step
        step = s["b"]
    return p - lr * step


def reference_adam(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, maximize=False, decoupled=False):
    b1, b2 = betas
    if maximize:
        g = -g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g**2
    v = s["v"]
    if amsgrad:
        s["vmax"] = np.maximum(s.get("vmax", 0.0), v)
        v = s["vmax"]
    m_hat = s["m"] / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def reference_adamw(p, g, s, t, weight_decay=1e-2, **kw):
    return reference_adam(p, g, s, t, weight_decay=weight_decay, decoupled=True, **kw)


REFERENCES = {
    "SGD": reference_sgd,
    "Adagrad": reference_adagrad,
    "RMSprop": reference_rmsprop,
    "Adam": reference_adam,
    "AdamW": reference_adamw,
}

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.3}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "nesterov": True, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.5, "lr_decay": 0.1}),
    ("Adagrad", {"lr": 0.5, "weight_decay": 0.2}),
    ("Adagrad", {"lr": 0.5, "initial_accumulator_value": 0.1, "eps": 1e-3}),
    ("Adagrad", {"lr": 0.5, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"alpha": 0.9, "eps": 1e-3}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("RMSprop", {"maximize": True}),
    ("Adam", {"lr": 0.1}),
    ("Adam", {"lr": 0.1, "betas": (0.5, 0.9), "eps": 1e-3}),
    ("Adam", {"lr": 0.1, "weight_decay": 0.2}),
    ("Adam", {"lr": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.1, "maximize": True}),
    ("AdamW", {"lr": 0.1}),
    ("AdamW", {"lr": 0.1, "weight_decay": 0.5, "amsgrad": True}),
]


def run_ours(name, kwargs, n_steps, start=START, dtype=np.float64):
    p = tg.tensor(start.astype(dtype), requires_grad=True)
    opt = getattr(optim, name)([p], **kwargs)
    history = []
    for _ in range(n_steps):
        opt.zero_grad()
        p.grad = tg.tensor(quadratic_grad(p.data).astype(dtype))
        opt.step()
        history.append(p.data.copy())
    return np.array(history), p, opt


def run_reference(name, kwargs, n_steps, start=START):
    p, state, history = start.copy(), {}, []
    for t in range(1, n_steps + 1):
        p = REFERENCES[name](p, quadratic_grad(p), state, t, **kwargs)
        history.append(p)
    return np.array(history)


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_reference_rule_on_quadratic(name, kwargs):
    ours, _, _ = run_ours(name, kwargs, 6)
    expected = run_reference(name, kwargs, 6)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(ours[-1], START)  # the case actually moved the parameter


@settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(1e-3, 1.0),
    momentum=st.floats(0.0, 0.99),
    dampening=st.floats(0.0, 0.9),
    weight_decay=st.floats(0.0, 0.5),
    nesterov=st.booleans(),
    maximize=st.booleans(),
)
def test_sgd_any_hyperparameters(lr, momentum, dampening, weight_decay, nesterov, maximize):
    if nesterov and (momentum == 0 or dampening != 0):
        dampening = 0.0
        momentum = max(momentum, 0.1)
    kwargs = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                  weight_decay=weight_decay, maximize=maximize)
    np.testing.assert_allclose(run_ours("SGD", kwargs, 4)[0], run_reference("SGD", kwargs, 4),
                               rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(1e-3, 1.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.5, 0.9999),
    eps=st.floats(1e-10, 1e-2),
    weight_decay=st.floats(0.0, 0.5),
    amsgrad=st.booleans(),
    name=st.sampled_from(["Adam", "AdamW"]),
)
def test_adam_any_hyperparameters(lr, beta1, beta2, eps, weight_decay, amsgrad, name):
    kwargs = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    np.testing.assert_allclose(run_ours(name, kwargs, 4)[0], run_reference(name, kwargs, 4),
                               rtol=1e-9, atol=1e-12)


def test_sgd_converges_on_quadratic_through_autograd():
    p = tg.tensor(START.copy(), requires_grad=True)
    c, t = tg.tensor(CURVATURE), tg.tensor(TARGET)
    opt = optim.SGD([p], lr=0.2, momentum=0.5)
    for _ in range(200):
        opt.zero_grad()
        loss = (c * (p - t) ** 2).sum() * 0.5
        loss.backward()
        opt.step()
    np.testing.assert_allclose(p.data, TARGET, atol=1e-8)


def test_weight_decay_equals_twice_course_lambda_for_sgd():
    """SGD(weight_decay=2*lam) on the loss == SGD on loss + lam * ||W||^2 (the course's L2 term)."""
    lam = 0.05
    w_decay = tg.tensor(START.copy(), requires_grad=True)
    w_l2 = tg.tensor(START.copy(), requires_grad=True)
    c, t = tg.tensor(CURVATURE), tg.tensor(TARGET)
    opt_decay = optim.SGD([w_decay], lr=0.1, momentum=0.9, weight_decay=2 * lam)
    opt_l2 = optim.SGD([w_l2], lr=0.1, momentum=0.9)
    for _ in range(5):
        for w, opt, l2 in ((w_decay, opt_decay, 0.0), (w_l2, opt_l2, lam)):
            opt.zero_grad()
            cost = (c * (w - t) ** 2).sum() * 0.5 + (w * w).sum() * l2
            cost.backward()
            opt.step()
    np.testing.assert_allclose(w_decay.data, w_l2.data, rtol=1e-12)


# ---- PyTorch goldens ---------------------------------------------------------------------------


def golden_cases():
    with np.load(GOLDEN) as f:
        return sorted(json.loads(str(f["cases"])).items())


def build_from_golden(case, params):
    kwargs = dict(case["kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    if "groups" in case:
        groups = [dict(case["groups"][0], params=[params[0]]),
                  dict(case["groups"][1], params=[params[1]])]
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
    else:
        groups = params
    return getattr(optim, case["optimizer"])(groups, **kwargs)


def test_golden_file_covers_every_optimizer_and_option():
    cases = dict(golden_cases())
    assert ({c["optimizer"] for c in cases.values()}
            == {"SGD", "Adagrad", "RMSprop", "Adam", "AdamW"})
    options = {key for c in cases.values() for key in c["kwargs"]}
    assert {"momentum", "dampening", "nesterov", "weight_decay", "maximize", "lr_decay",
            "initial_accumulator_value", "centered", "amsgrad", "betas", "alpha"} <= options
    assert any("groups" in c for c in cases.values())


@pytest.mark.parametrize("name, case", golden_cases(), ids=[n for n, _ in golden_cases()])
def test_matches_pytorch_golden(name, case):
    with np.load(GOLDEN) as f:
        data = {key: f[key] for key in f.files}
    dtype = np.dtype(case.get("dtype", "float64"))
    params = [tg.tensor(data["p0_init"].astype(dtype), requires_grad=True),
              tg.tensor(data["p1_init"].astype(dtype), requires_grad=True)]
    opt = build_from_golden(case, params)
    buffers = [p.data for p in params]
    for k in range(5):
        opt.zero_grad()
        params[0].grad = tg.tensor(data["g0"][k].astype(dtype))
        if not data["p1_grad_missing"][k]:
            params[1].grad = tg.tensor(data["g1"][k].astype(dtype))
        opt.step()
        for i, p in enumerate(params):
            expected = data[f"{name}__p{i}"][k + 1]
            assert p.data.dtype == dtype and p.data is buffers[i]
            if dtype == np.float64:
                np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14,
                                           err_msg=f"{name} p{i} step {k + 1}")
            else:
                np.testing.assert_allclose(p.data, expected, rtol=2e-6, atol=1e-6,
                                           err_msg=f"{name} p{i} step {k + 1}")


# ---- dtypes, in-place updates, skipping ----------------------------------------------------------


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_float32_parameters_stay_float32_and_update_in_place(name, kwargs):
    p = tg.tensor(START.astype(np.float32), requires_grad=True)
    buffer = p.data
    opt = getattr(optim, name)([p], **kwargs)
    for _ in range(3):
        p.grad = tg.tensor(quadratic_grad(p.data.astype(np.float64)).astype(np.float32))
        opt.step()
    assert p.data is buffer and p.data.dtype == np.float32
    for value in opt.state.get(p, {}).values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32
    expected = run_reference(name, kwargs, 3)[-1]
    np.testing.assert_allclose(p.data, expected, rtol=1e-4, atol=1e-5)


STEP_CASES = [("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}),
              ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}), ("Adam", {}), ("AdamW", {}),
              ("Adam", {"amsgrad": True}), ("Adagrad", {}), ("RMSprop", {}),
              ("RMSprop", {"momentum": 0.9, "centered": True})]
# what replaces the (2, 3) float32 gradient's array behind the .grad setter's back
_BAD_GRAD_ARRAYS = {"smaller": np.ones(3, np.float32), "broadcastable": np.ones((1, 3), np.float32),
                    "transposed": np.ones((3, 2), np.float32), "float64": np.ones((2, 3)),
                    "float16": np.ones((2, 3), np.float16)}


@pytest.mark.parametrize("name, kwargs", STEP_CASES, ids=[f"{n}-{k}" for n, k in STEP_CASES])
@pytest.mark.parametrize("flat", [False, True], ids=["arrays", "flat"])
@pytest.mark.parametrize("bad", sorted(_BAD_GRAD_ARRAYS))
def test_step_names_the_parameter_whose_gradient_does_not_match_it(name, kwargs, flat, bad):
    first = tg.tensor(np.ones(4, np.float32), requires_grad=True)
    a = tg.tensor(np.ones(2, np.float32), requires_grad=True)
    b = tg.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    if flat:  # SGD without momentum then updates a and b as one array (tensorgrad/compile/flat.py)
        FlatParams([a, b])
    opt = getattr(optim, name)([{"params": [first]}, {"params": [a, b]}], **kwargs)
    for p in (first, a, b):
        p.grad = tg.tensor(np.full(p.shape, 0.5, np.float32))
    opt.step()
    b.grad.data = _BAD_GRAD_ARRAYS[bad]
    before = [p.data.copy() for p in (first, a, b)]
    grad = _BAD_GRAD_ARRAYS[bad]
    pattern = (rf"{name}.*param_groups\[1\]\['params'\]\[1\].*\(2, 3\).*float32.*"
               rf"{re.escape(str(grad.shape))}.*{grad.dtype}")
    with pytest.raises(RuntimeError, match=pattern):
        opt.step()
    for p, old in zip((first, a, b), before):  # no parameter was updated
        np.testing.assert_array_equal(p.data, old)


def test_params_without_grad_are_skipped_and_get_no_state():
    a = tg.tensor(np.ones(3), requires_grad=True)
    b = tg.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = tg.tensor(np.ones(3))
    opt.step()
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in opt.state and opt.state[a]["step"] == 2
    b.grad = tg.tensor(np.ones(2))
    opt.step()
    assert opt.state[b]["step"] == 1  # b's bias correction starts at its own first step


# ---- parameter groups -----------------------------------------------------------------------


def test_groups_have_their_own_lr_and_fill_missing_options_from_defaults():
    a = tg.tensor(np.zeros(2), requires_grad=True)
    b = tg.tensor(np.zeros(2), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.01, "momentum": 0.5}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.0
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["params"] == [b]
    a.grad = tg.tensor(np.ones(2))
    b.grad = tg.tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(a.data, -0.1)
    np.testing.assert_allclose(b.data, -0.01)


def test_add_param_group_and_changing_lr_in_a_group():
    a = tg.tensor(np.zeros(2), requires_grad=True)
    b = tg.tensor(np.zeros(2), requires_grad=True)
    opt = optim.Adagrad([a], lr=0.5)
    opt.add_param_group({"params": [b], "lr": 0.25})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["eps"] == 1e-10
    opt.param_groups[0]["lr"] = 1.0
    a.grad = tg.tensor(np.ones(2))
    b.grad = tg.tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(a.data, -1.0, rtol=1e-9)
    np.testing.assert_allclose(b.data, -0.25, rtol=1e-9)


def test_bad_parameters_and_hyperparameters_raise_clear_errors():
    p = tg.tensor(np.zeros(2), requires_grad=True)
    q = tg.tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"params'\]\[1\] is a ndarray"):
        optim.SGD([p, np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="is a set"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p, q]}, {"params": [q]}], lr=0.1)
    with pytest.raises(TypeError, match="floating-point.*int64"):
        optim.SGD([tg.tensor(np.zeros(2, dtype=np.int64))], lr=0.1)
    with pytest.raises(ValueError, match=r"invalid lr=-0.1 in the defaults"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match=r"invalid momentum=-1 in param_groups\[1\]"):
        optim.SGD([{"params": [p]}, {"params": [q], "momentum": -1}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop([p], alpha=1.5)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        optim.Adagrad([p], initial_accumulator_value=-1.0)


# ---- zero_grad, closure ------------------------------------------------------------------------


def test_zero_grad_sets_none_or_fresh_zeros():
    p = tg.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    shared = np.ones(3)
    p.grad = tg.tensor(shared)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, np.zeros(3))
    np.testing.assert_array_equal(shared, np.ones(3))  # the old gradient array is not clobbered
    opt.zero_grad()
    assert p.grad is None


def test_step_runs_the_closure_first_and_returns_its_loss():
    p = tg.tensor(START.copy(), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    seen = []

    def closure():
        opt.zero_grad()
        loss = ((p - tg.tensor(TARGET)) ** 2).sum()
        loss.backward()
        seen.append(p.data.copy())
        return loss

    loss = opt.step(closure)
    np.testing.assert_array_equal(seen[0], START)
    assert loss.item() == pytest.approx(np.sum((START - TARGET) ** 2))
    np.testing.assert_allclose(p.data, START - 0.1 * 2 * (START - TARGET))


# ---- state_dict ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_state_dict_round_trip_reproduces_the_next_update_exactly(name, kwargs):
    _, p, opt = run_ours(name, kwargs, 3)
    saved = opt.state_dict()
    p_copy = tg.tensor(p.data.copy(), requires_grad=True)
    fresh = (getattr(optim, name)([p_copy], lr=0.123) if name == "SGD"
             else getattr(optim, name)([p_copy]))
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for _ in range(2):
        g = quadratic_grad(p.data)
        p.grad, p_copy.grad = tg.tensor(g), tg.tensor(g.copy())
        opt.step()
        fresh.step()
        np.testing.assert_array_equal(p_copy.data, p.data)


def test_state_dict_holds_copies_and_uses_pytorch_layout():
    a = tg.tensor(np.zeros(2), requires_grad=True)
    b = tg.tensor(np.zeros(3), requires_grad=True)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad, b.grad = tg.tensor(np.ones(2)), tg.tensor(np.ones(3))
    opt.step()
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert saved["param_groups"][1]["lr"] == 0.5 and set(saved["state"]) == {0, 1}
    assert set(saved["state"][1]) == {"step", "exp_avg", "exp_avg_sq"}
    before = saved["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)
    opt.load_state_dict(saved)
    saved["state"][0]["exp_avg"][:] = 99.0
    assert not np.any(opt.state[a]["exp_avg"] == 99.0)


def test_load_state_dict_casts_to_the_parameter_dtype_and_checks_shapes():
    p64 = tg.tensor(np.zeros(2), requires_grad=True)
    opt64 = optim.SGD([p64], lr=0.1, momentum=0.9)
    p64.grad = tg.tensor(np.full(2, 0.1))
    opt64.step()
    p32 = tg.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    opt32 = optim.SGD([p32], lr=0.1, momentum=0.9)
    opt32.load_state_dict(opt64.state_dict())
    assert opt32.state[p32]["momentum_buffer"].dtype == np.float32

    wrong = optim.SGD([tg.tensor(np.zeros(5), requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(5,\)"):
        wrong.load_state_dict(opt64.state_dict())
    two_groups = optim.SGD([{"params": [tg.tensor(np.zeros(2), requires_grad=True)]},
                            {"params": [tg.tensor(np.zeros(2), requires_grad=True)]}], lr=0.1)
    with pytest.raises(ValueError, match="1 parameter groups, the optimizer has 2"):
        two_groups.load_state_dict(opt64.state_dict())
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt64.load_state_dict({"state": {}})


def test_state_dict_keeps_each_buffers_memory_order():
    """nn.Linear keeps its (out, in) weight in (in, out) memory order, and so are its gradient
    and the momentum buffer made from it: saved and loaded, the buffer keeps that order."""
    w = tg.tensor(np.asfortranarray(np.arange(6.0).reshape(2, 3)), requires_grad=True)
    c = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    opt = optim.SGD([w, c], lr=0.1, momentum=0.9)
    w.grad = tg.tensor(np.asfortranarray(np.ones((2, 3))))
    c.grad = tg.tensor(np.ones((2, 3)))
    opt.step()
    assert opt.state[w]["momentum_buffer"].flags.f_contiguous
    saved = opt.state_dict()
    assert saved["state"][0]["momentum_buffer"].flags.f_contiguous
    assert saved["state"][1]["momentum_buffer"].flags.c_contiguous
    fresh = optim.SGD([tg.tensor(np.zeros((2, 3)), requires_grad=True) for _ in range(2)],
                      lr=0.1, momentum=0.9)
    fresh.load_state_dict(saved)
    buffers = [s["momentum_buffer"] for s in fresh.state.values()]
    assert buffers[0].flags.f_contiguous and not buffers[0].flags.c_contiguous
    assert buffers[1].flags.c_contiguous
    assert not np.shares_memory(buffers[0], saved["state"][0]["momentum_buffer"])
    fresh.load_state_dict(opt.state_dict() | {"state": {
        i: {"momentum_buffer": np.asfortranarray(s["momentum_buffer"], np.float32)}
        for i, s in saved["state"].items()}})  # cast to the parameter's dtype: order kept too
    for s in fresh.state.values():
        assert s["momentum_buffer"].dtype == np.float64 and s["momentum_buffer"].flags.f_contiguous
