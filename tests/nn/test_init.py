"""nn.init: in-place, seeded, with the documented variances and fan_in = weight.shape[1]."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import init


def _w(shape=(300, 500), dtype=np.float64):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("fn, var", [
    (init.kaiming_normal_, 2 / 500),
    (init.xavier_normal_, 2 / (500 + 300)),
    (init.lecun_normal_, 1 / 500),
    (lambda t, **kw: init.normal_(t, std=0.1, **kw), 0.01),
    (lambda t, **kw: init.kaiming_normal_(t, nonlinearity="relu", mode="fan_out", **kw),
     2 / 300),
])
def test_variances_and_seeds(fn, var):
    w = _w()
    data = w.data
    assert fn(w, seed=0) is w and w.data is data  # in place
    assert abs(w.data.var() / var - 1) < 0.02 and abs(w.data.mean()) < 3 * np.sqrt(var / w.size)
    again = _w()
    fn(again, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(w.data, again.data)  # a seed and a Generator agree
    other = _w()
    fn(other, seed=1)
    assert not np.array_equal(w.data, other.data)


def test_a_shared_generator_advances():
    rng = np.random.default_rng(0)
    a, b = _w((3, 4)), _w((3, 4))
    init.kaiming_normal_(a, generator=rng)
    init.kaiming_normal_(b, generator=rng)
    assert not np.array_equal(a.data, b.data)


def test_float32_and_float64_get_the_same_values():
    a, b = _w((20, 30), np.float32), _w((20, 30), np.float64)
    init.lecun_normal_(a, seed=4)
    init.lecun_normal_(b, seed=4)
    np.testing.assert_array_equal(a.data, b.data.astype(np.float32))
    assert a.dtype == np.float32


def test_normal_mean_constants_and_gain():
    w = _w()
    init.normal_(w, mean=3.0, std=0.0, seed=0)
    assert (w.data == 3.0).all()
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    init.constant_(w, 0.5)
    assert (w.data == 0.5).all()
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.0) == pytest.approx(np.sqrt(2))
    assert init.calculate_gain("sigmoid") == 1.0


def test_errors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_normal_(nn.Parameter(np.zeros(3)))
    with pytest.raises(TypeError, match="Tensor"):
        init.normal_(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="not both"):
        init.normal_(_w(), generator=1, seed=2)
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(_w(), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="floating"):
        init.zeros_(tg.tensor(np.zeros(2, dtype=np.int64)))
