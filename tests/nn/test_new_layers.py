"""GELU, SiLU, Softplus, Softmax, LogSoftmax, LayerNorm (values against torch are in
test_golden_torch.py), and the containers ModuleDict and ParameterList."""
import copy
import warnings

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F
from tensorgrad.nn.fusion import Chain


def _x(shape=(6, 4), seed=0, dtype=np.float64):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("fn", [
    lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh"), F.silu,
    lambda x: F.softplus(x, beta=2.0), lambda x: F.layer_norm(x, (4,)),
    lambda x: F.layer_norm(x, (3, 4), tg.tensor(np.linspace(0.5, 2, 12).reshape(3, 4)),
                           tg.tensor(np.ones((3, 4)))),
], ids=["gelu", "gelu_tanh", "silu", "softplus", "layer_norm", "layer_norm_affine"])
def test_functional_forms_gradcheck_and_gradgradcheck(fn):
    x = tg.tensor(np.random.default_rng(1).standard_normal((2, 3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda x: fn(x) * np.linspace(-1, 1, 24).reshape(2, 3, 4), [x])
    assert tg.gradgradcheck(lambda x: fn(x) * np.linspace(-1, 1, 24).reshape(2, 3, 4), [x])


def test_layer_norm_weight_and_bias_get_gradients_and_errors_are_clear():
    w = tg.tensor(np.linspace(0.5, 2, 4), requires_grad=True)
    b = tg.tensor(np.zeros(4), requires_grad=True)
    x = _x()
    assert tg.gradcheck(lambda w, b: F.layer_norm(x, 4, w, b) ** 2, [w, b])
    with pytest.raises(ValueError, match=r"layer_norm: input of shape \(6, 4\) does not end in "
                                         r"normalized_shape \(3,\)"):
        F.layer_norm(x, 3)
    with pytest.raises(ValueError, match=r"layer_norm: weight must have shape \(4,\)"):
        F.layer_norm(x, 4, tg.tensor(np.ones(3)))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(0)


def test_layer_norm_module_state_dict_and_modes():
    ln = nn.LayerNorm((3, 4))
    assert list(ln.state_dict()) == ["weight", "bias"]
    assert ln.weight.shape == (3, 4) and ln.weight.dtype == np.float32
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).state_dict()) == []
    x = _x((2, 3, 4), dtype=np.float32)
    y_train = ln(x).data
    np.testing.assert_array_equal(ln.eval()(x).data, y_train)  # no running statistics
    np.testing.assert_allclose(y_train.mean(axis=(1, 2)), 0, atol=1e-6)
    assert repr(ln) == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True)"


def test_activation_modules_are_layers_and_validate():
    assert nn.GELU().approximate == "none" and nn.Softplus().beta == 1.0
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("exact")
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(_x(), approximate="erf")
    x = _x()
    np.testing.assert_array_equal(nn.SiLU(inplace=True)(x).data, F.silu(x).data)
    for m in (nn.GELU(), nn.SiLU(), nn.Softplus(), nn.Softmax(1), nn.LogSoftmax(1),
              nn.LayerNorm(4)):
        assert isinstance(m, nn.Layer) and m.fusable


def test_softmax_modules_take_dim_and_torchs_implicit_choice_with_a_warning():
    x = _x((2, 3, 4))
    np.testing.assert_allclose(nn.Softmax(dim=-1)(x).data, F.softmax(x, -1).data)
    np.testing.assert_allclose(nn.LogSoftmax(1)(x).data, F.log_softmax(x, 1).data)
    with pytest.warns(UserWarning, match="implicit dimension"):
        y = nn.Softmax()(x)  # 3-d: torch's legacy choice is dim 0
    np.testing.assert_allclose(y.data, F.softmax(x, 0).data)
    with pytest.warns(UserWarning, match="implicit dimension"):
        y = nn.LogSoftmax()(_x((5, 4)))  # 2-d: dim 1
    np.testing.assert_allclose(y.data, F.log_softmax(_x((5, 4)), 1).data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Softmax(1)(x)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_a_chain_of_the_new_layers_equals_them_one_by_one(fast):
    def net():
        ln = nn.LayerNorm(6, dtype=np.float64)
        ln.weight.data[...] = np.linspace(0.5, 1.5, 6)
        ln.bias.data[...] = np.linspace(-1, 1, 6)
        return nn.Sequential(nn.Linear(4, 6, seed=0, dtype=np.float64), ln, nn.GELU(),
                             nn.Linear(6, 6, seed=1, dtype=np.float64), nn.SiLU(),
                             nn.Softplus(2.0), nn.GELU("tanh"), nn.LogSoftmax(1))
    chained, single = net(), net()
    chain = Chain(list(chained))
    x = _x((5, 4))
    tg.fast_paths(reset=True)
    with tg.fast_mode(fast):
        a = chain(x)
        b = x
        for m in single:
            b = m(b)
        np.testing.assert_array_equal(a.data, b.data)
        a.sum().backward()
        b.sum().backward()
        for (k, p), q in zip(chained.named_parameters(), single.parameters()):
            np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-12, err_msg=k)
    assert (tg.fast_paths()["fused_program"].hits > 0) == fast


