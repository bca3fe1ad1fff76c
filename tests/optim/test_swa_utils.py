"""Weight averaging (tensorgrad.optim.swa_utils): the averages, the copied buffers, update_bn's
statistics, its refusals, and agreement with torch.optim.swa_utils when torch is installed."""
import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad import nn
from tensorgrad.data import DataLoader
from tensorgrad.nn import functional as F
from tensorgrad.optim import SGD
from tensorgrad.optim.swa_utils import AveragedModel, get_ema_avg_fn, get_swa_avg_fn, update_bn


def net(seed=0, dropout=0.0):
    return MLP([6, 5, 3], seed=seed, dropout=dropout).double()


def moved(model, rng):
    """model's parameters shifted at random and its running statistics moved by a forward."""
    for p in model.parameters():
        p.data += rng.standard_normal(p.data.shape)
    model.train()
    model(tg.tensor(rng.standard_normal((8, 6)) * 2 + 1))
    return model


def arrays(model):
    return [p.data.copy() for p in model.parameters()]


def test_the_default_average_is_the_mean_of_every_update():
    rng = np.random.default_rng(0)
    model = net()
    swa = AveragedModel(model)
    assert int(swa.n_averaged.data) == 0
    seen = []
    for _ in range(4):
        moved(model, rng)
        swa.update_parameters(model)
        seen.append(arrays(model))
    assert int(swa.n_averaged.data) == 4
    for p, *values in zip(swa.module.parameters(), *seen):
        np.testing.assert_allclose(p.data, np.mean(values, axis=0), rtol=1e-13, atol=1e-14)
    # use_buffers=False: the buffers follow the model's latest ones
    for ours, theirs in zip(swa.module.buffers(), model.buffers()):
        np.testing.assert_array_equal(ours.data, theirs.data)


def test_the_first_update_copies_and_the_copy_is_independent():
    model = net()
    swa = AveragedModel(model)
    start = arrays(model)
    moved(model, np.random.default_rng(1))
    for p, s in zip(swa.module.parameters(), start):  # a copy: the model's changes stay out
        np.testing.assert_array_equal(p.data, s)
    swa.update_parameters(model)
    for p, q in zip(swa.module.parameters(), model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert p.data is not q.data


def test_use_buffers_averages_the_running_statistics_and_copies_the_counter():
    rng = np.random.default_rng(2)
    model = net()
    swa = AveragedModel(model, use_buffers=True)
    means, counts = [], []
    for _ in range(3):
        moved(model, rng)
        swa.update_parameters(model)
        means.append(model[1].running_mean.data.copy())
        counts.append(int(model[1].num_batches_tracked.data))
    np.testing.assert_allclose(swa.module[1].running_mean.data, np.mean(means, axis=0),
                               rtol=1e-13)
    assert int(swa.module[1].num_batches_tracked.data) == counts[-1] == 3


def test_ema_and_explicit_swa_functions():
    rng = np.random.default_rng(3)
    model = net()
    ema = AveragedModel(model, avg_fn=get_ema_avg_fn(0.9))
    swa = AveragedModel(model, avg_fn=get_swa_avg_fn())
    plain = AveragedModel(model)
    expected = None
    for _ in range(3):
        moved(model, rng)
        for averaged in (ema, swa, plain):
            averaged.update_parameters(model)
        now = arrays(model)
        expected = now if expected is None else [0.9 * e + 0.1 * v
                                                 for e, v in zip(expected, now)]
    for p, e in zip(ema.module.parameters(), expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-13)
    for p, q in zip(swa.module.parameters(), plain.module.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-13)
    with pytest.raises(ValueError, match="decay must be in"):
        get_ema_avg_fn(1.5)


def test_the_averaged_model_is_a_module_that_saves_its_count():
    model = net()
    swa = AveragedModel(model)
    swa.update_parameters(model)
    swa.update_parameters(moved(model, np.random.default_rng(4)))
    state = swa.state_dict()
    assert int(state["n_averaged"]) == 2 and "module.0.weight" in state
    other = AveragedModel(net(seed=5))
    other.load_state_dict(state)
    x = tg.tensor(np.random.default_rng(6).standard_normal((4, 6)))
    swa.eval(), other.eval()
    np.testing.assert_array_equal(other(x).data, swa(x).data)
    assert int(other.n_averaged.data) == 2


def test_refusals_name_the_argument_and_shapes():
    swa = AveragedModel(net())
    with pytest.raises(TypeError, match="AveragedModel: model must be a tensorgrad nn.Module"):
        AveragedModel(object())
    with pytest.raises(TypeError, match="avg_fn must be callable"):
        AveragedModel(net(), avg_fn=3)
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(5, 7\) in the model, "
                                         r"\(5, 6\) in the averaged model"):
        swa.update_parameters(MLP([7, 5, 3]).double())
    with pytest.raises(ValueError, match="the model has 2 parameters, the averaged model 6"):
        swa.update_parameters(nn.Linear(6, 3))
    bad = AveragedModel(net(), avg_fn=lambda avg, cur, n: avg.data.sum())
    bad.update_parameters(net())  # the first update copies: avg_fn is not called yet
    with pytest.raises(ValueError, match=r"avg_fn returned shape \(\) for a parameter of "
                                         r"shape \(5, 6\)"):
        bad.update_parameters(net())
    assert int(swa.n_averaged.data) == 0


