"""Loss modules and functional losses beyond the torch goldens (tests/nn/test_golden_torch.py):
ignore_index, label checks, weights, shapes, gradients of the compositions, state dicts."""
import warnings

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F


def _logits(n=5, c=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c))


# ---- cross_entropy / nll_loss: ignore_index and labels ------------------------------------------
@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_default_ignore_index_skips_minus_100_and_means_over_the_rest(fn):
    z = _logits()
    y = np.array([0, -100, 3, 1, -100])
    kept = y != -100
    x = tg.tensor(z, requires_grad=True)
    loss = fn(x, y)
    loss.backward()
    x_kept = tg.tensor(z[kept], requires_grad=True)
    ref = fn(x_kept, y[kept])
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data[kept], x_kept.grad.data * kept.sum() / kept.sum(),
                               rtol=1e-12)
    assert not x.grad.data[~kept].any()  # ignored rows get no gradient
    none = fn(tg.tensor(z), y, reduction="none").data
    assert (none[~kept] == 0).all()
    np.testing.assert_allclose(fn(tg.tensor(z), y, reduction="sum").item(), none.sum())


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_bad_labels_raise_naming_the_op_and_the_label(fn):
    z = tg.tensor(_logits(3, 4))
    name = fn.__name__
    with pytest.raises(IndexError, match=rf"{name}: target label -1 is out of range for 4"):
        fn(z, np.array([0, -1, -100]))
    with pytest.raises(IndexError, match=rf"{name}: target label 4 is out of range"):
        fn(z, np.array([-100, 4, 1]))
    with pytest.raises(IndexError, match=r"label -100 is out of range"):  # another ignore_index
        fn(z, np.array([0, -100, 1]), ignore_index=-1)
    fn(z, np.array([0, -1, 1]), ignore_index=-1)  # now -1 is the one skipped


def test_an_ignore_index_inside_the_class_range_skips_that_class():
    z = _logits(6, 4)
    y = np.array([2, 0, 2, 1, 3, 2])
    a = F.cross_entropy(tg.tensor(z), y, ignore_index=2)
    b = F.cross_entropy(tg.tensor(z[y != 2]), y[y != 2])
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)


def test_every_label_ignored_gives_nan_mean_with_zero_gradient_as_torch():
    x = tg.tensor(_logits(3, 4), requires_grad=True)
    y = np.full(3, -100)
    loss = F.cross_entropy(x, y)
    assert np.isnan(loss.item())
    loss.backward()
    assert not x.grad.data.any()
    assert F.cross_entropy(tg.tensor(_logits(3, 4)), y, reduction="sum").item() == 0.0
    assert np.isnan(F.nll_loss(tg.tensor(_logits(3, 4)), y, np.ones(4)).item())


def test_class_weight_mean_divides_by_the_weights_of_the_labels():
    z, y, w = _logits(), np.array([0, 2, 3, 1, 2]), np.array([0.5, 1.0, 2.0, 3.0])
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    per = -w[y] * logp[np.arange(5), y]
    np.testing.assert_allclose(F.cross_entropy(tg.tensor(z), y, w).item(),
                               per.sum() / w[y].sum(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(tg.tensor(z), y, tg.tensor(w),
                                               reduction="none").data, per, rtol=1e-12)
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(4,\)"):
        F.cross_entropy(tg.tensor(z), y, np.ones(3))


def test_the_default_path_is_unchanged_in_value():
    """No weight, no ignored label: the same three ops as before (vdot of log_softmax with the
    scaled one-hot rows)."""
    z = _logits(100, 10)
    y = np.random.default_rng(1).integers(0, 10, 100)
    x = tg.tensor(z, requires_grad=True)
    loss = F.cross_entropy(x, y)
    assert loss.grad_fn.name == "vdot"
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(loss.item(), -logp[np.arange(100), y].mean(), rtol=1e-12)


def test_cross_entropy_with_ignored_labels_in_a_fused_function():
    y = np.array([0, -100, 3])

    @tg.fuse
    def f(x):
        return F.cross_entropy(x, y)
    x = tg.tensor(_logits(3, 4), requires_grad=True)
    np.testing.assert_allclose(f(x).item(), F.cross_entropy(tg.tensor(x.data), y).item())


# ---- elementwise losses -------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss, F.binary_cross_entropy,
                                F.binary_cross_entropy_with_logits])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elementwise_losses_gradcheck_in_input_and_target(fn, reduction):
    rng = np.random.default_rng(2)
    x = tg.tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    t = tg.tensor(rng.uniform(0.0, 1.0, (3, 4)), requires_grad=True)

    def f(x, t):
        out = fn(x, t, reduction=reduction)
        return out if reduction != "none" else out * np.linspace(-1, 1, 12).reshape(3, 4)
    assert tg.gradcheck(f, [x, t])
    assert tg.gradgradcheck(f, [x, t])


