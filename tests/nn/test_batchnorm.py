"""BatchNorm1d: normalisation, invariances, running statistics, eval mode, gradients."""
import copy
import re

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F

batches = st.tuples(st.integers(2, 12), st.integers(1, 5), st.integers(0, 2 ** 16))


def _batch(n, c, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c)) * rng.uniform(0.5, 3, c) + rng.uniform(-2, 2, c)
            ).astype(dtype)


@given(batches)
@example(p=(2, 5, 567))  # feature 4: variance 5e-7, where eps = 1e-12 moves the output by 2e-6
def test_training_output_has_zero_mean_unit_variance_per_feature(p):
    n, c, seed = p
    x = _batch(n, c, seed)
    assume(np.all(x.var(0) >= 1e-5))  # eps / var: the output variance's shortfall from 1
    bn = nn.BatchNorm1d(c, eps=1e-12).double()  # affine part is the identity at init
    y = bn(x).data
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(y.var(0), 1, rtol=1e-6)  # population variance


@given(batches, st.floats(0.1, 10), st.floats(-5, 5))
@example(p=(2, 5, 1878), scale=0.25, shift=0.0)  # feature 0: two samples 3e-3 apart
def test_invariant_to_positive_scale_and_shift_per_feature(p, scale, shift):
    n, c, seed = p
    x = _batch(n, c, seed)
    a = np.linspace(1, 2, c) * scale
    b = np.linspace(-1, 1, c) + shift
    eps = 1e-12
    # exact only for eps = 0: eps moves the output by a relative eps / (2 var) at most, so every
    # feature's variance, scaled or not, stays 1e7 eps above it (20 times under rtol below)
    assume(np.all(x.var(0) * np.minimum(a, 1.0) ** 2 >= 1e7 * eps))
    bn = nn.BatchNorm1d(c, eps=eps).double()
    bn.weight.data[...] = np.linspace(0.5, 2, c)
    bn.bias.data[...] = 0.3
    np.testing.assert_allclose(bn(x * a + b).data, bn(x).data, rtol=1e-6, atol=1e-6)


@given(batches)
def test_affine_part_is_gamma_times_xhat_plus_beta(p):
    n, c, seed = p
    x = _batch(n, c, seed)
    bn = nn.BatchNorm1d(c).double()
    gamma, beta = np.linspace(0.5, 2, c), np.linspace(-1, 1, c)
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(bn(x).data, xhat * gamma + beta, rtol=1e-10, atol=1e-12)


@given(batches, st.floats(0.0, 1.0))
def test_running_statistics_update_with_unbiased_variance(p, momentum):
    n, c, seed = p
    bn = nn.BatchNorm1d(c, momentum=momentum).double()
    rm, rv = np.zeros(c), np.ones(c)
    for k in range(3):
        x = _batch(n, c, seed + k)
        bn(x)
        rm = (1 - momentum) * rm + momentum * x.mean(0)
        rv = (1 - momentum) * rv + momentum * x.var(0, ddof=1)
    np.testing.assert_allclose(bn.running_mean.data, rm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bn.running_var.data, rv, rtol=1e-12, atol=1e-14)
    assert bn.num_batches_tracked.item() == 3


@given(batches)
def test_eval_mode_uses_running_statistics_and_changes_nothing(p):
    n, c, seed = p
    bn = nn.BatchNorm1d(c).double()
    bn.running_mean.data[...] = np.linspace(-1, 1, c)
    bn.running_var.data[...] = np.linspace(0.5, 3, c)
    bn.weight.data[...] = 2.0
    bn.bias.data[...] = -1.0
    before = copy.deepcopy(bn.state_dict())
    bn.eval()
    x = _batch(n, c, seed)
    expected = (x - bn.running_mean.data) / np.sqrt(bn.running_var.data + 1e-5) * 2 - 1
    # (atol: an output that cancels to ~0 has no meaningful relative error)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn(x[:1]).data, expected[:1], rtol=1e-12, atol=1e-12)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_running_statistics_converge_to_the_distribution():
    rng = np.random.default_rng(0)
    mean, std = np.array([3.0, -1.0, 0.0]), np.array([2.0, 0.5, 1.0])
    bn = nn.BatchNorm1d(3)
    for _ in range(300):
        bn((rng.standard_normal((50, 3)) * std + mean).astype(np.float32))
    assert bn.running_mean.dtype == np.float32
    assert (np.abs(bn.running_mean.data - mean) < 0.1 * std).all()
    np.testing.assert_allclose(bn.running_var.data, std ** 2, rtol=0.15)


