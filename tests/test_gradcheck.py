"""gradcheck/gradgradcheck never pass on NaN or inf, and say where a second-order failure comes
from (a custom backward computed outside the graph)."""
import numpy as np
import pytest

import tensorgrad as tg

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's nan/inf warnings

CHECKS = {"gradcheck": tg.gradcheck, "gradgradcheck": tg.gradgradcheck}
EPS = 1e-6


def leaf(values):
    return tg.tensor(np.array(values, dtype=np.float64), requires_grad=True)


class NanBackward(tg.Function):
    """2x whose backward returns NaN."""

    @staticmethod
    def forward(ctx, x):
        return x.data * 2

    @staticmethod
    def backward(ctx, g):
        return g * np.nan


class NanSecondDerivative(tg.Function):
    """x^3 whose gradient 3 x^2 is correct but is built from a Function with a NaN backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * NanBackward.apply(x) * x / 2


class NumpyBackward(tg.Function):
    """x^3 whose backward computes on arrays (right value, but no graph under create_graph)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g.data * 3 * np.square(x.data)


def pole_after(x0, eps=EPS):
    """1 / (t - c) with its pole exactly at x0 + eps: finite at x0, infinite one step right."""
    c = x0 + eps
    return lambda t: 1 / (t - c)


def check_raises(name, fn, inputs, match, **kw):
    with pytest.raises(tg.GradcheckError, match=match):
        CHECKS[name](fn, inputs, **kw)
    assert CHECKS[name](fn, inputs, raise_exception=False, **kw) is False


def order(name):
    return "second order" if name == "gradgradcheck" else "^gradcheck"


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("bad", ["nan", "inf"])
@pytest.mark.parametrize("max_full", [10000, 2])
def test_a_nonfinite_input_is_refused(name, bad, max_full):
    x = leaf([0.5, float(bad), 1.0])
    check_raises(name, tg.exp, [leaf([1.0]), x], rf"^{name}: input 1 .*{bad} at index \(1,\)",
                 max_full=max_full)


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("max_full", [10000, 2])
def test_a_nan_output_is_refused(name, max_full):
    # log(-1) is nan while its gradient 1/x is finite
    check_raises(name, tg.log, [leaf([2.0, -1.0, 3.0])], r"output.* nan at index \(1,\)",
                 max_full=max_full)


@pytest.mark.parametrize("max_full", [10000, 2])
def test_gradcheck_refuses_a_nan_analytic_gradient(max_full):
    check_raises("gradcheck", NanBackward.apply, [leaf([1.0, 2.0, 3.0])],
                 r"^gradcheck: the analytic derivative .* nan", max_full=max_full)


@pytest.mark.parametrize("max_full", [10000, 2])
def test_gradgradcheck_refuses_a_nan_first_derivative(max_full):
    # the first derivative is the second-order check's output
    check_raises("gradgradcheck", NanBackward.apply, [leaf([1.0, 2.0, 3.0])],
                 r"second order.*first derivative.* nan", max_full=max_full)


@pytest.mark.parametrize("max_full", [10000, 2])
def test_gradgradcheck_refuses_a_nan_analytic_second_derivative(max_full):
    x = leaf([1.0, 2.0, 3.0])
    assert tg.gradcheck(NanSecondDerivative.apply, [x])
    check_raises("gradgradcheck", NanSecondDerivative.apply, [x],
                 r"second order.*analytic.* nan", max_full=max_full)


@pytest.mark.parametrize("name", CHECKS)
def test_an_infinite_numeric_derivative_at_a_pole_is_refused(name):
    x0 = 1.0
    x = leaf([x0, x0, x0])
    check_raises(name, pole_after(x0), [x], rf"{order(name)}.*numeric derivative.* -?inf", eps=EPS)


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("max_full", [10000, 2])
def test_an_overflowing_numeric_derivative_is_refused(name, max_full):
    # exp(K (t - 1)) is 1 at t = 1 with derivative K, and overflows to inf at 1 + eps
    def fn(t):
        return tg.exp((t - 1.0) * 1e12).sum()
    # along a random direction the second-order difference may mix +inf and -inf into nan
    bad = "inf" if name == "gradcheck" or max_full > 2 else "(inf|nan)"
    check_raises(name, fn, [leaf([1.0, 1.0, 1.0])], rf"{order(name)}.*numeric derivative.* -?{bad}",
                 eps=EPS, max_full=max_full)


@pytest.mark.parametrize("name", CHECKS)
def test_a_nan_numeric_derivative_is_refused(name):
    # sqrt is finite at eps/2 but undefined one step left of it
    x = leaf([EPS / 2, 1.0])
    check_raises(name, tg.sqrt, [x], rf"{order(name)}.*numeric derivative.* nan", eps=EPS)


def test_gradgradcheck_says_a_custom_backward_left_the_graph():
    x = leaf([0.5, 1.5])
    assert tg.gradcheck(NumpyBackward.apply, [x])
    check_raises("gradgradcheck", NumpyBackward.apply, [x],
                 r"does not depend on input 0 through the graph.*numpy")


def test_gradgradcheck_says_a_detached_backward_left_the_graph():
    class Detached(NumpyBackward):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() * x.detach()
    x = leaf([0.5, 1.5])
    check_raises("gradgradcheck", Detached.apply, [x],
                 r"does not depend on input 0 through the graph")
