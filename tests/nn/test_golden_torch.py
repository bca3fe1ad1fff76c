"""Compare tensorgrad.nn with PyTorch reference values stored in tests/golden/*.npz.

The files are written by tests/golden/make_golden.py (which needs torch; these tests do not).
All golden arrays are float64, so we compare in float64 to near machine precision.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F

pytestmark = pytest.mark.usefixtures("each_mode")  # in fast and reference mode

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
RTOL, ATOL = 1e-10, 1e-12


def _load(name):
    with np.load(GOLDEN / name) as f:
        return {k: f[k] for k in f.files}


def test_batchnorm1d_training_eval_and_running_statistics():
    g = _load("batchnorm1d.npz")
    bn = nn.BatchNorm1d(4, eps=float(g["eps"]), momentum=float(g["momentum"])).double()
    bn.weight.data[...] = g["weight"]
    bn.bias.data[...] = g["bias"]
    x0 = tg.tensor(g["x"][0], requires_grad=True)
    y = bn(x0)
    np.testing.assert_allclose(y.data, g["y"], rtol=RTOL, atol=ATOL)
    (y * g["dy"]).sum().backward()
    np.testing.assert_allclose(x0.grad.data, g["dx"], rtol=1e-9, atol=ATOL)
    np.testing.assert_allclose(bn.weight.grad.data, g["dweight"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(bn.bias.grad.data, g["dbias"], rtol=RTOL, atol=ATOL)
    for k in range(3):
        if k:
            bn(g["x"][k])
        np.testing.assert_allclose(bn.running_mean.data, g["running_mean"][k], rtol=RTOL,
                                   atol=ATOL)
        np.testing.assert_allclose(bn.running_var.data, g["running_var"][k], rtol=RTOL,
                                   atol=ATOL)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    np.testing.assert_allclose(bn(g["x_eval"]).data, g["y_eval"], rtol=RTOL, atol=ATOL)


def _ce_cases():
    g = _load("cross_entropy.npz")
    for key in g:
        if key.endswith("__loss"):
            yield key[:-len("__loss")]


@pytest.mark.parametrize("case", list(_ce_cases()))
def test_cross_entropy(case):
    g = _load("cross_entropy.npz")
    src, target, smooth, reduction = case.split("_")
    logits = g["logits" if src == "logits" else "large_logits"]
    t = g["labels"] if target == "labels" else g["soft_targets"]
    eps = float(g["label_smoothing"]) if smooth == "smooth" else 0.0
    x = tg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, t, reduction=reduction, label_smoothing=eps)
    scale = max(1.0, float(np.abs(g[case + "__loss"]).max()))
    np.testing.assert_allclose(loss.data, g[case + "__loss"], rtol=RTOL, atol=ATOL * scale)
    if reduction == "none":
        (loss * g["upstream_none"]).sum().backward()
    else:
        loss.backward()
    np.testing.assert_allclose(x.grad.data, g[case + "__grad"], rtol=1e-9, atol=ATOL)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_and_log_softmax(fn, axis):
    g = _load("softmax.npz")
    x = tg.tensor(g["logits"], requires_grad=True)
    out = getattr(F, fn)(x, axis)
    key = f"{fn}_axis{axis}"
    np.testing.assert_allclose(out.data, g[key], rtol=RTOL, atol=ATOL)
    (out * g["upstream"]).sum().backward()
    np.testing.assert_allclose(x.grad.data, g[key + "__grad"], rtol=1e-9, atol=ATOL)


# ---- losses, activations, layer norm (losses.npz, activations.npz, layer_norm.npz) ------------
LOSS_MODULES = {"cross_entropy": nn.CrossEntropyLoss, "nll_loss": nn.NLLLoss,
                "mse_loss": nn.MSELoss, "l1_loss": nn.L1Loss, "binary_cross_entropy": nn.BCELoss,
                "binary_cross_entropy_with_logits": nn.BCEWithLogitsLoss}


def _loss_cases():
    g = _load("losses.npz")
    cases = json.loads(str(g["cases"]))
    return [(name, reduction) for name in cases for reduction in ("mean", "sum", "none")]


@pytest.mark.parametrize("form", ["functional", "module"])
@pytest.mark.parametrize("case,reduction", _loss_cases())
def test_loss(case, reduction, form):
    g = _load("losses.npz")
    spec = json.loads(str(g["cases"]))[case]
    x = tg.tensor(g[spec["input"]], requires_grad=True)
    t_data = g[spec["target"]]
    t = tg.tensor(t_data, requires_grad=True) if spec.get("target_grad") else t_data
    kwargs = dict(spec.get("kwargs", {}))
    weight = (g[spec["weight"]],) if spec.get("weight") else ()  # positional, as torch's
    if spec.get("pos_weight"):
        kwargs["pos_weight"] = g[spec["pos_weight"]]
    if form == "functional":
        loss = getattr(F, spec["fn"])(x, t, *weight, reduction=reduction, **kwargs)
    else:
        module = LOSS_MODULES[spec["fn"]](*weight, reduction=reduction, **kwargs)
        loss = module(x, t)
    key = f"{case}_{reduction}"
    expected = g[key + "__loss"]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(loss.data, expected, rtol=RTOL, atol=ATOL * scale)
    if reduction == "none":
        loss = (loss * g["upstream" if loss.ndim == 2 else "upstream_rows"]).sum()
    loss.backward()
    if key + "__grad" in g:
        np.testing.assert_allclose(x.grad.data, g[key + "__grad"], rtol=1e-9, atol=ATOL)
    if key + "__grad_target" in g:
        np.testing.assert_allclose(t.grad.data, g[key + "__grad_target"], rtol=1e-9, atol=ATOL)


ACTIVATION_MODULES = {"gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus}


@pytest.mark.parametrize("form", ["functional", "module"])
@pytest.mark.parametrize("case", sorted(json.loads(str(_load("activations.npz")["cases"]))))
def test_activation(case, form):
    g = _load("activations.npz")
    spec = json.loads(str(g["cases"]))[case]
    fn = getattr(F, spec["fn"]) if form == "functional" else \
        ACTIVATION_MODULES[spec["fn"]](**spec["kwargs"])
    kwargs = spec["kwargs"] if form == "functional" else {}
    x = tg.tensor(g["x"], requires_grad=True)
    y = fn(x, **kwargs)
    np.testing.assert_allclose(y.data, g[case + "__y"], rtol=RTOL, atol=ATOL)
    (y * g["upstream"]).sum().backward()
    np.testing.assert_allclose(x.grad.data, g[case + "__grad"], rtol=1e-9, atol=ATOL)


@pytest.mark.parametrize("case", sorted(json.loads(str(_load("layer_norm.npz")["cases"]))))
def test_layer_norm(case):
    g = _load("layer_norm.npz")
    spec = json.loads(str(g["cases"]))[case]
    ln = nn.LayerNorm(spec["normalized_shape"], eps=spec["eps"],
                      elementwise_affine=spec["elementwise_affine"], bias=spec["bias"],
                      dtype=np.float64)
    for name in ("weight", "bias"):
        assert (getattr(ln, name) is None) == (f"{case}__{name}" not in g)
        if getattr(ln, name) is not None:
            getattr(ln, name).data[...] = g[f"{case}__{name}"]
    x = tg.tensor(g["x"], requires_grad=True)
    y = ln(x)
    np.testing.assert_allclose(y.data, g[case + "__y"], rtol=RTOL, atol=ATOL)
    (y * g["upstream"]).sum().backward()
    np.testing.assert_allclose(x.grad.data, g[case + "__dx"], rtol=1e-9, atol=ATOL)
    for name in ("weight", "bias"):
        if getattr(ln, name) is not None:
            np.testing.assert_allclose(getattr(ln, name).grad.data, g[f"{case}__d{name}"],
                                       rtol=1e-9, atol=ATOL)
