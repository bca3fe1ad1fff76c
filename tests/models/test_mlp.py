"""models.MLP: structure for every option, seeded init, presets, depth 1 to 20, forward."""
import copy

import numpy as np
import pytest

import tensorgrad as tg
from models import MLP, mlp_preset, presets
from tensorgrad import nn
from tensorgrad.nn import functional as F


def _types(model):
    return [type(m).__name__ for m in model]


def test_default_is_the_course_network():
    m = MLP([3072, 50, 50, 10], seed=0)
    assert _types(m) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU",
                         "Linear"]
    assert [lin.weight.shape for lin in m.linears] == [(50, 3072), (50, 50), (10, 50)]
    assert m[1].momentum == 0.1 and m[1].eps == 1e-5
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert m.course_names() == {
        "0.weight": "W1", "0.bias": "b1", "1.weight": "gamma1", "1.bias": "beta1",
        "3.weight": "W2", "3.bias": "b2", "4.weight": "gamma2", "4.bias": "beta2",
        "6.weight": "W3", "6.bias": "b3"}


@pytest.mark.parametrize("kwargs, types", [
    (dict(batch_norm=False), ["Linear", "ReLU", "Linear"]),
    (dict(bn_position="after"), ["Linear", "ReLU", "BatchNorm1d", "Linear"]),
    (dict(dropout=0.1), ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]),
    (dict(activation="leaky_relu", negative_slope=0.2), ["Linear", "BatchNorm1d", "LeakyReLU",
                                                         "Linear"]),
    (dict(activation="elu", alpha=0.01), ["Linear", "BatchNorm1d", "ELU", "Linear"]),
    (dict(activation="tanh", batch_norm=False), ["Linear", "Tanh", "Linear"]),
    (dict(activation="sigmoid"), ["Linear", "BatchNorm1d", "Sigmoid", "Linear"]),
])
def test_options_build_the_right_layers(kwargs, types):
    m = MLP([6, 5, 3], seed=0, **kwargs)
    assert _types(m) == types
    if "negative_slope" in kwargs:
        assert m[2].negative_slope == 0.2
    if "alpha" in kwargs:
        assert m[2].alpha == 0.01
    if "dropout" in kwargs:
        assert m[3].p == 0.1


@pytest.mark.parametrize("depth", [1, 2, 5, 20])
def test_any_depth_from_1_to_20(depth):
    dims = [7] + [4] * (depth - 1) + [3]
    m = MLP(dims, seed=0)
    assert len(m.linears) == depth
    out = m(np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32))
    assert out.shape == (5, 3) and out.dtype == np.float32
    if depth == 1:
        assert _types(m) == ["Linear"]


def test_seeded_init_is_reproducible_and_independent_of_bn_and_dropout():
    a = MLP([20, 10, 5], seed=3)
    b = MLP([20, 10, 5], seed=3, batch_norm=False, dropout=0.2)
    np.testing.assert_array_equal(a[0].weight.data, b[0].weight.data)
    np.testing.assert_array_equal(a.linears[-1].weight.data, b.linears[-1].weight.data)
    c = MLP([20, 10, 5], seed=4)
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)
    g1 = MLP([20, 10, 5], seed=np.random.default_rng(9))
    g2 = MLP([20, 10, 5], seed=np.random.default_rng(9))
    np.testing.assert_array_equal(g1[0].weight.data, g2[0].weight.data)
    assert not any(lin.bias.data.any() for lin in a.linears)


def test_dropout_layers_get_different_reproducible_streams():
    m1 = MLP([8, 8, 8, 2], dropout=0.5, seed=0)
    m2 = MLP([8, 8, 8, 2], dropout=0.5, seed=0)
    drops1 = [layer for layer in m1 if isinstance(layer, nn.Dropout)]
    drops2 = [layer for layer in m2 if isinstance(layer, nn.Dropout)]
    x = tg.tensor(np.ones((4, 8), np.float32))
    masks = [d(x).data for d in drops1]
    assert not np.array_equal(masks[0], masks[1])
    for d, mask in zip(drops2, masks):
        np.testing.assert_array_equal(d(x).data, mask)


@pytest.mark.parametrize("init, var", [("he", lambda i, o: 2 / i),
                                       ("xavier", lambda i, o: 2 / (i + o)),
                                       ("lecun", lambda i, o: 1 / i),
                                       ("normal", lambda i, o: 1e-2 ** 2)])
def test_init_schemes(init, var):
    m = MLP([600, 400, 10], init=init, init_std=1e-2 if init == "normal" else None, seed=0)
    w = m[0].weight.data
    assert abs(w.var() / var(600, 400) - 1) < 0.03


