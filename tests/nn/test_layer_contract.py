"""The Layer contract (nn/layers.py): a layer is its `parts()` (a pure function, its tensors and
static parameters) and `update(*aux)`; its forward and the fused chains of nn.Sequential are
built from those, so both compute the same outputs and running statistics, bit for bit, in
fast and in reference mode. A chain sees changes to its own members only."""
import ast
import copy
import pathlib
import pickle

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn, ops
from tensorgrad.nn import functional as F
from tensorgrad.nn.fusion import Chain
from tensorgrad.nn.layers import Layer

MODES = [pytest.param(True, id="fast"), pytest.param(False, id="reference")]


def _layers(dtype):
    """One of each Layer, in every BatchNorm1d configuration, for (6, 4) input."""
    bns = [nn.BatchNorm1d(4, dtype=dtype), nn.BatchNorm1d(4, momentum=None, dtype=dtype),
           nn.BatchNorm1d(4, affine=False, dtype=dtype),
           nn.BatchNorm1d(4, track_running_stats=False, dtype=dtype)]
    for bn in bns[:2]:
        bn.weight.data[...] = np.linspace(0.5, 2.0, 4)
        bn.bias.data[...] = np.linspace(-1.0, 1.0, 4)
    return [nn.Linear(4, 4, seed=0, dtype=dtype), nn.Linear(4, 4, bias=False, seed=1,
                                                             dtype=dtype),
            *bns, nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.5), nn.Tanh(), nn.Sigmoid(),
            nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Softplus(2.0, 3.0), nn.Softmax(1),
            nn.LogSoftmax(dim=0), nn.LayerNorm(4, dtype=dtype),
            nn.LayerNorm(4, elementwise_affine=False, dtype=dtype)]


def _state(module):
    return {k: v.copy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("fast", MODES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_layers_forward_is_its_function_then_its_update(fast, training, dtype):
    rng = np.random.default_rng(0)
    with tg.fast_mode(fast):
        for layer in _layers(dtype):
            layer.train(training)
            twin = copy.deepcopy(layer)
            for _ in range(2):  # twice: the update's effect shows in the second output
                x = tg.tensor((rng.standard_normal((6, 4)) * 2 + 1).astype(dtype))
                y = layer(x)
                function, tensors, params, aux = twin.parts()
                out = function(x, *tensors, **dict(params))
                if aux:
                    assert isinstance(out, tuple) and len(out) == 1 + aux
                    twin.update(*[a.data for a in out[1:]])
                    out = out[0]
                np.testing.assert_array_equal(y.data, out.data, err_msg=repr(layer))
                for k, v in _state(layer).items():
                    np.testing.assert_array_equal(v, _state(twin)[k], err_msg=f"{layer!r} {k}")


def _net(dtype, flat, momentum=0.1):
    net = nn.Sequential(nn.Linear(5, 6, seed=0, dtype=dtype),
                        nn.BatchNorm1d(6, momentum=momentum, dtype=dtype), nn.ReLU(),
                        nn.Linear(6, 4, seed=1, dtype=dtype), nn.Tanh(),
                        nn.BatchNorm1d(4, momentum=momentum, dtype=dtype), nn.ELU(),
                        nn.Linear(4, 3, seed=2, dtype=dtype))
    return net.flatten_parameters() if flat else net


@pytest.mark.parametrize("fast", MODES)
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "separate"])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_chain_equals_its_layers_one_by_one_running_statistics_bit_for_bit(
        fast, flat, momentum, dtype):
    chained, single = _net(dtype, flat, momentum), _net(dtype, flat, momentum)
    chain = Chain(list(chained))
    rng = np.random.default_rng(1)
    tg.fast_paths(reset=True)
    with tg.fast_mode(fast):
        for training in (True, True, True, False):
            for net in (chained, single):
                net.train(training)
            x = tg.tensor(rng.standard_normal((7, 5)).astype(dtype))
            a, b = chain(x), x
            for m in single:
                b = m(b)
            np.testing.assert_array_equal(a.data, b.data)
            for k, v in _state(chained).items():
                np.testing.assert_array_equal(v, _state(single)[k], err_msg=k)
            if training:
                a.sum().backward()
                b.sum().backward()
                for (k, p), q in zip(chained.named_parameters(), single.parameters()):
                    np.testing.assert_allclose(p.grad.data, q.grad.data, err_msg=k,
                                               rtol=1e-5 if dtype == np.float32 else 1e-12)
                chained.zero_grad(), single.zero_grad()
    hits = tg.fast_paths()
    assert (hits["fused_chain"].hits > 0) == fast
    assert (hits["batched_running_stats"].hits > 0) == (fast and flat and momentum is not None)