def test_bce_with_logits_pos_weight_and_weight_gradcheck_and_stability():
    rng = np.random.default_rng(3)
    x = tg.tensor(rng.standard_normal((3, 4)) * 3, requires_grad=True)
    t = rng.uniform(size=(3, 4))
    pw, w = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, (3, 4))
    assert tg.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
                        [x])
    big = F.binary_cross_entropy_with_logits(tg.tensor([1000.0, -1000.0]),
                                             np.array([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(big.data, [1000.0, 1000.0])
    p = tg.sigmoid(x)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, t, pos_weight=pw).item(),
                               (-(pw * t * np.log(p.data)
                                  + (1 - t) * np.log(1 - p.data))).mean(), rtol=1e-10)


def test_bce_clamps_its_logarithms_and_checks_its_input():
    loss = F.binary_cross_entropy(tg.tensor([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]),
                                  reduction="none")
    np.testing.assert_allclose(loss.data, [100.0, 100.0, 0.0])
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input values must be "
                                         r"probabilities in \[0, 1\], got 1.5"):
        F.binary_cross_entropy(tg.tensor([0.5, 1.5]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="target shape"):
        F.binary_cross_entropy(tg.tensor([0.5, 0.5]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="target shape"):
        F.binary_cross_entropy_with_logits(tg.tensor([0.5, 0.5]), np.array([1.0]))

    @tg.fuse  # traced: no value check, the same maths
    def f(p):
        return F.binary_cross_entropy(p, np.array([1.0, 0.0]))
    p = tg.tensor([0.3, 0.6], requires_grad=True)
    np.testing.assert_allclose(f(p).item(), -(np.log(0.3) + np.log(0.4)) / 2)


def test_mse_and_l1_broadcast_other_shapes_with_a_warning_as_torch():
    x = tg.tensor(np.arange(3.0).reshape(3, 1))
    with pytest.warns(UserWarning, match="mse_loss: target shape"):
        loss = F.mse_loss(x, np.zeros(3))
    assert loss.item() == pytest.approx(5 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.l1_loss(x, np.zeros((3, 1)))


@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.NLLLoss, nn.MSELoss, nn.L1Loss,
                                 nn.BCELoss, nn.BCEWithLogitsLoss])
def test_loss_modules_check_reduction_and_have_no_state_without_weights(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}: reduction must be"):
        cls(reduction="avg")
    assert list(cls().state_dict()) == []
    assert list(cls().parameters()) == []


def test_loss_module_weights_are_buffers_in_the_state_dict_as_torch():
    ce = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0]), ignore_index=1,
                             label_smoothing=0.1)
    assert list(ce.state_dict()) == ["weight"]
    bce = nn.BCEWithLogitsLoss(tg.tensor(np.ones(3)), pos_weight=np.array([1.0, 2.0, 3.0]))
    assert list(bce.state_dict()) == ["weight", "pos_weight"]
    z, y = tg.tensor(_logits(4, 3)), np.array([0, 1, 2, 1])
    np.testing.assert_allclose(
        ce(z, y).item(),
        F.cross_entropy(z, y, np.array([1.0, 2.0, 3.0]), ignore_index=1,
                        label_smoothing=0.1).item())
    nn.CrossEntropyLoss().double()  # (to() with no buffers)
    assert ce.double().weight.dtype == np.float64


def test_the_readme_style_loop_with_a_loss_module():
    model = nn.Sequential(nn.Linear(4, 8, seed=0, dtype=np.float64), nn.GELU(),
                          nn.LayerNorm(8, dtype=np.float64), nn.Linear(8, 3, seed=1,
                                                                      dtype=np.float64))
    criterion = nn.CrossEntropyLoss()
    x = tg.tensor(np.random.default_rng(0).standard_normal((16, 4)))
    y = np.random.default_rng(1).integers(0, 3, 16)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7


# ---- one_hot ------------------------------------------------------------------------------------
def test_one_hot():
    out = F.one_hot(np.array([[0, 2], [1, 0]]), 3)
    assert out.dtype == np.int64 and out.shape == (2, 2, 3) and not out.requires_grad
    np.testing.assert_array_equal(out.data[0], [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(tg.tensor(np.array([1, 4]))).shape == (2, 5)  # inferred: max + 1
    with pytest.raises(ValueError, match="one_hot: class value 3 is out of range for "
                                         "num_classes=3"):
        F.one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="class value -1"):
        F.one_hot(np.array([0, -1]), 3)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="empty"):
        F.one_hot(np.array([], dtype=np.int64))
    assert F.one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)


def test_one_hot_of_a_traced_tensor_is_refused_with_the_reason():
    @tg.fuse
    def f(y):
        return F.one_hot(y, 3)
    with pytest.raises(tg.TraceError, match="one_hot of a traced tensor"):
        f(tg.tensor(np.array([0, 2])))
