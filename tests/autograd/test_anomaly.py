"""detect_anomaly(): the backward raises at the first vjp that returns nan or inf from finite
values, naming the op, the input and the user's line that created the op; fused programs run
op by op inside; check_forward; the mode's state and its cost when off."""
import importlib
import sys
import warnings

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.autograd import AnomalyError, set_detect_anomaly

_t = importlib.import_module("tensorgrad.autograd.tensor")
_anomaly = importlib.import_module("tensorgrad.autograd.anomaly")
_walk = importlib.import_module("tensorgrad.autograd.walk")

pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture
def quiet():
    """numpy's divide-by-zero warnings are the point of these tests."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _next_line():
    """'this file:the caller's next line': where the op on that line is created."""
    return f"{__file__}:{sys._getframe(1).f_lineno + 1}"


def _zeros(n=3):
    return tg.tensor(np.zeros(n), requires_grad=True)


def test_sqrt_at_zero_names_the_op_its_input_and_the_line(each_mode):
    x = _zeros()
    with tg.detect_anomaly():
        line = _next_line()
        y = tg.sqrt(x)
        with pytest.raises(AnomalyError) as err:
            y.sum().backward()
    e = err.value
    assert isinstance(e, RuntimeError)
    assert (e.op, e.input, e.kind) == ("sqrt", 0, "inf")
    assert e.site == f"{line}: y = tg.sqrt(x)"
    assert str(e).startswith("Function 'sqrt' returned inf values in its output 0: the gradient "
                             "for input 0 (shape (3,), float64)")
    assert f"The op was created at {line}: y = tg.sqrt(x)" in str(e)
    assert x.grad is None  # the error stopped the walk before any leaf got a gradient


def test_log_of_zero_is_named_with_the_expression_that_used_it(each_mode):
    x, w = _zeros(2), tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly():
        h = x * w  # finite values and finite gradients
        line = _next_line()
        loss = (tg.log(h) * 0.5).sum()
        with pytest.raises(AnomalyError) as err:
            loss.backward()
    assert (err.value.op, err.value.input, err.value.kind) == ("log", 0, "inf")
    assert err.value.site == f"{line}: loss = (tg.log(h) * 0.5).sum()"