def test_bad_arguments():
    with pytest.raises(ValueError, match="2 to 21 sizes"):
        MLP([5])
    with pytest.raises(ValueError, match="2 to 21 sizes"):
        MLP([5] * 22)
    with pytest.raises(ValueError, match="positive integer"):
        MLP([5, 0, 2])
    with pytest.raises(ValueError, match="activation"):
        MLP([5, 2], activation="gelu")
    with pytest.raises(ValueError, match="init must be one of"):
        MLP([5, 2], init="orthogonal")
    with pytest.raises(ValueError, match="init_std"):
        MLP([5, 2], init="normal")
    with pytest.raises(ValueError, match="init_std"):
        MLP([5, 2], init_std=0.1)
    with pytest.raises(ValueError, match="bn_position"):
        MLP([5, 2], bn_position="middle")
    with pytest.raises(ValueError, match="dropout"):
        MLP([5, 2], dropout=1.0)


def test_batch_norm_eps_and_momentum_reach_every_layer():
    m = MLP([6, 5, 4, 3], seed=0, bn_eps=1e-3, bn_momentum=0.2)
    bns = [layer for layer in m if isinstance(layer, nn.BatchNorm1d)]
    assert len(bns) == 2 and all((b.eps, b.momentum) == (1e-3, 0.2) for b in bns)
    assert MLP([6, 5, 3], seed=0, bn_momentum=None)[1].momentum is None  # cumulative average
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    m(x)  # one training batch: the running mean moves by momentum * (batch mean - 0)
    h = x @ m[0].weight.data.T + m[0].bias.data
    np.testing.assert_allclose(m[1].running_mean.data, 0.2 * h.mean(axis=0), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(bn_eps=0.0), "bn_eps must be a finite number > 0, got 0.0"),
    (dict(bn_eps=float("inf")), "bn_eps"),
    (dict(bn_eps="1e-5"), "bn_eps"),
    (dict(bn_momentum=1.5), r"bn_momentum must be a number in \[0, 1\] or None, got 1.5"),
    (dict(bn_momentum=-0.1), "bn_momentum"),
    (dict(bn_momentum=True), "bn_momentum"),
])
def test_bad_batch_norm_settings_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP([6, 5, 3], **kwargs)


def test_presets():
    assert presets["two_layer"] == [3072, 50, 10]
    assert presets["three_layer"] == [3072, 50, 50, 10]
    assert presets["nine_layer"] == [3072, 50, 30, 20, 20, 10, 10, 10, 10, 10]
    assert presets["r0_3"] == [3072, 50, 30, 10]
    assert presets["r0_4"] == [3072, 50, 30, 20, 10]
    assert presets["r0_9"] == [3072, 50, 30, 20, 20, 10, 10, 10, 10, 10]
    assert sorted(k for k in presets if k.startswith("r0_")) == [f"r0_{k}" for k in range(3, 10)]
    for k in range(3, 10):
        assert len(presets[f"r0_{k}"]) - 1 == k
    m = mlp_preset("nine_layer", batch_norm=False, seed=0)
    assert m.dims == presets["nine_layer"] and len(m.linears) == 9
    with pytest.raises(KeyError, match="unknown preset"):
        mlp_preset("ten_layer")


def test_eval_forward_is_deterministic_and_uses_running_stats():
    m = MLP([6, 5, 3], dropout=0.3, seed=0)
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    m(x)
    m.eval()
    np.testing.assert_array_equal(m(x).data, m(x).data)
    np.testing.assert_allclose(m(x[:1]).data, m(x).data[:1], rtol=1e-5)  # per sample in eval


def test_double_copy_for_gradient_checks():
    m = MLP([6, 5, 3], seed=0)
    m64 = copy.deepcopy(m).double()
    x = np.random.default_rng(0).standard_normal((8, 6))
    out = m64(x)
    assert out.dtype == np.float64 and m[0].weight.dtype == np.float32
    np.testing.assert_allclose(out.data, m(x.astype(np.float32)).data, rtol=1e-4, atol=1e-5)


def test_repr_and_state_dict_names():
    m = MLP([4, 3, 2], seed=0)
    assert repr(m).startswith("MLP(\n  (0): Linear(in_features=4, out_features=3, bias=True)")
    assert list(m.state_dict())[:4] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_cross_entropy_on_scores_backpropagates_to_every_parameter():
    m = MLP([6, 5, 4, 3], seed=0)
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    (F.cross_entropy(m(x), np.arange(8) % 3) + 0.01 * nn.l2_penalty(m)).backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in m.parameters())
