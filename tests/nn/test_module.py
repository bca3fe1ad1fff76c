"""Module API: registration, traversal, modes, grads, state dicts, dtype conversion, repr."""
import copy

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3, seed=0)
        self.bn = nn.BatchNorm1d(3)
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("steps", np.array(0))
        self.note = "plain attribute"

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(3, 2, seed=1)

    def forward(self, x):
        return self.head(tg.relu(self.block(x)))


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3)))
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float64
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert repr(p).startswith("Parameter containing:\ntensor(")
    with pytest.raises(TypeError, match="floating point"):
        nn.Parameter(np.arange(3))


def test_attribute_assignment_registers_parameters_buffers_modules():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight",
                     "block.bn.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "block.steps", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Block", "Linear",
                                                         "BatchNorm1d", "Linear"]
    assert len(list(net.parameters())) == 7 and len(list(net.buffers())) == 4
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "head"]
    assert "note" not in dict(net.block.named_parameters())
    # non-recursive listing
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]


def test_reassignment_and_deletion_update_the_registries():
    b = Block()
    b.fc = nn.Linear(4, 3, bias=False)       # replace a module
    assert "fc.bias" not in dict(b.named_parameters())
    b.scale = None                             # a parameter may be set to None...
    assert "scale" not in dict(b.named_parameters())
    with pytest.raises(TypeError, match="parameter 'scale'"):
        b.scale = tg.tensor([1.0])             # ...but not to a plain tensor
    b.steps = np.array(5)                      # assigning to a buffer replaces its value
    assert b.steps.item() == 5 and dict(b.named_buffers())["steps"] is b.steps
    del b.bn
    assert "bn.weight" not in dict(b.named_parameters()) and not hasattr(b, "bn")
    b.bn = nn.BatchNorm1d(3)                   # reassigning keeps the registration order
    b.fc = nn.Linear(4, 3)
    assert [n for n, _ in b.named_children()] == ["fc", "bn"]


def test_assigning_a_non_module_to_a_module_slot_raises():
    b = Block()
    with pytest.raises(TypeError, match="child module 'fc'"):
        b.fc = 3


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # Sequential, Linear (once), ReLU


def test_assignment_before_init_is_an_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))
            super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_register_methods_validate_names_and_types():
    m = nn.Module()
    with pytest.raises(KeyError, match="without '.'"):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(KeyError, match="class attribute"):
        m.register_parameter("forward", nn.Parameter(np.zeros(1)))
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("w", np.zeros(1))
    with pytest.raises(TypeError, match="Module or None"):
        m.add_module("child", object())
    m.register_buffer("tmp", np.zeros(2), persistent=False)
    assert "tmp" in dict(m.named_buffers()) and "tmp" not in m.state_dict()


def test_train_eval_propagate():
    net = Net()
    assert net.training and net.block.bn.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.block.train(False)
    assert net.training and not net.block.bn.training


def test_call_runs_forward_and_zero_grad_sets_none():
    net = Net()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_freezes_and_apply_visits_every_module():
    net = Net()
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Block", "Linear", "Net"]


