"""Custom Functions, the gradient checker (strictness, kinks, modes) and the testing kit."""
import re

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.testing import assert_op_gradients, tensors


class Cube(tg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x  # Tensor ops: differentiable again under create_graph


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x


def test_custom_function_gradchecks_and_gradgradchecks():
    assert_op_gradients(Cube.apply, tensors())


def test_custom_function_in_a_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (Cube.apply(x * 2) + x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 24 * np.array([1.0, 4.0]) + 1)


def test_gradcheck_reports_a_wrong_gradient_precisely():
    x = tg.tensor(np.array([0.5, 2.0]), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 0.*index \(0,\).*analytic.*numeric"):
        tg.gradcheck(WrongCube.apply, [x])
    assert tg.gradcheck(WrongCube.apply, [x], raise_exception=False) is False


def test_the_testing_kit_catches_a_wrong_op():
    with pytest.raises(tg.GradcheckError):
        assert_op_gradients(WrongCube.apply, tensors(low=0.5, high=2.0), max_examples=5)


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        tg.gradcheck(tg.exp, [tg.tensor([1.0], requires_grad=True)])


def test_gradcheck_says_kink_instead_of_failing():
    x = tg.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with pytest.raises(tg.NondifferentiableError, match="kink"):
        tg.gradcheck(tg.relu, [x])


def test_random_direction_mode_for_large_inputs():
    x = tg.tensor(np.random.default_rng(0).standard_normal(50), requires_grad=True)
    assert tg.gradcheck(lambda t: (t.tanh() * t).sum(), [x], max_full=10)
    with pytest.raises(tg.GradcheckError, match="random direction"):
        tg.gradcheck(lambda t: WrongCube.apply(t).sum(), [x], max_full=10)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    class Detached(Cube):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() * x.detach()
    x = tg.tensor(np.array([0.5, 1.5]), requires_grad=True)
    tg.gradcheck(Detached.apply, [x])
    with pytest.raises(tg.GradcheckError):
        tg.gradgradcheck(Detached.apply, [x])


def test_gradient_errors_table():
    w = tg.tensor(np.array([[0.3, -0.2], [0.1, 0.4]]), requires_grad=True)
    b = tg.tensor(np.array([0.1, -0.1]), requires_grad=True)
    x = np.array([[1.0, 2.0], [0.5, -1.0]])
    rows = tg.gradient_errors(lambda w, b: tg.linear(x, w, b).tanh().sum(), [w, b],
                              names=["W", "b"])
    assert [r["name"] for r in rows] == ["W", "b"]
    assert all(r["max_rel_error"] < 1e-6 for r in rows)


def test_gradient_errors_extended_precision_resolves_tiny_gradients():
    # d/dw of 1e3 + 1e-6 * w^2 at w = 3 is 6e-6: float64 round-off of the big constant swamps a
    # 2-point difference, extended precision with a 4-point stencil does not
    w = tg.tensor(np.array([3.0]), requires_grad=True)

    def fn(w):
        return (w * w * 1e-6 + 1e3).sum()
    coarse = tg.gradient_errors(fn, [w], eps=1e-5)[0]
    fine = tg.gradient_errors(fn, [w], eps=1e-4, stencil=4, numeric_dtype=np.longdouble)[0]
    assert fine["max_rel_error"] < 1e-6 < coarse["max_rel_error"]
    assert w.data.dtype == np.float64  # the inputs are restored
    with pytest.raises(ValueError, match="stencil"):
        tg.gradient_errors(fn, [w], stencil=3)


def _function_whose_backward_returns(shape, dtype=np.float64):
    """A custom Function (y = 2 x) whose backward returns a gradient of `shape` and `dtype`."""
    class Returns(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x.data * 2

        @staticmethod
        def backward(ctx, g):
            value = g.sum() * tg.tensor(np.full(shape, 2.0))  # a Tensor under create_graph too
            return value if dtype == np.float64 else value.astype(dtype)
    Returns.__name__ = f"Returns{dtype.__name__.title()}{'x'.join(map(str, shape))}"
    return Returns


@pytest.mark.parametrize("shape", [(), (3,), (1, 3), (2, 1), (3, 2), (6,), (2, 3, 1), (2, 3, 3)],
                         ids=str)
@pytest.mark.parametrize("create_graph", [False, True])
def test_a_custom_backward_of_the_wrong_shape_raises_naming_function_index_and_shapes(
        shape, create_graph):
    fn = _function_whose_backward_returns(shape)
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    pattern = (rf"{fn.__name__}.*invalid gradient at index 0.*"
               rf"got {re.escape(str(shape))}.*compatible with \(2, 3\)")
    with pytest.raises(RuntimeError, match=pattern):
        tg.grad(fn.apply(x).sum(), x, create_graph=create_graph)
    if not create_graph:
        with pytest.raises(RuntimeError, match=pattern):
            fn.apply(x).sum().backward()
        assert x.grad is None


@pytest.mark.parametrize("in_shape, shape", [((3,), (2, 3)), ((1, 3), (2, 3)), ((2, 1), (2, 3)),
                                             ((), (2, 3)), ((2, 3), (2, 3)), ((2, 3), (4, 2, 3))],
                         ids=str)
@pytest.mark.parametrize("create_graph", [False, True])
def test_a_custom_gradient_larger_than_its_input_is_summed_down_as_pytorch_does(
        in_shape, shape, create_graph):
    x = tg.tensor(np.ones(in_shape), requires_grad=True)
    (got,) = tg.grad(_function_whose_backward_returns(shape).apply(x).sum(), x,
                     create_graph=create_graph)
    # backward returned 2 * x.size everywhere in `shape`: each input element sums its copies
    assert got.shape == in_shape
    np.testing.assert_allclose(got.data, 2.0 * np.prod(shape))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
@pytest.mark.parametrize("create_graph", [False, True])
def test_a_custom_backward_returning_a_non_float_gradient_raises(dtype, create_graph):
    fn = _function_whose_backward_returns((2, 3), dtype)
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=rf"{fn.__name__}.*index 0.*{np.dtype(dtype)}.*float64"):
        tg.grad(fn.apply(x).sum(), x, create_graph=create_graph)


def test_a_custom_backward_may_return_a_float32_gradient_for_a_float64_input():
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    (got,) = tg.grad(_function_whose_backward_returns((2, 3), np.float32).apply(x).sum(), x)
    assert got.dtype == np.float64  # cast to the input's dtype, as PyTorch does
    np.testing.assert_allclose(got.data, 12.0)


class _ReturnsSaved(tg.Function):
    """d(x * y)/dx = y, returned as the saved tensor itself."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(y)
        return x * y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return y, None


@pytest.mark.parametrize("loss", [
    lambda x, y: _ReturnsSaved.apply(x, y).sum(),
    lambda x, y: _ReturnsSaved.apply(x, y).sum() + _ReturnsSaved.apply(x, y).sum(),
    lambda x, y: _ReturnsSaved.apply(x, y).sum() + tg.sum_squares(x),  # a lazy L2 term
], ids=["once", "twice", "with_l2"])
def test_a_custom_backward_returning_a_saved_tensor_leaves_it_unchanged(loss):
    x = tg.tensor(np.ones(3), requires_grad=True)
    y = tg.tensor(np.arange(3.0))
    loss(x, y).backward()
    np.testing.assert_array_equal(y.data, [0.0, 1.0, 2.0])
    assert not np.shares_memory(x.grad.data, y.data)
    x.grad.data += 1.0  # what an optimizer's user may do
    np.testing.assert_array_equal(y.data, [0.0, 1.0, 2.0])
