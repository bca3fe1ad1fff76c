"""A 3-layer MLP with batch norm fits a small synthetic 10-class problem (> 95% train accuracy)."""
import numpy as np

import tensorgrad as tg
from models import MLP
from tensorgrad import nn
from tensorgrad.nn import functional as F


def _problem(n=600, d=20, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 1.5
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, d))
    return x.astype(np.float32), y


def _accuracy(model, x, y):
    model.eval()
    with tg.no_grad():
        acc = float((model(x).data.argmax(1) == y).mean())
    model.train()
    return acc


def test_three_layer_bn_mlp_fits_a_synthetic_problem():
    x, y = _problem()
    model = MLP([20, 50, 50, 10], seed=0, dropout=0.1)
    lam, lr, batch = 1e-4, 0.1, 50
    rng = np.random.default_rng(1)
    assert _accuracy(model, x, y) < 0.5
    for epoch in range(15):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            cost = F.cross_entropy(model(x[idx]), y[idx]) + lam * nn.l2_penalty(model)
            model.zero_grad()
            cost.backward()
            for p in model.parameters():
                p.data -= lr * p.grad.data
    assert _accuracy(model, x, y) > 0.95


def test_same_with_the_optim_package_and_weight_decay_groups():
    from tensorgrad.optim import SGD
    x, y = _problem(seed=2)
    model = MLP([20, 50, 50, 10], seed=0)
    opt = SGD(nn.l2_param_groups(model, weight_decay=2e-4), lr=0.1, momentum=0.9)
    for epoch in range(10):
        for start in range(0, len(x), 50):
            loss = F.cross_entropy(model(x[start:start + 50]), y[start:start + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _accuracy(model, x, y) > 0.95
