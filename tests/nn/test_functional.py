"""cross_entropy / nll_loss: values, gradients (softmax - target), stability, targets, errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tensorgrad as tg
from tensorgrad.nn import functional as F


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _logits(n, c, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal((n, c)) * scale


problems = st.tuples(st.integers(1, 6), st.integers(2, 5), st.integers(0, 2 ** 16))


@given(problems)
def test_cross_entropy_value_and_gradient_with_integer_labels(p):
    n, c, seed = p
    z = _logits(n, c, seed)
    y = np.random.default_rng(seed + 1).integers(0, c, n)
    x = tg.tensor(z, requires_grad=True)
    loss = F.cross_entropy(x, y)
    s = _softmax(z)
    np.testing.assert_allclose(loss.item(), -np.log(s[np.arange(n), y]).mean(), rtol=1e-12)
    loss.backward()
    onehot = np.eye(c)[y]
    np.testing.assert_allclose(x.grad.data, (s - onehot) / n, rtol=1e-10, atol=1e-15)


@given(problems)
def test_one_hot_targets_equal_integer_labels_and_soft_targets_give_softmax_minus_target(p):
    n, c, seed = p
    z = _logits(n, c, seed)
    y = np.random.default_rng(seed + 1).integers(0, c, n)
    for reduction in ("mean", "sum", "none"):
        a = F.cross_entropy(tg.tensor(z), y, reduction=reduction).data
        b = F.cross_entropy(tg.tensor(z), np.eye(c)[y], reduction=reduction).data
        np.testing.assert_allclose(a, b, rtol=1e-12)
    t = np.random.default_rng(seed + 2).dirichlet(np.ones(c), size=n)
    x = tg.tensor(z, requires_grad=True)
    F.cross_entropy(x, t, reduction="sum").backward()
    np.testing.assert_allclose(x.grad.data, _softmax(z) - t, rtol=1e-10, atol=1e-14)


@given(problems, st.floats(0.0, 1.0))
def test_label_smoothing_is_a_mixture_with_the_uniform_target(p, eps):
    n, c, seed = p
    z = _logits(n, c, seed)
    y = np.random.default_rng(seed + 1).integers(0, c, n)
    smoothed = (1 - eps) * np.eye(c)[y] + eps / c
    for reduction in ("mean", "sum", "none"):
        a = F.cross_entropy(tg.tensor(z), y, reduction=reduction, label_smoothing=eps).data
        b = F.cross_entropy(tg.tensor(z), smoothed, reduction=reduction).data
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # PyTorch's definition: (1 - eps) * nll + eps * mean over classes of -log p
    logp = np.log(_softmax(z))
    manual = (1 - eps) * -logp[np.arange(n), y] + eps * -logp.mean(1)
    np.testing.assert_allclose(
        F.cross_entropy(tg.tensor(z), y, reduction="none", label_smoothing=eps).data, manual,
        rtol=1e-10, atol=1e-14)


def test_reductions_relate():
    z, y = _logits(7, 4), np.arange(7) % 4
    per = F.cross_entropy(tg.tensor(z), y, reduction="none").data
    assert per.shape == (7,)
    assert F.cross_entropy(tg.tensor(z), y, reduction="sum").item() == pytest.approx(per.sum())
    assert F.cross_entropy(tg.tensor(z), y).item() == pytest.approx(per.mean())


def test_huge_logits_are_stable():
    z = np.array([[1e4, 0.0, -1e4], [-5e3, 5e3, 5e3]])
    x = tg.tensor(z, requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 2]))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx((1e4 + np.log(2)) / 2)
    assert np.isfinite(x.grad.data).all()
    f32 = F.cross_entropy(tg.tensor(z.astype(np.float32)), np.array([0, 1]))
    assert f32.dtype == np.float32 and np.isfinite(f32.item())


def test_int_tensor_labels_and_dtypes():
    z = _logits(3, 4).astype(np.float32)
    y = tg.tensor(np.array([0, 3, 1]))
    loss = F.cross_entropy(tg.tensor(z, requires_grad=True), y)
    assert loss.dtype == np.float32
    # float64 soft targets are cast to the logits' dtype: the loss stays float32
    soft = F.cross_entropy(tg.tensor(z), np.eye(4)[[0, 3, 1]])
    assert soft.dtype == np.float32 and soft.item() == pytest.approx(loss.item(), rel=1e-6)
    assert F.cross_entropy(tg.tensor(z), np.array([0, 3, 1], np.uint8)).item() == \
        pytest.approx(loss.item())


def test_gradient_through_soft_targets_that_require_grad():
    z = tg.tensor(_logits(3, 4), requires_grad=True)
    t = tg.tensor(np.full((3, 4), 0.25), requires_grad=True)
    F.cross_entropy(z, t).backward()
    np.testing.assert_allclose(t.grad.data, -np.log(_softmax(z.data)) / 3)


def test_nll_loss_matches_cross_entropy_of_log_softmax():
    z, y = _logits(5, 3), np.array([0, 2, 1, 1, 0])
    for reduction in ("mean", "sum", "none"):
        a = F.nll_loss(F.log_softmax(tg.tensor(z), 1), y, reduction=reduction).data
        b = F.cross_entropy(tg.tensor(z), y, reduction=reduction).data
        np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(TypeError, match="integer class labels"):
        F.nll_loss(tg.tensor(z), y.astype(float))


def test_errors_are_clear():
    z = tg.tensor(_logits(3, 4))
    with pytest.raises(IndexError, match="label 4 is out of range for 4 classes"):
        F.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="label -1"):
        F.cross_entropy(z, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        F.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="float class probabilities"):
        F.cross_entropy(z, np.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.cross_entropy(tg.tensor(np.zeros(4)), np.array([1]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(z, np.array([0, 1, 2]), label_smoothing=1.5)


def test_softmax_and_log_softmax_are_the_ops():
    z = tg.tensor(_logits(3, 4))
    np.testing.assert_allclose(F.softmax(z, 1).data, _softmax(z.data))
    np.testing.assert_allclose(F.log_softmax(z, dim=1).data, np.log(_softmax(z.data)))


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 4)),
                  elements=st.floats(-30, 30)))
def test_cross_entropy_gradcheck(z):
    y = np.arange(z.shape[0]) % z.shape[1]
    assert tg.gradcheck(lambda t: F.cross_entropy(t, y, label_smoothing=0.1),
                        [tg.tensor(z, requires_grad=True)])
