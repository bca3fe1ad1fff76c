"""The course's L2 term: sum of squared weight matrices only, and its weight_decay equivalent."""
import copy

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F


def _net(seed=0):
    return nn.Sequential(nn.Linear(6, 5, seed=seed), nn.BatchNorm1d(5), nn.ReLU(),
                         nn.Linear(5, 3, seed=seed + 1))


def test_penalty_counts_weight_matrices_only():
    net = _net()
    for p in net.parameters():  # make every parameter nonzero
        p.data += 0.5
    expected = sum((net[i].weight.data.astype(np.float64) ** 2).sum() for i in (0, 3))
    pen = nn.l2_penalty(net)
    assert isinstance(pen, tg.Tensor) and pen.shape == ()
    assert pen.item() == pytest.approx(expected, rel=1e-6)
    assert [n for n, _ in nn.l2_weights(net)] == ["0.weight", "3.weight"]


def test_penalty_gradient_is_two_w_and_zero_elsewhere():
    net = _net()
    for p in net.parameters():
        p.data += 0.5
    nn.l2_penalty(net).backward()
    for name, p in net.named_parameters():
        if name.endswith("weight") and p.ndim == 2:
            np.testing.assert_allclose(p.grad.data, 2 * p.data, rtol=1e-6)
        else:
            assert p.grad is None


def test_same_update_as_sgd_weight_decay_on_weight_groups():
    lam, lr = 0.05, 0.1
    x = np.random.default_rng(0).standard_normal((8, 6))
    y = np.arange(8) % 3
    a = _net().double()
    b = copy.deepcopy(a)
    # a: L2 in the cost, plain SGD on every parameter
    (F.cross_entropy(a(x), y) + lam * nn.l2_penalty(a)).backward()
    for p in a.parameters():
        p.data -= lr * p.grad.data
    # b: no L2 in the cost; weight decay 2 * lam on the weight matrices only
    F.cross_entropy(b(x), y).backward()
    for group in nn.l2_param_groups(b, 2 * lam):
        for p in group["params"]:
            p.data -= lr * (p.grad.data + group["weight_decay"] * p.data)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-12, atol=1e-14, err_msg=name)


def test_groups_split_the_parameters():
    net = _net()
    decay, rest = nn.l2_param_groups(net, 0.01)
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    assert len(decay["params"]) == 2 and len(rest["params"]) == 4
    assert decay["params"][0] is net[0].weight


def test_no_weight_matrix_is_an_error():
    with pytest.raises(ValueError, match="no weight matrix"):
        nn.l2_penalty(nn.BatchNorm1d(3))


def test_penalty_follows_changes_to_the_model():
    """The weight list is memoised per model; any (re)registration anywhere invalidates it."""
    model = nn.Sequential(nn.Linear(3, 2, seed=0))
    first = nn.l2_penalty(model).item()
    model.append(nn.Linear(2, 2, seed=1))
    w1 = model[1].weight.data
    assert nn.l2_penalty(model).item() == pytest.approx(first + float((w1 ** 2).sum()), rel=1e-6)
    model[0].weight = nn.Parameter(np.zeros((2, 3), dtype=np.float32))  # replaced deep inside
    assert nn.l2_penalty(model).item() == pytest.approx(float((w1 ** 2).sum()), rel=1e-6)