def test_state_dict_holds_copies_with_dotted_names():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["block.scale", "block.steps", "block.fc.weight", "block.fc.bias",
                        "block.bn.weight", "block.bn.bias", "block.bn.running_mean",
                        "block.bn.running_var", "block.bn.num_batches_tracked", "head.weight",
                        "head.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["head.weight"][...] = 7  # a copy: the model is unchanged
    assert not (net.head.weight.data == 7).any()
    kept = net.state_dict(keep_vars=True)
    assert kept["head.weight"] is net.head.weight


def _batches(seed, n=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((6, 4)).astype(np.float32) for _ in range(n)]


def test_state_dict_round_trip_reproduces_outputs_exactly():
    net = Net()
    for x in _batches(0):  # move the running statistics
        net(x)
    snapshot = net.state_dict()
    other = Net()
    other.head.weight.data[...] = 0
    weight_obj = other.head.weight
    result = other.load_state_dict(snapshot)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert other.head.weight is weight_obj  # loaded in place: optimizers keep their references
    for mode in ("train", "eval"):
        getattr(net, mode)(), getattr(other, mode)()
        x = _batches(1, 1)[0]
        np.testing.assert_array_equal(net(x).data, other(x).data)
    for k, v in other.state_dict().items():  # both saw the same batches since
        np.testing.assert_array_equal(v, net.state_dict()[k])


def test_load_state_dict_errors_name_the_key():
    net = Net()
    sd = net.state_dict()
    before = {k: v.copy() for k, v in net.state_dict().items()}

    missing = dict(sd)
    del missing["head.bias"]
    with pytest.raises(RuntimeError, match="missing key.*'head.bias'"):
        net.load_state_dict(missing)

    extra = dict(sd, **{"head.extra": np.zeros(1)})
    with pytest.raises(RuntimeError, match="unexpected key.*'head.extra'"):
        net.load_state_dict(extra)

    bad = dict(sd)
    bad["block.fc.weight"] = np.zeros((4, 3), np.float32)
    bad["head.weight"] = sd["head.weight"] + 1  # valid, but must not be applied on error
    with pytest.raises(RuntimeError, match=r"size mismatch for 'block.fc.weight'.*\(4, 3\)"):
        net.load_state_dict(bad)
    for k, v in net.state_dict().items():  # nothing changed
        np.testing.assert_array_equal(v, before[k])

    r = net.load_state_dict(missing, strict=False)
    assert r.missing_keys == ["head.bias"]
    r = net.load_state_dict(extra, strict=False)
    assert r.unexpected_keys == ["head.extra"]
    with pytest.raises(RuntimeError, match="size mismatch"):
        net.load_state_dict(bad, strict=False)  # shapes are checked even when not strict
    with pytest.raises(TypeError, match="dict"):
        net.load_state_dict([1, 2])


def test_load_state_dict_accepts_tensors_and_casts_to_the_model_dtype():
    net = Net()
    sd = {k: tg.tensor(v.astype(np.float64)) if v.dtype.kind == "f" else v
          for k, v in Net().double().state_dict().items()}
    net.load_state_dict(sd)
    assert net.head.weight.dtype == np.float32
    with pytest.raises(RuntimeError, match="dtype mismatch for 'block.bn.num_batches_tracked'"):
        net.load_state_dict(dict(sd, **{"block.bn.num_batches_tracked": np.array(1.5)}))


def test_to_double_float_convert_parameters_buffers_and_grads_in_place():
    net = Net()
    x = _batches(0, 1)[0]
    net(x).sum().backward()
    params = list(net.parameters())
    assert net.double() is net
    assert list(net.parameters()) == params or all(a is b for a, b in zip(net.parameters(),
                                                                           params))
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    bufs = dict(net.named_buffers())
    assert bufs["block.bn.running_mean"].dtype == np.float64
    assert bufs["block.bn.num_batches_tracked"].dtype == np.int64  # integers stay
    assert net(x.astype(np.float64)).dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to("float64")
    assert net.head.weight.dtype == np.float64
    net.to(tg.float32)
    with pytest.raises(TypeError, match="floating"):
        net.to(np.int32)
    with pytest.raises(TypeError, match="dtype"):
        net.to("cuda")


def test_deepcopy_double_is_an_independent_float64_copy():
    net = Net()
    twin = copy.deepcopy(net).double()
    assert net.head.weight.dtype == np.float32 and twin.head.weight.dtype == np.float64
    twin.head.weight.data[...] = 0
    assert net.head.weight.data.any()
    assert type(twin.head.weight) is nn.Parameter
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_repr_prints_the_module_tree_like_pytorch():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (block): Block(\n"
        "    (fc): Linear(in_features=4, out_features=3, bias=True)\n"
        "    (bn): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, "
        "track_running_stats=True)\n"
        "  )\n"
        "  (head): Linear(in_features=3, out_features=2, bias=True)\n"
        ")")
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"


def test_sequential_indexing_len_iter_append():
    seq = nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(seq(x).data, seq[2](seq[1](seq[0](x))).data)
    seq.append(nn.Tanh())
    assert len(seq) == 4 and "3" in dict(seq.named_children())
    with pytest.raises(IndexError, match="out of range"):
        seq[4]
    with pytest.raises(TypeError, match="integers or slices"):
        seq["0"]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    named = nn.Sequential({"fc": nn.Linear(2, 2), "act": nn.ReLU()})
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]


def test_module_list_registers_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.insert(0, nn.ReLU())
    assert isinstance(layers[0], nn.ReLU) and len(layers) == 4
    layers[0] = nn.Tanh()
    assert isinstance(layers[0], nn.Tanh)
    assert len(layers[1:]) == 3
    assert [n for n, _ in layers.named_parameters()][:2] == ["1.weight", "1.bias"]
    with pytest.raises(NotImplementedError, match="ModuleList"):
        layers(np.zeros(2))


def test_module_save_and_load_round_trip(tmp_path):
    net = Net()
    for x in _batches(0):
        net(x)
    path = tmp_path / "net.weights"   # any file name: nothing is appended
    net.save(path)
    assert path.exists()
    other = Net().load(path)
    for k, v in net.state_dict().items():
        w = other.state_dict()[k]
        assert w.dtype == v.dtype and w.tobytes() == v.tobytes()


def test_functional_and_module_agree():
    x = tg.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    for mod, fn in [(nn.ReLU(), F.relu), (nn.Tanh(), F.tanh), (nn.Sigmoid(), F.sigmoid),
                    (nn.ELU(0.5), lambda t: F.elu(t, 0.5)),
                    (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2))]:
        np.testing.assert_array_equal(mod(x).data, fn(x).data)


def test_state_dict_copies_keep_each_arrays_memory_order():
    from models.mlp import MLP
    model = MLP([20, 8, 4], batch_norm=True, seed=0)
    for name, p in model.named_parameters():
        saved = model.state_dict()[name]
        assert saved.flags.f_contiguous == p.data.flags.f_contiguous, name
        assert saved.flags.c_contiguous == p.data.flags.c_contiguous, name
        assert not np.shares_memory(saved, p.data)


def test_memo_sees_registrations_in_its_own_tree_only():
    builds = []

    def count(model):
        builds.append(1)
        return len(list(model.parameters()))

    inner = nn.Sequential(nn.Linear(3, 2, seed=0))
    model, other = nn.Sequential(inner, nn.ReLU()), nn.Sequential(nn.Linear(2, 2, seed=1))
    assert model.memo("n", count) == 2 and len(builds) == 1
    other.add_module("extra", nn.Linear(2, 2, seed=2))  # another tree: the memo stays
    assert model.memo("n", count) == 2 and len(builds) == 1
    inner.add_module("extra", nn.Linear(2, 2, seed=3))  # deep inside this tree: rebuilt
    assert model.memo("n", count) == 4 and len(builds) == 2
