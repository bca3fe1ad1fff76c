"""Module.flatten_parameters and SGD's flat update: same values, same updates, in place."""
import copy

import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad import nn
from tensorgrad.compile.flat import FlatParams
from tensorgrad.optim import SGD


def _net(flat, dtype=np.float32):
    net = nn.Sequential(nn.Linear(6, 5, seed=0, dtype=dtype), nn.BatchNorm1d(5, dtype=dtype),
                        nn.ReLU(), nn.Linear(5, 3, seed=1, dtype=dtype))
    return net.flatten_parameters() if flat else net


def _train(net, opt, steps=4, **kw):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = tg.tensor(rng.standard_normal((8, 6)).astype(net[0].weight.dtype))
        loss = nn.functional.cross_entropy(net(x), rng.integers(0, 3, 8)) \
            + 0.01 * nn.l2_penalty(net)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_flatten_keeps_values_shapes_and_memory_order():
    plain, flat = _net(False), _net(True)
    for (name, p), (_, q) in zip(plain.named_parameters(), flat.named_parameters()):
        assert q.shape == p.shape and q.data.flags.f_contiguous == p.data.flags.f_contiguous
        np.testing.assert_array_equal(q.data, p.data, err_msg=name)
        assert q._flat is not None and q.data.base is q._flat.data


@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1}, {"maximize": True}])
def test_flat_sgd_update_equals_the_per_parameter_update_and_is_in_place(options):
    plain, flat = _net(False), _net(True)
    arrays = [p.data for p in flat.parameters()]
    _train(plain, SGD(plain.parameters(), lr=0.1, **options))
    opt = SGD(flat.parameters(), lr=0.1, **options)
    _train(flat, opt)
    assert opt._flat_params(opt.param_groups[0])[0] is not None  # the flat path ran
    for p, q, a in zip(plain.parameters(), flat.parameters(), arrays):
        assert q.data is a  # every parameter's own array was updated in place
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)


def test_a_parameter_without_gradient_or_a_replaced_array_falls_back_correctly():
    plain, flat = _net(False), _net(True)
    frozen = [net[3].bias for net in (plain, flat)]
    for net, b in zip((plain, flat), frozen):
        opt = SGD(net.parameters(), lr=0.1, weight_decay=0.1)
        b.requires_grad = False  # no gradient: untouched, not decayed (PyTorch skips it)
        _train(net, opt, steps=2)
    for p, q in zip(plain.parameters(), flat.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)
    # a deep copy's arrays no longer share one buffer: the copy trains like the original
    original, copied = _net(True), copy.deepcopy(_net(True))
    assert not next(iter(copied.parameters()))._flat.valid()
    for net in (original, copied):
        _train(net, SGD(net.parameters(), lr=0.1), steps=2)
    for p, q in zip(original.parameters(), copied.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)


def test_to_keeps_parameters_flat_in_the_new_dtype():
    net = _net(True)
    values = [p.data.copy() for p in net.parameters()]
    net.double()
    flats = {id(p._flat) for p in net.parameters()}
    for p, v in zip(net.parameters(), values):
        assert p.data.dtype == np.float64 and p.data.base is p._flat.data
        np.testing.assert_array_equal(p.data, v)
    assert len(flats) == 1
    opt = SGD(net.parameters(), lr=0.1)
    _train(net, opt, steps=1)
    assert opt._flat_params(opt.param_groups[0])[0] is not None


def test_mlp_is_flat_and_its_state_dict_round_trips():
    a, b = MLP([20, 8, 6, 4], seed=0), MLP([20, 8, 6, 4], seed=1)
    small = [p for p in a.parameters() if p.data.size <= 1 << 16]
    assert FlatParams.of(list(a.parameters()))[0] is not None and len(small) == 10
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.data.base is q._flat.data  # loaded in place: still flat
