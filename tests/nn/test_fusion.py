"""nn.Sequential's fused layer chains: the same outputs, gradients and side effects as running
the layers one by one, in training and eval mode, for every activation and layout."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad import nn
from tensorgrad.nn.fusion import Chain, plan


def _pair(**config):
    a, b = MLP(dtype=np.float64, seed=0, **config), MLP(dtype=np.float64, seed=0, **config)
    b.fuse_layers = False
    return a, b


def _step(net, x, y):
    loss = nn.functional.cross_entropy(net(x), y) + 0.01 * nn.l2_penalty(net)
    net.zero_grad()
    loss.backward()
    return loss.item()


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.integers(2, 6), min_size=0, max_size=3),
       batch_norm=st.booleans(), bn_position=st.sampled_from(["before", "after"]),
       activation=st.sampled_from(["relu", "leaky_relu", "elu", "tanh", "sigmoid"]),
       seed=st.integers(0, 100))
def test_fused_mlp_matches_layer_by_layer(widths, batch_norm, bn_position, activation, seed):
    dims = [7] + widths + [3]
    fused, plain = _pair(dims=dims, batch_norm=batch_norm, bn_position=bn_position,
                         activation=activation)
    rng = np.random.default_rng(seed)
    for _ in range(3):  # training: loss, every gradient, the running statistics
        x, y = tg.tensor(rng.standard_normal((5, 7))), rng.integers(0, 3, 5)
        assert _step(fused, x, y) == pytest.approx(_step(plain, x, y), rel=1e-12)
        for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
            np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-10, atol=1e-13,
                                       err_msg=name)
        for (name, p), q in zip(fused.named_buffers(), plain.buffers()):
            np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-14, err_msg=name)
    for net in (fused, plain):
        net.eval()
    x = tg.tensor(rng.standard_normal((4, 7)))
    np.testing.assert_allclose(fused(x).data, plain(x).data, rtol=1e-12, atol=1e-14)


def test_eval_chain_reads_the_current_running_statistics():
    # the eval trace must not freeze the running statistics it saw when it was recorded
    fused, plain = _pair(dims=[6, 5, 4])
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((8, 6)))
    for _ in range(2):
        batch = tg.tensor(rng.standard_normal((8, 6)) + 3.0)
        for net in (fused, plain):
            net.train()
            _step(net, batch, np.arange(8) % 4)
            net.eval()
        np.testing.assert_allclose(fused(x).data, plain(x).data, rtol=1e-12)


def _same_with_and_without_fusion(build, seed):
    """Three training-mode calls of build() fused and layer by layer: equal outputs and buffers."""
    nets = [build(), build()]
    nets[1].fuse_layers = False
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = tg.tensor(rng.standard_normal((6, 4)))
        np.testing.assert_allclose(nets[0](x).data, nets[1](x).data, rtol=1e-12)
    for p, q in zip(nets[0].buffers(), nets[1].buffers()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12)


def test_cumulative_momentum_and_untracked_statistics():
    for kwargs in ({"momentum": None}, {"track_running_stats": False}):
        _same_with_and_without_fusion(
            lambda: nn.Sequential(nn.Linear(4, 3, seed=0, dtype=np.float64),
                                  nn.BatchNorm1d(3, dtype=np.float64, **kwargs), nn.Tanh()), 2)


def test_plan_fuses_runs_of_layers_that_keep_the_contracts_forward_only():
    class MyReLU(nn.ReLU):  # its own forward is not described by parts(): it runs on its own
        def forward(self, x):
            return super().forward(x)

    class Renamed(nn.ReLU):  # the contract unchanged: it may join a chain
        pass
    a, b, c = nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)
    drop, mine = nn.Dropout(0.5), MyReLU()
    steps = plan([a, b, nn.ReLU(), drop, c, mine, nn.Linear(2, 2), nn.Tanh(), nn.Flatten()])
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["Chain", "Dropout", "Linear", "MyReLU", "Chain", "Flatten"]
    assert steps[0].modules[:2] == (a, b)
    assert [type(s).__name__ for s in plan([a, Renamed(), c])] == ["Chain"]
    assert isinstance(MLP([10, 5, 5, 3]).memo("fused_plan", lambda m: plan(m))[0], Chain)


def test_second_order_gradients_through_a_chain():
    net = nn.Sequential(nn.Linear(3, 4, seed=0, dtype=np.float64), nn.Tanh(),
                        nn.Linear(4, 2, seed=1, dtype=np.float64))
    x = tg.tensor(np.random.default_rng(3).standard_normal((2, 3)), requires_grad=True)
    assert tg.gradgradcheck(lambda x: net(x), [x])


def test_mlp_updates_all_running_statistics_in_one_batched_call(monkeypatch):
    fused, plain = _pair(dims=[6, 5, 4, 3])
    monkeypatch.setattr(nn.BatchNorm1d, "update", lambda *a: pytest.fail("per-layer path"))
    x = tg.tensor(np.random.default_rng(5).standard_normal((8, 6)))
    fused(x)
    monkeypatch.undo()
    plain(x)
    for (name, p), q in zip(fused.named_buffers(), plain.buffers()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, err_msg=name)
        assert p.data.base is p._flat.data  # still views of the flat arrays


def test_layers_with_different_momenta_fall_back_to_one_update_each():
    _same_with_and_without_fusion(
        lambda: nn.Sequential(nn.Linear(4, 3, seed=0, dtype=np.float64),
                              nn.BatchNorm1d(3, momentum=0.1, dtype=np.float64), nn.ReLU(),
                              nn.Linear(3, 3, seed=1, dtype=np.float64),
                              nn.BatchNorm1d(3, momentum=0.5, dtype=np.float64)
                              ).flatten_parameters(), 6)


def test_a_forward_replaced_on_an_instance_is_honoured():
    net = nn.Sequential(nn.Linear(3, 2, seed=0), nn.ReLU())
    x = tg.tensor(np.ones((4, 3), np.float32))
    net(x)  # the fused plan exists already
    net[1].forward = lambda h: h * 0.0
    assert not net(x).data.any()


def test_a_chain_asks_its_modules_once_while_no_attribute_changes(monkeypatch):
    net, _ = _pair(dims=[6, 5, 4, 3])
    opt = tg.optim.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(2)
    x, y = tg.tensor(rng.standard_normal((8, 6))), rng.integers(0, 3, 8)
    _step(net, x, y)
    opt.step()
    versions = [m._version for m in net.modules()]
    asked = []
    monkeypatch.setattr(nn.Linear, "parts",
                        lambda self, f=nn.Linear.parts: asked.append(self) or f(self))
    for _ in range(3):  # training steps set no module attribute: nothing to ask again
        _step(net, x, y)
        opt.step()
    assert [m._version for m in net.modules()] == versions and not asked


def test_an_attribute_set_after_the_first_call_takes_effect():
    fused, plain = _pair(dims=[6, 5, 3])
    rng = np.random.default_rng(4)
    x = tg.tensor(rng.standard_normal((8, 6)))
    fused(x), plain(x)
    for net in (fused, plain):
        net[1].momentum = 0.5  # the batch norm layer: side effects with the new momentum
        net[1].eps = 0.25  # and output with the new eps
    np.testing.assert_allclose(fused(x).data, plain(x).data, rtol=1e-12)
    for (name, p), q in zip(fused.named_buffers(), plain.buffers()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, err_msg=name)
