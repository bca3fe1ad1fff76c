"""Tensor conversions with PyTorch's names: size (an int that is callable), long/int/bool,
to(dtype)."""
import copy
import pickle

import numpy as np
import pytest

import tensorgrad as tg


def test_size_is_numpys_int_and_torchs_method():
    x = tg.zeros(2, 3, 4)
    assert x.size == 24 and isinstance(x.size, int)          # numpy's
    assert x.size + 1 == 25 and np.zeros(x.size).shape == (24,)
    assert x.size() == (2, 3, 4) and x.size(0) == 2 and x.size(-1) == 4  # torch's
    assert x.size(dim=1) == 3
    with pytest.raises(IndexError, match="out of range"):
        x.size(3)
    with pytest.raises(IndexError):
        tg.tensor(1.0).size(0)
    with pytest.raises(TypeError, match="int"):
        x.size(1.0)
    assert tg.tensor(1.0).size == 1 and tg.tensor(1.0).size() == ()
    assert type(copy.deepcopy(x.size)) is int and pickle.loads(pickle.dumps(x.size)) == 24
    assert f"{x.size}" == "24"


def test_size_inside_a_trace():
    f = tg.fuse(lambda x: x * x.size(0) / x.size)
    x = tg.ones(2, 3, dtype=np.float64)
    np.testing.assert_array_equal(f(x).data, np.full((2, 3), 2 / 6))


@pytest.mark.parametrize("method,dtype", [("long", np.int64), ("int", np.int32),
                                          ("bool", np.bool_), ("float", np.float32),
                                          ("double", np.float64)])
def test_dtype_methods(method, dtype):
    x = tg.tensor([1.7, -2.2, 0.0])
    y = getattr(x, method)()
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, x.data.astype(dtype))


def test_to():
    x = tg.tensor([1.5, 2.5], requires_grad=True)
    assert x.to(np.float32) is x and x.to("cpu") is x and x.to(x) is x
    y = x.to(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 1.0]
    assert x.to("float64").dtype == np.float64
    assert x.to(tg.zeros(1, dtype=np.float64)).dtype == np.float64
    assert x.to("cpu", np.int64).dtype == np.int64
    assert x.to(dtype=np.float64).dtype == np.float64
    c = x.to(np.float32, copy=True)
    assert c is not x and not np.shares_memory(c.data, x.data)
    with pytest.raises(ValueError, match="CPU"):
        x.to("cuda")
