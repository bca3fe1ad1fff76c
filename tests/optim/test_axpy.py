"""optim.optimizer.axpy: y += a * x in place, for every layout and dtype pair."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tensorgrad.optim.optimizer import axpy
from tensorgrad.testing import shapes


@given(shape=shapes(), dtype=st.sampled_from([np.float32, np.float64]),
       a=st.floats(-2, 2), layout=st.sampled_from(["c", "transposed", "broadcast"]))
def test_axpy_matches_numpy_in_place(shape, dtype, a, layout):
    rng = np.random.default_rng(0)
    y = rng.standard_normal(shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if layout == "transposed" and y.ndim >= 2:
        y = np.ascontiguousarray(y.T).T  # same shape, not C-contiguous: numpy fallback
    if layout == "broadcast":
        x = np.broadcast_to(x.reshape(-1)[:1].reshape((1,) * len(shape)), shape)
    expected = y + dtype(a) * x
    before = y
    axpy(a, x, y)
    assert y is before  # updated in place
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


def test_axpy_mixed_dtypes_fall_back_to_numpy():
    y = np.ones(4, np.float32)
    axpy(0.5, np.arange(4, dtype=np.float64), y)
    np.testing.assert_array_equal(y, np.array([1, 1.5, 2, 2.5], np.float32))
