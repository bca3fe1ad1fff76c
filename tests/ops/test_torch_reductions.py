"""PyTorch's forms of the reductions: max/min with dim= return (values, indices), with axis=
values as numpy's; max(a, b) is maximum; argmax/argmin and all/any with dim=/keepdim=; allclose.
(Their forwards against numpy over random inputs: NONDIFF_CASES in op_cases.py.)"""
import numpy as np
import pytest

import tensorgrad as tg

X = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 0.5]])


@pytest.mark.parametrize("name,arg", [("max", np.argmax), ("min", np.argmin)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_dim_returns_values_and_indices(name, arg, dim, keepdim):
    x = tg.tensor(X, requires_grad=True)
    out = getattr(x, name)(dim=dim, keepdim=keepdim)
    values, indices = out
    assert out.values is values and out.indices is indices
    np.testing.assert_array_equal(values.data, getattr(np, name)(X, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices.data, arg(X, axis=dim, keepdims=keepdim))
    assert indices.dtype == np.int64 and not indices.requires_grad
    values.sum().backward()  # the gradient reaches the selected elements
    want = np.zeros_like(X)
    np.put_along_axis(want, arg(X, axis=dim, keepdims=True), 1.0, axis=dim)
    np.testing.assert_array_equal(x.grad.data, want)
    fn_values, fn_indices = getattr(tg, name)(x, dim=dim, keepdim=keepdim)  # tg.max(x, dim=)
    np.testing.assert_array_equal(fn_values.data, values.data)
    np.testing.assert_array_equal(fn_indices.data, indices.data)


def test_axis_returns_values_as_numpy():
    x = tg.tensor(X)
    for name in ("max", "min"):
        for axis in (None, 0, 1, (0, 1)):
            out = getattr(tg, name)(x, axis=axis)
            assert isinstance(out, tg.Tensor)
            np.testing.assert_array_equal(out.data, getattr(np, name)(X, axis=axis))
        assert isinstance(getattr(x, name)(1), tg.Tensor)  # positional: numpy's axis
        assert isinstance(getattr(x, name)(), tg.Tensor)
        with pytest.raises(TypeError, match="dim= takes one int"):
            getattr(x, name)(dim=(0, 1))


def test_max_of_two_tensors_is_maximum():
    a, b = tg.tensor([1.0, 5.0]), tg.tensor([3.0, 2.0])
    np.testing.assert_array_equal(tg.max(a, b).data, [3.0, 5.0])
    np.testing.assert_array_equal(a.min(b).data, [1.0, 2.0])
    with pytest.raises(TypeError, match="second tensor"):
        tg.max(a, b, dim=0)


def test_ties_split_the_gradient_evenly():
    """torch.max(x, dim) sends a tie's gradient to the returned index; tensorgrad splits it
    evenly between the tied elements (torch.amax's rule), the README's table says so."""
    x = tg.tensor(np.array([[2.0, 2.0, 1.0]]), requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.tolist() == [0]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.5, 0.5, 0.0]])


def test_argmax_argmin_forms():
    x = tg.tensor(X)
    assert tg.argmax(x).item() == 3 and x.argmin().item() == 5
    assert x.argmax(dim=1).tolist() == [1, 0] and tg.argmax(x, axis=0).tolist() == [1, 0, 0]
    assert x.argmax(1, keepdim=True).shape == (2, 1)
    assert x.argmax(dim=1, keepdims=True).shape == (2, 1)
    assert tg.argmax(tg.tensor(3.0), dim=0).item() == 0  # 0-d: its one element, as torch
    with pytest.raises(TypeError, match="one axis"):
        x.argmax(axis=(0, 1))
    with pytest.raises(TypeError, match="not both"):
        x.argmax(axis=0, dim=0)
    with pytest.raises(ValueError, match="out of range"):
        x.argmax(dim=2)
    with pytest.raises(ValueError, match="empty"):
        tg.zeros(0).argmax()


def test_accuracy_by_argmax():
    scores = tg.tensor(np.array([[0.1, 2.0], [3.0, 0.2], [0.0, 1.0]]), requires_grad=True)
    labels = np.array([1, 0, 0])
    acc = (scores.argmax(dim=1) == tg.tensor(labels)).float().mean().item()
    assert acc == pytest.approx(2 / 3)


def test_all_any_dims():
    x = tg.tensor(np.array([[1.0, 0.0], [2.0, 3.0]]))
    assert not x.all().item() and x.any().item()
    assert tg.all(x, dim=1).tolist() == [False, True]
    assert x.any(dim=0, keepdim=True).shape == (1, 2)
    assert (x > -1).all().item()


def test_allclose():
    a = tg.tensor([1.0, 2.0])
    assert tg.allclose(a, a + 1e-9) is True
    assert a.allclose(a + 1e-3) is False
    assert tg.allclose(a, np.array([1.0, 2.0])) and tg.allclose(a, tg.tensor(1.0) + a - 1.0)
    nan = tg.tensor([np.nan])
    assert not tg.allclose(nan, nan) and tg.allclose(nan, nan, equal_nan=True)
    assert tg.allclose(a, a * 1.01, rtol=0.02)


def test_inside_a_trace():
    f = tg.fuse(lambda x: tg.where(x == x.max(dim=1, keepdim=True).values, x, 0.0))
    g = tg.fuse(lambda x: x * x.argmax(dim=1).astype(np.float64).unsqueeze(1))
    for data in (X, X[::-1].copy()):  # recomputed on each call, not frozen
        x = tg.tensor(data)
        np.testing.assert_array_equal(f(x).data, np.where(data == data.max(1, keepdims=True),
                                                          data, 0.0))
        np.testing.assert_array_equal(g(x).data, data * data.argmax(1)[:, None])
    h = tg.fuse(lambda x: x * tg.allclose(x, 0.0))
    with pytest.raises(tg.TraceError, match="allclose"):
        h(tg.tensor(X))