# ---- containers ---------------------------------------------------------------------------------
def test_module_dict():
    d = nn.ModuleDict({"enc": nn.Linear(3, 4, seed=0), "act": nn.GELU()})
    d["dec"] = nn.Linear(4, 2, seed=1)
    assert list(d) == ["enc", "act", "dec"] and len(d) == 3 and "act" in d
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert [k for k, _ in d.named_parameters()] == list(d.state_dict())
    assert d["enc"] is d.enc and list(d.keys()) == ["enc", "act", "dec"]
    assert [type(m).__name__ for m in d.values()] == ["Linear", "GELU", "Linear"]
    act = d.pop("act")
    assert isinstance(act, nn.GELU) and list(d) == ["enc", "dec"]
    del d["dec"]
    assert list(d.state_dict()) == ["enc.weight", "enc.bias"]
    d.update([("a", nn.ReLU()), ("b", nn.Tanh())])
    assert list(d) == ["enc", "a", "b"]
    model = nn.Sequential(d["enc"], d["a"])
    assert model(_x((2, 3), dtype=np.float32)).shape == (2, 4)
    copy_ = nn.ModuleDict({"enc": nn.Linear(3, 4, seed=5), "a": nn.ReLU(), "b": nn.Tanh()})
    copy_.load_state_dict(d.state_dict())
    np.testing.assert_array_equal(copy_["enc"].weight.data, d["enc"].weight.data)
    d.clear()
    assert len(d) == 0 and list(d.parameters()) == []
    with pytest.raises(TypeError, match="expected a Module"):
        d["x"] = np.ones(3)
    with pytest.raises(KeyError):
        del d["missing"]
    with pytest.raises(KeyError, match="class attribute"):
        d["keys"] = nn.ReLU()
    with pytest.raises(ValueError, match="pair"):
        d.update(["ab"])
    with pytest.raises(NotImplementedError):
        d(1)


def test_parameter_list():
    a = nn.Parameter(np.ones(3))
    pl = nn.ParameterList([a, np.zeros((2, 2))])
    pl.append(tg.tensor(np.arange(2.0)))
    assert len(pl) == 3 and pl[0] is a and pl[-1].shape == (2,)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in pl)
    assert list(pl.state_dict()) == ["0", "1", "2"]
    b = nn.Parameter(np.full((2, 2), 5.0))
    pl[1] = b
    assert list(pl.state_dict()) == ["0", "1", "2"] and pl[1] is b
    assert list(pl.parameters()) == [a, b, pl[2]]
    assert [p for p in pl[1:]] == [b, pl[2]]
    model = nn.Module()
    model.params = pl
    assert list(model.state_dict()) == ["params.0", "params.1", "params.2"]
    other = copy.deepcopy(model)
    other.params[0].data[...] = 7
    model.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(a.data, 7)
    opt = tg.optim.SGD(model.parameters(), lr=0.5)
    loss = sum((p * p).sum() for p in pl)
    loss.backward()
    opt.step()
    np.testing.assert_allclose(a.data, 0.0)  # 7 - 0.5 * 14
    with pytest.raises(TypeError, match="ParameterList.append: expected a Parameter"):
        pl.append([1.0])
    with pytest.raises(IndexError):
        pl[3] = np.ones(1)
    assert "(0): Parameter containing: [float64 of shape (3,)]" in repr(pl)