class ZeroOverZero(tg.Function):
    """Identity forward; a backward that divides 0 by 0 (a bug a user could write)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data.copy()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x - x) / (x - x)


def test_a_zero_over_zero_in_a_custom_function_s_backward(each_mode):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly():
        line = _next_line()
        y = ZeroOverZero.apply(x * 3)
        with pytest.raises(AnomalyError, match="Function 'ZeroOverZero' returned nan") as err:
            (y * y).sum().backward()
    assert (err.value.input, err.value.kind) == (0, "nan")
    assert err.value.site == f"{line}: y = ZeroOverZero.apply(x * 3)"


def test_an_in_place_op_is_named_at_its_own_line(each_mode):
    x = _zeros(2)
    with tg.detect_anomaly():
        y = x * 2
        line = _next_line()
        y /= x
        with pytest.raises(AnomalyError) as err:
            y.sum().backward()
    assert (err.value.op, err.value.input, err.value.kind) == ("div", 0, "inf")
    assert err.value.site == f"{line}: y /= x"


def test_no_error_where_the_forward_already_held_a_nan(each_mode):
    x = tg.tensor([np.nan, 1.0])
    w = tg.tensor([1.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        (x * w).sum().backward()  # mul's gradient for w is nan: its input x was not finite
        y = tg.log(x * w)
        (y * 2).sum().backward()
    assert np.isnan(w.grad.data[0]) and np.isfinite(w.grad.data[1])


def test_a_nan_incoming_gradient_is_passed_on_without_an_error(each_mode):
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly():
        (w * 2).backward(gradient=np.array([np.nan, 1.0]))
    np.testing.assert_array_equal(w.grad.data, [np.nan, 2.0])


def test_check_nan_false_records_but_does_not_check(each_mode):
    x = _zeros()
    with tg.detect_anomaly(check_nan=False):
        assert tg.is_anomaly_enabled() and not tg.autograd.is_anomaly_check_nan_enabled()
        tg.sqrt(x).sum().backward()
    assert np.isinf(x.grad.data).all()


def test_a_node_created_outside_the_context_says_its_site_was_not_recorded(each_mode):
    x = _zeros()
    y = tg.sqrt(x)
    with tg.detect_anomaly(), pytest.raises(AnomalyError) as err:
        y.sum().backward()
    assert err.value.op == "sqrt" and err.value.site is None
    assert "creation site was not recorded" in str(err.value)


def test_outside_the_context_nothing_is_checked_or_recorded(each_mode):
    x = _zeros()
    y = tg.sqrt(x)
    y.sum().backward()
    assert np.isinf(x.grad.data).all() and "_site" not in y.__dict__


# ---- tg.grad, create_graph ---------------------------------------------------------------------
def test_tg_grad_and_create_graph_raise_too(each_mode):
    x = _zeros()
    with tg.detect_anomaly():
        line = _next_line()
        y = tg.sqrt(x).sum()
        for create_graph in (False, True):
            with pytest.raises(AnomalyError) as err:
                tg.grad(y, x, create_graph=create_graph, retain_graph=True)
            assert err.value.op == "sqrt" and err.value.site == f"{line}: y = tg.sqrt(x).sum()"


def test_a_second_order_anomaly_names_the_backward_that_created_the_op(each_mode):
    x = _zeros(2)
    with tg.detect_anomaly():
        line = _next_line()
        y = (x ** 1.5).sum()
        in_backward = _next_line()  # 1.5 x ** 0.5: finite at 0
        (g,) = tg.grad(y, x, create_graph=True)
        with pytest.raises(AnomalyError) as err:
            tg.grad(g.sum(), x)  # 0.75 x ** -0.5: inf at 0
    assert (err.value.op, err.value.input, err.value.kind) == ("pow", 0, "inf")
    assert err.value.site == (f"{in_backward}: (g,) = tg.grad(y, x, create_graph=True), in the "
                              f"backward of op 'pow' (created at {line}: y = (x ** 1.5).sum())")


# ---- fused programs run op by op ---------------------------------------------------------------
class Sqrt(nn.Layer):
    """An activation (a fusable layer: a fused chain takes it)."""

    function = staticmethod(tg.sqrt)


def _mlp():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Sqrt(), nn.Linear(6, 2))
    model.to(np.float64)
    return model


def test_a_fused_mlp_names_the_primitive_op_inside_its_chain():
    model, x = _mlp(), tg.tensor(np.random.default_rng(0).standard_normal((5, 4)))
    tg.fast_paths(reset=True)
    model(x).sum().backward()  # fused: one node, the gradients silently not finite
    assert tg.fast_paths()["fused_chain"].hits == 1
    assert not np.isfinite(model[0].weight.grad.data).all()
    with tg.detect_anomaly():
        line = _next_line()
        out = model(x)
        with pytest.raises(AnomalyError) as err:
            out.sum().backward()
    assert tg.fast_paths()["fused_chain"].hits == 1  # not taken inside the context
    assert (err.value.op, err.value.input) == ("sqrt", 0)
    assert err.value.site == f"{line}: out = model(x)"
    model(x)
    assert tg.fast_paths()["fused_chain"].hits == 2  # taken again after it


def test_a_fused_function_names_the_op_and_its_line_inside_the_function(each_mode):
    @tg.fuse
    def f(x, w):
        h = x * w
        return tg.log(h).sum()

    x, w = tg.tensor([0.0, 1.0], requires_grad=True), tg.tensor([2.0, 3.0])
    f(x, w).backward()  # compiled
    line = f"{__file__}:{f.__wrapped__.__code__.co_firstlineno + 3}: return tg.log(h).sum()"
    with tg.detect_anomaly(), pytest.raises(AnomalyError) as err:
        f(x, w).backward()
    assert (err.value.op, err.value.site) == ("log", line)


def test_a_fused_node_recorded_before_the_context_runs_its_ops_again_to_check_them(each_mode):
    @tg.fuse
    def f(x):
        return tg.sqrt(x).sum()

    x = _zeros()
    with tg.fast_mode(True):
        y = f(x)
    assert y._op.name == "fused[f]"
    with tg.detect_anomaly(), pytest.raises(AnomalyError) as err:
        y.backward()
    line = f"{__file__}:{f.__wrapped__.__code__.co_firstlineno + 2}: return tg.sqrt(x).sum()"
    assert err.value.op == "sqrt"
    assert err.value.site == (f"{line}, in the backward of op 'fused[f]' (created at an "
                              f"unrecorded site)")


# ---- check_forward -----------------------------------------------------------------------------
def test_check_forward_raises_at_the_op_that_made_an_inf_from_finite_inputs(each_mode):
    x = tg.tensor([1.0, 1000.0], requires_grad=True)
    with tg.detect_anomaly():
        z = tg.exp(x)  # not checked by default
    assert np.isinf(z.data[1])
    with tg.detect_anomaly(check_forward=True):
        h = x * 2
        with pytest.raises(AnomalyError) as err:
            line = _next_line()
            h.exp()
    assert (err.value.op, err.value.input, err.value.kind) == ("exp", None, "inf")
    assert err.value.site == f"{line}: h.exp()"
    assert str(err.value) == (f"op 'exp' returned inf values in its output (shape (2,), "
                              f"float32) from finite inputs\n  at {line}: h.exp()")


def test_check_forward_passes_values_that_were_not_finite_already(each_mode):
    scores = tg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    mask = tg.tensor([[0.0, -np.inf, 0.0]])
    with tg.detect_anomaly(check_forward=True):
        p = tg.softmax(scores + mask, axis=1)  # a -inf mask: valid code
        (p * p).sum().backward()
        with pytest.raises(AnomalyError, match="'log'"):
            tg.log(tg.tensor([0.0]))  # without grad: checked too
    assert np.isfinite(scores.grad.data).all()


def test_check_forward_checks_custom_functions_and_not_the_ops_of_a_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly(check_forward=True):
        y = ZeroOverZero.apply(x)  # its backward's ops are the backward's, not the forward's
        with pytest.raises(AnomalyError, match="Function 'ZeroOverZero'"):
            y.sum().backward()


# ---- the mode ----------------------------------------------------------------------------------
def test_nesting_restores_each_state_also_after_an_exception():
    assert not tg.is_anomaly_enabled() and tg.autograd.is_anomaly_check_nan_enabled()
    with tg.autograd.detect_anomaly():
        with pytest.raises(ValueError), tg.detect_anomaly(check_nan=False, check_forward=True):
            assert tg.is_anomaly_enabled() and not tg.autograd.is_anomaly_check_nan_enabled()
            raise ValueError("inside")
        assert tg.is_anomaly_enabled() and tg.autograd.is_anomaly_check_nan_enabled()
        assert not _anomaly._check_forward
        assert not tg.is_fast("fused_program")
    assert not tg.is_anomaly_enabled() and tg.is_fast()


def test_set_detect_anomaly_as_a_call_and_as_a_context_manager():
    set_detect_anomaly(True)
    try:
        assert tg.is_anomaly_enabled()
        with set_detect_anomaly(False):
            assert not tg.is_anomaly_enabled() and tg.is_fast("fused_program")
        assert tg.is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    assert not tg.is_anomaly_enabled()


def test_detect_anomaly_as_a_decorator():
    @tg.detect_anomaly(check_forward=True)
    def f(x):
        assert tg.is_anomaly_enabled()
        return tg.log(x)

    with pytest.raises(AnomalyError):
        f(tg.tensor([0.0]))
    assert not tg.is_anomaly_enabled()


def test_the_user_s_fast_mode_changes_inside_keep_the_fused_paths_off():
    with tg.detect_anomaly():
        with tg.fast_mode(True):
            assert not tg.is_fast("fused_program")
        tg.set_fast(True)
        assert not tg.is_fast("fused_program")
    assert tg.is_fast()
    with tg.fast_mode(False):
        with tg.detect_anomaly():
            pass
        assert not tg.is_fast("fused_program")  # the user's reference mode stays


def test_off_the_forward_records_with_the_plain_functions_and_the_walk_is_unwrapped(
        monkeypatch):
    plain_apply, plain_attach = _t.apply, _t.attach
    operators = tg.Tensor.__add__.__globals__  # the ops package: operators call its _apply
    assert operators["_apply"] is plain_apply
    with tg.detect_anomaly():
        assert _t.apply is not plain_apply and operators["_apply"] is _t.apply
        assert _t.attach is not plain_attach
    assert _t.apply is plain_apply and _t.attach is plain_attach
    assert operators["_apply"] is plain_apply

    calls = []
    real = _anomaly.checking
    monkeypatch.setattr(_anomaly, "checking", lambda hooks: calls.append(1) or real(hooks))
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    ((x * x).exp() + x).sum().backward()
    assert calls == []  # off: the walk's hooks as chosen
    with tg.detect_anomaly():
        ((x * x).exp() + x).sum().backward()
    assert calls == [1]  # on: checked gradients, asked for once per backward
