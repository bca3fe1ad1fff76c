"""The Tensor's construction, dtypes, attributes and error messages."""
import numpy as np
import pytest

import tensorgrad as tg


def test_python_floats_become_float32_and_arrays_keep_their_dtype():
    assert tg.tensor([1.0, 2.0]).dtype == np.float32
    assert tg.tensor(3.5).dtype == np.float32
    assert tg.tensor(np.zeros(2)).dtype == np.float64
    assert tg.tensor(np.zeros(2, dtype=np.float16)).dtype == np.float16
    assert tg.tensor([1, 2]).dtype == np.int64  # as in PyTorch
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_mixed_float_dtypes_follow_numpy_promotion():
    a = tg.tensor(np.ones(2, dtype=np.float32))
    b = tg.tensor(np.ones(2, dtype=np.float64))
    assert (a * b).dtype == np.float64
    assert (a * 2.0).dtype == np.float32
    assert (np.ones(2) * a).dtype == np.float64
    assert isinstance(np.ones(2) * a, tg.Tensor)


def test_integer_and_bool_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point.*int64"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        tg.tensor(np.array([True]), requires_grad=True)


def test_attributes_a_pytorch_user_expects():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert isinstance(x.numpy(), np.ndarray) and x.sum().item() == 15.0
    assert x.astype(np.float32).dtype == np.float32
    assert "requires_grad=True" in repr(x) and "grad_fn=mul" in repr(x * 2)
    assert not x.detach().requires_grad


def test_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.ones((2,)).dtype == np.float32
    assert np.all(tg.zeros_like(tg.ones(3)).data == 0)
    assert np.array_equal(tg.randn(4, seed=1).data, tg.randn(4, seed=1).data)
    g = np.random.default_rng(0)
    assert tg.rand(3, generator=g).shape == (3,)
    assert tg.arange(5).dtype == np.int64 and tg.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert np.array_equal(tg.eye(3).data, np.eye(3))


def test_comparisons_return_bool_tensors_without_grad():
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    m = x > 0
    assert m.dtype == np.bool_ and not m.requires_grad
    assert (x == x).data.all()


def test_matmul_shape_mismatch_names_the_op_and_both_shapes():
    a = tg.tensor(np.ones((3, 4), dtype=np.float32))
    b = tg.tensor(np.ones((5, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"matmul.*\(3, 4\).*\(5, 2\)"):
        a @ b


def test_broadcast_mismatch_names_the_op_and_both_shapes():
    a = tg.tensor(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"add.*\(3, 4\).*\(3,\)"):
        a + np.ones(3)


def test_reduction_axis_names_and_aliases():
    x = tg.tensor(np.arange(12.0).reshape(3, 4))
    assert x.sum(dim=1, keepdim=True).shape == (3, 1)
    assert x.mean(axis=(0, 1)).shape == ()
    assert np.isclose(x.var().item(), np.var(x.data))
    assert np.isclose(x.var(unbiased=True).item(), np.var(x.data, ddof=1))
    assert np.isclose(x.std(correction=1).item(), np.std(x.data, ddof=1))
    assert x.max(axis=0).shape == (4,)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sum(axis=2)


def test_shape_methods():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.transpose(2, 0, 1).shape == (4, 2, 3) and x.T.shape == (4, 3, 2)
    assert x.permute(1, 0, 2).shape == (3, 2, 4) and x.mT.shape == (2, 4, 3)
    assert x.flatten().shape == (24,) and x.reshape(6, -1).shape == (6, 4)
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x[:, :1].squeeze(1).shape == (2, 4)
    assert tg.cat([x, x], axis=0).shape == (4, 3, 4) and tg.stack([x, x]).shape == (2, 2, 3, 4)
    assert x.clamp(min=3.0).data.min() == 3.0
    assert x.transpose(0, 2).shape == (4, 3, 2)  # two axes: swapped, as PyTorch's transpose
    with pytest.raises(ValueError, match="swapaxes"):
        x.permute(0, 2)


_F32 = np.float32
_BAD_GRADS = {  # what is assigned to .grad of a (2, 3) float32 leaf -> (error, message)
    "smaller shape": (lambda x: tg.tensor(np.ones(3, _F32)), RuntimeError,
                      r"different size.*\(3,\).*\(2, 3\)"),
    "transposed shape": (lambda x: tg.tensor(np.ones((3, 2), _F32)), RuntimeError,
                         r"different size.*\(3, 2\).*\(2, 3\)"),
    "other dtype": (lambda x: tg.tensor(np.ones((2, 3))), RuntimeError,
                    "different type.*float64.*float32"),
    "ndarray": (lambda x: np.ones((2, 3), _F32), TypeError, "Tensor or None.*ndarray"),
    "itself": (lambda x: x, RuntimeError, "its own grad"),
}


@pytest.mark.parametrize("case", sorted(_BAD_GRADS))
def test_grad_assignment_checks_shape_and_dtype_as_pytorch_does(case):
    make, error, message = _BAD_GRADS[case]
    x = tg.tensor(np.zeros((2, 3), _F32), requires_grad=True)
    with pytest.raises(error, match=message):
        x.grad = make(x)
    assert x.grad is None  # nothing was assigned


def test_grad_assignment_keeps_a_matching_tensor_or_none():
    x = tg.tensor(np.zeros((2, 3), _F32), requires_grad=True)
    g = tg.tensor(np.ones((2, 3), _F32))
    x.grad = g
    assert x.grad is g
    (x * 2).sum().backward()  # accumulates into it
    np.testing.assert_array_equal(x.grad.data, 3)
    x.grad = None
    assert x.grad is None