def test_cumulative_average_when_momentum_is_none():
    bn = nn.BatchNorm1d(2, momentum=None).double()
    xs = [_batch(5, 2, s) for s in range(4)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean.data, np.mean([x.mean(0) for x in xs], 0))
    np.testing.assert_allclose(bn.running_var.data, np.mean([x.var(0, ddof=1) for x in xs], 0))


def test_without_running_statistics_eval_uses_the_batch():
    bn = nn.BatchNorm1d(3, track_running_stats=False, affine=False).double()
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = _batch(6, 3, 0)
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(bn.eval()(x).data, expected, rtol=1e-12)


def test_gradients_pass_gradcheck_in_both_modes():
    x = tg.tensor(_batch(5, 3, 1), requires_grad=True)
    w = tg.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    b = tg.tensor(np.array([0.1, 0.0, -0.2]), requires_grad=True)
    rm, rv = np.zeros(3), np.ones(3)
    assert tg.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                        [x, w, b])
    assert tg.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b), [x, w, b])
    assert tg.gradgradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x])


def test_three_dimensional_input_normalises_over_batch_and_length():
    x = np.random.default_rng(0).standard_normal((4, 3, 5))
    bn = nn.BatchNorm1d(3).double()
    bn.weight.data[...] = [1, 2, 3]
    y = bn(x).data
    np.testing.assert_allclose(y.mean((0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var((0, 2)), np.array([1, 4, 9]) * (1 - 1e-5 / (1 + 1e-5)),
                               rtol=1e-4)
    np.testing.assert_allclose(bn.running_var.data,
                               0.9 + 0.1 * x.transpose(1, 0, 2).reshape(3, -1).var(1, ddof=1))


def test_float32_stays_float32_and_errors_are_clear():
    bn = nn.BatchNorm1d(4)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert bn(x).dtype == np.float32 and bn.eval()(x).dtype == np.float32
    bn.train()
    with pytest.raises(ValueError, match=r"BatchNorm1d: input of shape \(3, 5\) has 5 features, "
                                         r"but num_features is 4"):
        bn(np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"batch_norm: input of shape \(3, 5\) has 5 features, "
                                         r"but running_mean has shape \(4,\)"):
        F.batch_norm(np.ones((3, 5)), np.zeros(4), np.ones(4), training=True)
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, L\)"):
        bn(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=2)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(np.ones((2, 3)), None, None)
    with pytest.raises(ValueError, match=r"weight has shape \(2,\) \(expected \(3,\)\)"):
        F.batch_norm(np.ones((2, 3)), None, None, np.ones(2), training=True)


def test_reset_running_stats():
    bn = nn.BatchNorm1d(2)
    bn(_batch(4, 2, 0, np.float32))
    bn.reset_running_stats()
    assert not bn.running_mean.data.any() and (bn.running_var.data == 1).all()
    assert bn.num_batches_tracked.item() == 0


def _state(module):
    """Every parameter and buffer of `module` as bytes (bitwise comparison)."""
    return {k: (v.dtype, v.shape, np.ascontiguousarray(v).tobytes())
            for k, v in module.state_dict().items()}


REFUSED = [  # (input shape, the message it gets) for a BatchNorm1d(4) in training mode
    pytest.param((1, 4), r"BatchNorm1d: expected more than 1 value per channel when training, "
                 r"got input of shape \(1, 4\)", id="batch_of_one"),
    pytest.param((1, 4, 1), r"BatchNorm1d: expected more than 1 value per channel when "
                 r"training, got input of shape \(1, 4, 1\)", id="one_value_per_channel_3d"),
    pytest.param((3, 5), r"BatchNorm1d: input of shape \(3, 5\) has 5 features, but "
                 r"num_features is 4", id="wrong_features"),
    pytest.param((2, 3, 6), r"BatchNorm1d: input of shape \(2, 3, 6\) has 3 features, but "
                 r"num_features is 4", id="wrong_features_3d"),
    pytest.param((4,), r"BatchNorm1d: expected input of shape \(N, C\) or \(N, C, L\), "
                 r"got \(4,\)", id="1d"),
    pytest.param((2, 4, 3, 1), r"BatchNorm1d: expected input of shape \(N, C\) or "
                 r"\(N, C, L\), got \(2, 4, 3, 1\)", id="4d"),
]


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape, message", REFUSED)
def test_refused_input_changes_no_state(shape, message, momentum):
    bn = nn.BatchNorm1d(4, momentum=momentum)
    bn(_batch(6, 4, 0, np.float32))
    before = _state(bn)
    with pytest.raises(ValueError) as refused:
        bn(np.ones(shape, np.float32))
    assert _state(bn) == before
    assert re.search(message, str(refused.value)), str(refused.value)
    assert bn.num_batches_tracked.item() == 1
    bn(_batch(6, 4, 1, np.float32))  # and the layer still works
    assert bn.num_batches_tracked.item() == 2


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("shape, message", [  # what the BatchNorm1d after Linear(3, 4) gets
    pytest.param((1, 3), REFUSED[0].values[1], id="batch_of_one"),
    pytest.param((3,), REFUSED[4].values[1], id="1d"),
    pytest.param((2, 5, 3), r"BatchNorm1d: input of shape \(2, 5, 4\) has 5 features, but "
                 r"num_features is 4", id="wrong_features_3d"),
])
def test_refused_input_changes_no_state_in_a_fused_chain(shape, message, flat, monkeypatch):
    monkeypatch.setattr(nn.BatchNorm1d, "forward", lambda *a: pytest.fail("not fused"))
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.BatchNorm1d(4), nn.ReLU())
    if flat:
        model.flatten_parameters()
    model(_batch(6, 3, 0, np.float32))  # traced and run once
    before = _state(model)
    with pytest.raises(ValueError) as refused:
        model(np.ones(shape, np.float32))
    assert _state(model) == before
    assert re.search(message, str(refused.value)), str(refused.value)
    assert model[1].num_batches_tracked.item() == 1
    model(_batch(6, 3, 1, np.float32))
    assert model[1].num_batches_tracked.item() == 2


