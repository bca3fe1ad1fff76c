"""The L2 term's gradient 2 lambda W is handed over lazily (xp.Scaled) and folded into the
weight's other gradient in one pass: every order, accumulation and API gives the exact sum."""
import numpy as np
import pytest

import tensorgrad as tg


def _w(seed, dtype=np.float64, shape=(3, 4)):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype),
                     requires_grad=True)


@pytest.mark.parametrize("penalty_first", [True, False])
def test_penalty_and_another_gradient_add_up_in_either_order(penalty_first):
    w, x = _w(0), np.random.default_rng(1).standard_normal((5, 3))
    if penalty_first:
        pen = 0.3 * tg.sum_squares(w)
        fit = tg.matmul(x, w).tanh().sum()
    else:
        fit = tg.matmul(x, w).tanh().sum()
        pen = 0.3 * tg.sum_squares(w)
    (fit + pen).backward()
    expected = x.T @ (1 - np.tanh(x @ w.data) ** 2) + 0.6 * w.data
    np.testing.assert_allclose(w.grad.data, expected, rtol=1e-12)
    (got,) = tg.grad(tg.matmul(x, w).tanh().sum() + 0.3 * tg.sum_squares(w), [w])
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)


def test_penalty_alone_and_accumulation_over_two_backwards():
    w, v = _w(2), _w(3, shape=(2,))
    (tg.sum_squares(w, v) * 0.5).backward()  # no other gradient: computed at the end
    np.testing.assert_allclose(w.grad.data, w.data, rtol=1e-12)
    kept = w.grad.data
    (tg.sum_squares(w) + (w * 2.0).sum()).backward()  # adds into the existing .grad
    np.testing.assert_allclose(w.grad.data, w.data + 2 * w.data + 2.0, rtol=1e-12)
    np.testing.assert_allclose(v.grad.data, v.data, rtol=1e-12)
    assert kept is not v.grad.data and not np.may_share_memory(w.grad.data, w.data)


def test_penalty_reaching_a_weight_twice_and_through_a_non_leaf():
    w = _w(4, dtype=np.float32)
    h = w * 1.0  # a non-leaf: its gradient is computed at once
    (tg.sum_squares(w) + tg.sum_squares(w) + tg.sum_squares(h) + w.sum()).backward()
    np.testing.assert_allclose(w.grad.data, 6 * w.data + 1, rtol=1e-6, atol=1e-6)
    assert w.grad.dtype == np.float32


def test_second_order_through_the_penalty():
    w = _w(5)
    (g,) = tg.grad(tg.sum_squares(w) * 0.5, [w], create_graph=True)
    g.sum().backward()  # d/dw sum(w) = 1
    np.testing.assert_allclose(w.grad.data, np.ones_like(w.data))