@pytest.mark.parametrize("fast", MODES)
def test_a_chain_of_batch_norms_on_n_c_l_input_equals_its_layers(fast):
    def layers():
        return [nn.BatchNorm1d(4, dtype=np.float64), nn.ReLU(),
                nn.BatchNorm1d(4, momentum=None, dtype=np.float64)]
    chained, single = layers(), layers()
    chain = Chain(chained)
    rng = np.random.default_rng(7)
    with tg.fast_mode(fast):
        for _ in range(3):
            x = tg.tensor(rng.standard_normal((5, 4, 3)))
            y = x
            for m in single:
                y = m(y)
            np.testing.assert_array_equal(chain(x).data, y.data)
            for a, b in zip(chained, single):
                for k, v in _state(a).items():
                    np.testing.assert_array_equal(v, _state(b)[k], err_msg=k)


@pytest.mark.parametrize("fast", MODES)
def test_the_batched_update_is_the_per_layer_update_on_stacked_arrays(fast):
    """A flattened MLP's chain updates all running statistics at once; with that path off it
    calls each layer's update: the same running statistics, bit for bit."""
    nets = [_net(np.float32, flat=True) for _ in range(2)]
    rng = np.random.default_rng(2)
    with tg.fast_mode(fast):
        for _ in range(3):
            x = tg.tensor(rng.standard_normal((9, 5)).astype(np.float32))
            tg.fast_paths(reset=True)
            nets[0](x)
            assert (tg.fast_paths()["batched_running_stats"].hits == 1) == fast
            with tg.fast_mode(False, paths=["batched_running_stats"]):
                nets[1](x)
            assert tg.fast_paths()["batched_running_stats"].hits == (1 if fast else 0)
            for k, v in _state(nets[0]).items():
                np.testing.assert_array_equal(v, _state(nets[1])[k], err_msg=k)


def test_functional_batch_norm_updates_running_statistics_as_the_layer_does():
    rng = np.random.default_rng(3)
    bn = nn.BatchNorm1d(4, momentum=0.3)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    for _ in range(3):
        x = tg.tensor(rng.standard_normal((6, 4)).astype(np.float32))
        y = bn(x)
        z = F.batch_norm(x, rm, rv, bn.weight, bn.bias, training=True, momentum=0.3)
        np.testing.assert_array_equal(y.data, z.data)
        np.testing.assert_array_equal(bn.running_mean.data, rm)
        np.testing.assert_array_equal(bn.running_var.data, rv)


def _count_prepares(monkeypatch):
    asked = []
    prepare = Chain._prepare
    monkeypatch.setattr(Chain, "_prepare", lambda self: asked.append(self) or prepare(self))
    return asked


def _two_chains():
    net = nn.Sequential(nn.Linear(3, 4, seed=0), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.0),
                        nn.Linear(4, 2, seed=1), nn.Tanh())
    net(tg.tensor(np.ones((5, 3), np.float32)))
    first, _, second = net._fused_plan[1]
    return net, first, second


