"""Linear, activations, Identity, Flatten: PyTorch's layout and behaviour."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn


def test_linear_layout_and_forward():
    lin = nn.Linear(4, 3, seed=0)
    assert lin.weight.shape == (3, 4) and lin.bias.shape == (3,)
    assert lin.weight.dtype == np.float32 and not lin.bias.data.any()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    lin.bias.data[...] = [1, 2, 3]
    np.testing.assert_allclose(lin(x).data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-6)
    y = lin(tg.tensor(x, requires_grad=True))
    assert y.grad_fn.name == "linear"  # one fused primitive
    no_bias = nn.Linear(4, 3, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    np.testing.assert_allclose(no_bias(x).data, x @ no_bias.weight.data.T, rtol=1e-6)


def test_linear_gradients_match_numpy():
    lin = nn.Linear(3, 2, seed=0, dtype=np.float64)
    x = tg.tensor(np.random.default_rng(2).standard_normal((4, 3)), requires_grad=True)
    g = np.random.default_rng(3).standard_normal((4, 2))
    (lin(x) * g).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.data, g.T @ x.data)
    np.testing.assert_allclose(lin.bias.grad.data, g.sum(0))
    np.testing.assert_allclose(x.grad.data, g @ lin.weight.data)


def test_linear_weight_is_stored_in_out_order_and_its_gradient_too():
    # (out, in) as in PyTorch, in (in, out) memory: x @ W^T is a plain BLAS product
    lin = nn.Linear(6, 4, seed=0)
    assert lin.weight.shape == (4, 6) and lin.weight.data.flags.f_contiguous
    lin(np.ones((3, 6), np.float32)).sum().backward()
    assert lin.weight.grad.data.flags.f_contiguous  # the optimizer's update keeps one order
    np.testing.assert_allclose(lin.weight.grad.data, np.full((4, 6), 3.0))
    for converted in (lin.double(), lin.float()):  # conversions keep the order
        assert converted.weight.data.flags.f_contiguous


def test_linear_init_is_he_normal_and_seeded():
    a, b = nn.Linear(400, 300, seed=7), nn.Linear(400, 300, seed=7)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, nn.Linear(400, 300, seed=8).weight.data)
    std = a.weight.data.std()
    assert abs(std - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    assert abs(a.weight.data.mean()) < 0.01 * std * 10
    # float64 and float32 layers from the same seed start from the same values
    d = nn.Linear(400, 300, seed=7, dtype=np.float64)
    np.testing.assert_array_equal(d.weight.data.astype(np.float32), a.weight.data)


def test_linear_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(TypeError, match="floating"):
        nn.Linear(2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\)"):
        nn.Linear(4, 3)(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("layer, expected", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (nn.ELU(), lambda x: np.where(x > 0, x, np.expm1(x))),
    (nn.ELU(0.3), lambda x: np.where(x > 0, x, 0.3 * np.expm1(x))),
    (nn.Tanh(), np.tanh),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Identity(54, unused=True), lambda x: x),
])
def test_activations(layer, expected):
    x = np.linspace(-3, 3, 13).reshape(1, 13)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, expected(x), rtol=1e-12, atol=1e-12)
    assert tg.gradcheck(lambda t: layer(t), [tg.tensor(x + 0.05, requires_grad=True)])


def test_flatten_keeps_the_batch_dimension():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, -1)(x).shape == (24,)
    assert nn.Flatten(1, 1)(x).shape == (2, 3, 4)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
