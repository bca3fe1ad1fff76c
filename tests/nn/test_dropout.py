"""Dropout: PyTorch's p (drop probability), inverted scaling, eval identity, seeded masks whose
generator state is saved in the module's state dict."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F


def test_identity_in_eval_and_for_p_zero():
    x = tg.tensor(np.random.default_rng(0).standard_normal((4, 5)))
    d = nn.Dropout(0.5, seed=0).eval()
    assert d(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert F.dropout(x, 0.7, training=False) is x


@given(st.floats(0.05, 0.95), st.integers(0, 2 ** 16))
def test_kept_fraction_and_expectation(p, seed):
    x = np.ones((200, 100), dtype=np.float32)
    y = nn.Dropout(p, seed=seed)(tg.tensor(x)).data
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / x.size)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)  # inverted scaling
    assert abs(y.mean() - 1) < 5 * np.sqrt(p / (1 - p) / x.size)  # expectation preserved
    assert y.dtype == np.float32


def test_p_one_drops_everything():
    y = nn.Dropout(1.0, seed=0)(tg.tensor(np.ones((3, 3))))
    assert not y.data.any()


def test_gradient_is_the_mask():
    x = tg.tensor(np.ones((6, 7)), requires_grad=True)
    y = nn.Dropout(0.3, seed=1)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)


def test_same_seed_same_masks_and_state_restores_them():
    a, b = nn.Dropout(0.5, seed=42), nn.Dropout(0.5, seed=42)
    x = tg.tensor(np.ones((10, 10)))
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert not np.array_equal(a(x).data, nn.Dropout(0.5, seed=43)(x).data)

    state = a.state_dict()
    assert list(state) == ["_extra_state"]
    following = [a(x).data for _ in range(3)]
    c = nn.Dropout(0.5, seed=7)
    c.load_state_dict(state)
    for expected in following:
        np.testing.assert_array_equal(c(x).data, expected)


def test_state_survives_a_file_and_other_bit_generators(tmp_path):
    from tensorgrad.serialization import load, save
    d = nn.Dropout(0.4, seed=np.random.Generator(np.random.MT19937(5)))
    x = tg.tensor(np.ones((8, 8)))
    d(x)
    save(d, tmp_path / "d.npz")
    expected = d(x).data
    fresh = nn.Dropout(0.4, seed=0)  # a PCG64 generator: replaced by an MT19937 one
    fresh.load_state_dict(load(tmp_path / "d.npz"))
    np.testing.assert_array_equal(fresh(x).data, expected)
    with pytest.raises(ValueError, match="bit generator"):
        fresh.set_extra_state({"no": "state"})


def test_in_a_model_the_state_dict_key_is_dotted():
    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1, seed=0))
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1._extra_state"]


def test_functional_dropout_with_generator():
    x = tg.tensor(np.ones((5, 5)))
    a = F.dropout(x, 0.5, generator=np.random.default_rng(3)).data
    b = F.dropout(x, 0.5, generator=3).data
    np.testing.assert_array_equal(a, b)


def test_bad_p():
    with pytest.raises(ValueError, match="probability of dropping"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="probability of dropping"):
        F.dropout(tg.tensor([1.0]), -0.1)