def batch_stats(model, batches):
    """Per-batch mean and unbiased variance of the first Linear's output."""
    lin = model[0]
    outs = [b @ lin.weight.data.T + lin.bias.data for b in batches]
    return [o.mean(axis=0) for o in outs], [o.var(axis=0, ddof=1) for o in outs]


@pytest.mark.usefixtures("each_mode")
def test_update_bn_sets_the_plain_average_of_the_batches_statistics():
    rng = np.random.default_rng(7)
    model = moved(net(), rng)
    model.eval()
    batches = [rng.standard_normal((10, 6)) * 3 + 2 for _ in range(4)]
    update_bn(batches, model)
    means, variances = batch_stats(model, batches)
    bn = model[1]
    np.testing.assert_allclose(bn.running_mean.data, np.mean(means, axis=0), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, np.mean(variances, axis=0), rtol=1e-12,
                               atol=1e-12)
    assert int(bn.num_batches_tracked.data) == 4
    assert bn.momentum == 0.1 and not model.training  # momentum and mode restored


def test_update_bn_takes_loader_tuples_and_tensors_and_leaves_the_source_alone():
    rng = np.random.default_rng(8)
    model = net()
    opt = SGD(model.parameters(), lr=0.1)
    x, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    for i in range(0, 40, 10):  # trained: the fused chain has run on the original
        opt.zero_grad()
        F.cross_entropy(model(tg.tensor(x[i:i + 10])), y[i:i + 10]).backward()
        opt.step()
    swa = AveragedModel(model)
    swa.update_parameters(model)
    before = [b.data.copy() for b in model.buffers()]
    update_bn(DataLoader((x, y), batch_size=10, shuffle=False), swa)
    from_tensors = AveragedModel(model)
    from_tensors.update_parameters(model)
    update_bn([tg.tensor(x[i:i + 10]) for i in range(0, 40, 10)], from_tensors)
    means, _ = batch_stats(swa.module, [x[i:i + 10] for i in range(0, 40, 10)])
    for averaged in (swa, from_tensors):
        np.testing.assert_allclose(averaged.module[1].running_mean.data,
                                   np.mean(means, axis=0), rtol=1e-12, atol=1e-12)
    for b, old in zip(model.buffers(), before):
        np.testing.assert_array_equal(b.data, old)


def test_update_bn_runs_dropout_as_in_training():
    """PyTorch's update_bn puts the whole model in training mode: dropout stays active."""
    rng = np.random.default_rng(9)
    batches = [rng.standard_normal((50, 6)) for _ in range(3)]
    with_dropout = MLP([6, 5, 4, 3], seed=0, dropout=0.5).double()
    without = MLP([6, 5, 4, 3], seed=0).double()
    update_bn(batches, with_dropout)
    update_bn(batches, without)
    np.testing.assert_allclose(with_dropout[1].running_mean.data, without[1].running_mean.data)
    second = [m for m in with_dropout.modules() if isinstance(m, nn.BatchNorm1d)][1]
    second_plain = [m for m in without.modules() if isinstance(m, nn.BatchNorm1d)][1]
    assert not np.allclose(second.running_var.data, second_plain.running_var.data)


def test_update_bn_refuses_an_empty_loader_and_changes_nothing():
    model = moved(net(), np.random.default_rng(10))
    before = [b.data.copy() for b in model.buffers()]
    with pytest.raises(ValueError, match="update_bn: the loader yielded no batch"):
        update_bn([], model)
    for b, old in zip(model.buffers(), before):
        np.testing.assert_array_equal(b.data, old)
    with pytest.raises(TypeError, match="update_bn: model must be a tensorgrad nn.Module"):
        update_bn([np.zeros((2, 6))], "model")


def test_update_bn_without_batch_norm_does_nothing():
    model = MLP([6, 5, 3], batch_norm=False, seed=0).double()
    start = arrays(model)
    update_bn([np.ones((4, 6))], model)
    for p, s in zip(model.parameters(), start):
        np.testing.assert_array_equal(p.data, s)


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("ema", [False, True])
def test_matches_torch_swa_utils(use_buffers, ema):
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils as torch_swa

    rng = np.random.default_rng(11)
    model = net()
    ref = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                              torch.nn.Linear(5, 3)).double()

    def to_torch(m):
        ref.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})

    kwargs = {"avg_fn": get_ema_avg_fn(0.8)} if ema else {}
    ours = AveragedModel(model, use_buffers=use_buffers, **kwargs)
    to_torch(model)
    theirs = torch_swa.AveragedModel(ref, use_buffers=use_buffers,
                                     **({"avg_fn": torch_swa.get_ema_avg_fn(0.8)} if ema else {}))
    for _ in range(3):
        moved(model, rng)
        to_torch(model)
        ours.update_parameters(model)
        theirs.update_parameters(ref)
    batches = [rng.standard_normal((10, 6)) for _ in range(3)]
    update_bn(batches, ours)
    torch_swa.update_bn([torch.from_numpy(b) for b in batches], theirs)
    expected = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, expected[key].numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=key)
