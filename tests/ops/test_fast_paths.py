"""Faster ways to compute the same thing must give the same bits as the plain numpy call."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tensorgrad.autograd.xp import number


@given(value=st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 9))
def test_a_number_as_a_0d_array_computes_as_the_python_number(value, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(7).astype(dtype)
    c = number(value, dtype)
    for op in (np.add, np.subtract, np.multiply, np.true_divide, np.maximum, np.minimum):
        for a, b, a2, b2 in ((x, value, x, c), (value, x, c, x)):
            with np.errstate(all="ignore"):
                want, got = op(a, b), op(a2, b2)
            assert got.dtype == want.dtype == dtype
            np.testing.assert_array_equal(got, want)


def test_cached_constants_keep_the_sign_of_zero_and_cache_nan():
    from tensorgrad.autograd.xp import _ONES, filled
    minus, plus = number(-0.0, np.float32), number(0.0, np.float32)
    assert np.signbit(minus) and not np.signbit(plus)
    assert not np.signbit(number(0, np.float32)) and np.signbit(filled(3, np.float64, -0.0)).all()
    n = len(_ONES)
    for _ in range(3):
        assert np.isnan(number(float("nan"), np.float64))
    assert len(_ONES) <= n + 1
