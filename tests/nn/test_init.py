"""nn.init: in-place, seeded, with the documented variances, PyTorch's uniform bounds and
fan_in = weight.shape[1]."""
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
    (init.kaiming_uniform_, 2 / 500),
    (init.xavier_uniform_, 2 / (500 + 300)),
    (lambda t, **kw: init.uniform_(t, -1.0, 1.0, **kw), 1 / 3),
    (lambda t, **kw: init.kaiming_uniform_(t, a=5 ** 0.5, **kw), 1 / (3 * 500)),
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


@pytest.mark.parametrize("fn", [init.lecun_normal_, init.xavier_uniform_, init.kaiming_uniform_,
                                init.uniform_])
def test_float32_and_float64_get_the_same_values(fn):
    a, b = _w((20, 30), np.float32), _w((20, 30), np.float64)
    fn(a, seed=4)
    fn(b, seed=4)
    np.testing.assert_array_equal(a.data, b.data.astype(np.float32))
    assert a.dtype == np.float32


@pytest.mark.parametrize("shape, fn, bound", [
    # PyTorch's formulas: fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field
    ((300, 500), init.xavier_uniform_, np.sqrt(6 / 800)),
    ((300, 500), lambda t, **kw: init.xavier_uniform_(t, gain=2.0, **kw), 2 * np.sqrt(6 / 800)),
    ((8, 4, 3, 3), init.xavier_uniform_, np.sqrt(6 / (36 + 72))),
    ((300, 500), init.kaiming_uniform_, np.sqrt(6 / 500)),  # leaky_relu with a=0: gain sqrt(2)
    ((300, 500), lambda t, **kw: init.kaiming_uniform_(t, a=5 ** 0.5, **kw), 1 / np.sqrt(500)),
    ((300, 500), lambda t, **kw: init.kaiming_uniform_(t, mode="fan_out", **kw),
     np.sqrt(6 / 300)),
    ((300, 500), lambda t, **kw: init.kaiming_uniform_(t, nonlinearity="tanh", **kw),
     5 / 3 * np.sqrt(3 / 500)),
    ((8, 4, 3, 3), lambda t, **kw: init.kaiming_uniform_(t, nonlinearity="relu", **kw),
     np.sqrt(6 / 36)),
    ((300, 500), lambda t, **kw: init.uniform_(t, a=-0.2, b=0.3, **kw), None),
])
def test_uniform_initialisers_fill_their_interval(shape, fn, bound):
    w = _w(shape)
    data = w.data
    assert fn(w, seed=0) is w and w.data is data
    low, high = (-0.2, 0.3) if bound is None else (-bound, bound)
    assert low <= w.data.min() and w.data.max() < high
    width = high - low  # the extremes come within 1% of the ends
    assert w.data.min() < low + 0.01 * width and w.data.max() > high - 0.01 * width


def test_uniform_default_range_and_generator():
    w = _w((50, 40))
    init.uniform_(w, generator=np.random.default_rng(3))
    assert 0.0 <= w.data.min() and w.data.max() < 1.0
    again = _w((50, 40))
    init.uniform_(again, seed=3)
    np.testing.assert_array_equal(w.data, again.data)


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
    with pytest.raises(ValueError, match="kaiming_uniform_: mode"):
        init.kaiming_uniform_(_w(), mode="fan_avg")
    for fn in (init.xavier_uniform_, init.kaiming_uniform_):
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            fn(nn.Parameter(np.zeros(3)))
    init.uniform_(nn.Parameter(np.zeros(3)), seed=0)  # any shape
    with pytest.raises(TypeError, match="not both"):
        init.xavier_uniform_(_w(), generator=1, seed=2)
    with pytest.raises(TypeError, match="floating"):
        init.uniform_(tg.tensor(np.zeros(2, dtype=np.int64)))
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="floating"):
        init.zeros_(tg.tensor(np.zeros(2, dtype=np.int64)))