def test_wrong_feature_count_in_a_fused_chain_changes_no_state(monkeypatch):
    monkeypatch.setattr(nn.BatchNorm1d, "forward", lambda *a: pytest.fail("not fused"))
    model = nn.Sequential(nn.Linear(3, 5, seed=0), nn.BatchNorm1d(4), nn.ReLU())
    before = _state(model)
    with pytest.raises(ValueError) as refused:
        model(_batch(6, 3, 0, np.float32))
    assert _state(model) == before
    assert re.search(r"BatchNorm1d: input of shape \(6, 5\) has 5 features, but num_features "
                     r"is 4", str(refused.value)), str(refused.value)


@pytest.mark.parametrize("track", [True, False])
def test_fused_chain_checks_its_input_in_eval_mode_too(track, monkeypatch):
    monkeypatch.setattr(nn.BatchNorm1d, "forward", lambda *a: pytest.fail("not fused"))
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.BatchNorm1d(4, track_running_stats=track),
                          nn.ReLU())
    model(_batch(6, 3, 0, np.float32))
    model.eval()
    before = _state(model)
    with pytest.raises(ValueError, match=r"BatchNorm1d: input of shape \(2, 5, 4\) has 5 "
                                         r"features, but num_features is 4"):
        model(np.ones((2, 5, 3), np.float32))
    if track:  # running statistics: one sample is enough
        assert model(np.ones((1, 3), np.float32)).shape == (1, 4)
    else:  # batch statistics in eval mode too, as PyTorch
        with pytest.raises(ValueError, match="BatchNorm1d: expected more than 1 value per "
                                             "channel"):
            model(np.ones((1, 3), np.float32))
    assert _state(model) == before