@pytest.mark.parametrize("change", ["eps", "weight", "forward", "momentum", "train"])
def test_a_members_change_is_seen_by_its_chain_only(monkeypatch, change):
    net, first, second = _two_chains()
    asked = _count_prepares(monkeypatch)
    x = tg.tensor(np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32))
    net(x)
    assert asked == []
    bn = net[1]
    if change == "eps":
        bn.eps = 0.5
    elif change == "weight":
        bn.weight = nn.Parameter(np.full(4, 2.0, np.float32))
    elif change == "forward":
        bn.forward = lambda h: h * 0.0
    elif change == "momentum":
        bn.momentum = 0.5
    else:
        bn.eval()
    out = net(x)
    assert asked == [first]
    net.fuse_layers = False
    np.testing.assert_array_equal(out.data, net(x).data)


def test_changes_to_unrelated_modules_leave_chains_prepared(monkeypatch):
    net, first, second = _two_chains()
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    asked = _count_prepares(monkeypatch)
    x = tg.tensor(np.ones((5, 3), np.float32))
    other[1].eps = 0.5
    other[0].weight = nn.Parameter(np.ones((4, 3), np.float32))
    other.eval()
    nn.Linear(2, 2).flatten_parameters()
    net(x)
    assert asked == []
    net[4].bias = nn.Parameter(np.ones(2, np.float32))
    net(x)
    assert asked == [second]


def test_a_new_layer_is_a_function_and_its_static_parameters():
    def scaled_tanh(x, *, scale):
        return ops.tanh(x) * scale

    class ScaledTanh(Layer):
        function = staticmethod(scaled_tanh)
        static = ("scale",)

        def __init__(self, scale=2.0):
            super().__init__()
            self.scale = float(scale)

    net = nn.Sequential(nn.Linear(3, 4, seed=0, dtype=np.float64), ScaledTanh(3.0),
                        nn.Linear(4, 2, seed=1, dtype=np.float64))
    assert repr(net[1]) == "ScaledTanh(scale=3.0)"
    x = tg.tensor(np.random.default_rng(5).standard_normal((6, 3)))
    out = net(x)
    assert [type(s).__name__ for s in net._fused_plan[1]] == ["Chain"]
    net.fuse_layers = False
    np.testing.assert_array_equal(out.data, net(x).data)


def test_a_copy_of_a_fused_model_updates_its_own_running_statistics():
    net = _net(np.float32, flat=True)
    x = tg.tensor(np.random.default_rng(6).standard_normal((8, 5)).astype(np.float32))
    net(x)
    before = _state(net)
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        twin(x)
        for k, v in _state(net).items():
            np.testing.assert_array_equal(v, before[k], err_msg=k)
        assert int(twin[1].num_batches_tracked.data) == 2
        np.testing.assert_array_equal(twin(x).data, net(x).data)
        before = _state(net)


def _nn_imports():
    """{module of tensorgrad/nn: the modules of tensorgrad/nn it imports, anywhere in it}."""
    root = pathlib.Path(nn.__file__).parent
    graph = {}
    for path in root.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in node.names)
        graph[path.stem] = deps & {p.stem for p in root.glob("*.py")}
    return graph


def test_no_import_cycle_in_nn():
    graph = _nn_imports()
    assert "module" not in graph["fusion"] and "fusion" in graph["module"]

    def reach(start, node, seen):
        for dep in graph[node]:
            assert dep != start, f"import cycle through {start} and {node}"
            if dep not in seen:
                seen.add(dep)
                reach(start, dep, seen)
    for name in graph:
        if name != "__init__":
            reach(name, name, set())


def test_an_eager_forward_sees_attribute_changes():
    x = np.random.default_rng(8).standard_normal((6, 3))
    bn = nn.BatchNorm1d(3).double().eval()
    bn(x)
    bn.eps = 1.0
    np.testing.assert_allclose(bn(x).data, x / np.sqrt(2.0), rtol=1e-12)
    bn.weight = nn.Parameter(np.full(3, 2.0))
    np.testing.assert_allclose(bn(x).data, 2.0 * x / np.sqrt(2.0), rtol=1e-12)
    leaky = nn.LeakyReLU(0.1)
    leaky(x)
    leaky.negative_slope = 0.5
    np.testing.assert_array_equal(leaky(x).data, np.where(x > 0, x, 0.5 * x))
