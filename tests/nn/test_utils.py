"""nn.utils: gradient clipping (PyTorch goldens), parameters <-> vector in place."""
import json
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad import nn, optim
from tensorgrad.nn import utils

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "clip_grad_norm.npz"


def _params(grads, dtype=np.float64):
    out = []
    for g in grads:
        p = nn.Parameter(np.zeros(np.shape(g), dtype=dtype))
        if g is not None:
            p.grad = tg.tensor(np.asarray(g, dtype=dtype))
        out.append(p)
    return out


# ---- clip_grad_norm_ ------------------------------------------------------------------------


def golden_cases():
    with np.load(GOLDEN) as f:
        return sorted(json.loads(str(f["cases"])).items())


@pytest.mark.parametrize("name, case", golden_cases(), ids=[n for n, _ in golden_cases()])
def test_clip_grad_norm_matches_pytorch_golden(name, case):
    dtype = np.dtype(case.get("dtype", "float64"))
    with np.load(GOLDEN) as f:
        grads = [f[f"g{i}"] * case.get("scale", 1.0) for i in range(3)]
        expected_total = f[f"{name}__total"]
        expected = {i: f[f"{name}__g{i}"] for i in range(3) if f"{name}__g{i}" in f.files}
    params = [nn.Parameter(np.zeros(g.shape, dtype)) for g in grads]
    arrays = {}
    for i, (p, g) in enumerate(zip(params, grads)):
        if i not in case.get("missing", []):
            p.grad = tg.tensor(g.astype(dtype))
            arrays[i] = p.grad.data
    total = utils.clip_grad_norm_(params, case["max_norm"], norm_type=float(case["norm_type"]))
    assert isinstance(total, tg.Tensor) and total.shape == () and total.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(total.data, expected_total, rtol=rtol)
    assert sorted(expected) == sorted(arrays)
    for i, g in expected.items():
        assert params[i].grad.data is arrays[i]  # scaled in place
        assert params[i].grad.dtype == dtype
        np.testing.assert_allclose(params[i].grad.data, g, rtol=rtol, atol=1e-300)
    assert params[1].grad is None or 1 not in case.get("missing", [])


def test_golden_file_covers_the_norm_types_and_both_sides_of_max_norm():
    cases = dict(golden_cases())
    assert {str(c["norm_type"]) for c in cases.values()} >= {"2", "1", "inf", "0"}
    with np.load(GOLDEN) as f:
        clipped = {n: not np.array_equal(f[f"{n}__g0"], f["g0"] * cases[n].get("scale", 1.0))
                   for n in cases}
    assert not clipped["l2_not_clipped"] and clipped["l2_clipped"]


def test_clip_grad_norm_by_hand():
    params = _params([[3.0, 0.0], [[4.0]]])
    total = utils.clip_grad_norm_(params, max_norm=1.0)
    assert total.item() == 5.0
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad.data, [3 * coef, 0.0], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad.data, [[4 * coef]], rtol=1e-15)
    below = _params([[0.3, 0.4]])
    assert utils.clip_grad_norm_(below, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(below[0].grad.data, [0.3, 0.4])  # coefficient 1: unchanged
    inf = _params([[-3.0, 2.0], [1.0]])
    assert utils.clip_grad_norm_(inf, 10.0, norm_type="inf").item() == 3.0


def test_clip_grad_norm_takes_one_tensor_a_generator_and_parameters_without_grad():
    p = _params([[6.0, 8.0]])[0]
    assert utils.clip_grad_norm_(p, 5.0).item() == 10.0
    np.testing.assert_allclose(p.grad.data, [3.0, 4.0], rtol=1e-6)
    model = nn.Linear(3, 2, seed=0)
    total = utils.clip_grad_norm_(model.parameters(), 1.0)  # no gradients at all
    assert total.item() == 0.0 and model.weight.grad is None


def test_clip_grad_norm_non_finite():
    params = _params([[np.inf, 1.0], [2.0]])
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[1].grad.data, [2.0])  # nothing touched
    nan = _params([[np.nan, 1.0]])
    with np.errstate(invalid="ignore"):
        total = utils.clip_grad_norm_(nan, 1.0)
    assert np.isnan(total.item()) and np.isnan(nan[0].grad.data).all()  # as PyTorch


def test_clip_grad_norm_then_step_on_a_flat_model():
    """Clipping scales the gradient arrays in place, so the flat SGD path sees the clipped ones
    and updates the same arrays the model reads."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    a, b = MLP([6, 5, 3], seed=1, dtype=np.float64), MLP([6, 5, 3], seed=1, dtype=np.float64)
    a.flatten_parameters()
    for model in (a, b):
        opt = optim.SGD(model.parameters(), lr=0.5)
        loss = nn.functional.cross_entropy(model(tg.tensor(x)), y)
        loss.backward()
        total = utils.clip_grad_norm_(model.parameters(), max_norm=0.01)
        assert total.item() > 0.01
        opt.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-12, err_msg=name)


def test_get_total_norm_and_clip_grads_with_norm_are_clip_grad_norm_in_two_steps():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    total = utils.get_total_norm([tg.tensor(g) for g in grads])
    assert total.item() == 5.0 and utils.get_total_norm(grads, norm_type=1).item() == 7.0
    params = _params(grads)
    utils.clip_grads_with_norm_(params, 1.0, total)
    reference = _params(grads)
    utils.clip_grad_norm_(reference, 1.0)
    for p, q in zip(params, reference):
        np.testing.assert_array_equal(p.grad.data, q.grad.data)
    float32 = _params([[1.0, 1.0]], np.float32)
    utils.clip_grads_with_norm_(float32, 0.5, 10.0)  # a plain number: the dtype stays
    assert float32[0].grad.dtype == np.float32
    np.testing.assert_allclose(float32[0].grad.data, 0.5 / (10 + 1e-6), rtol=1e-6)


# ---- clip_grad_value_ -------------------------------------------------------------------------


def test_clip_grad_value_clamps_in_place():
    params = _params([[-3.0, 0.5, 2.0], None, [[0.1, -0.2]]])
    arrays = [params[0].grad.data, params[2].grad.data]
    assert utils.clip_grad_value_(params, 1) is None
    np.testing.assert_array_equal(params[0].grad.data, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(params[2].grad.data, [[0.1, -0.2]])
    assert params[0].grad.data is arrays[0] and params[2].grad.data is arrays[1]
    assert params[1].grad is None


# ---- parameters_to_vector / vector_to_parameters --------------------------------------------


def test_parameters_to_vector_is_row_major_and_differentiable():
    w = nn.Parameter(np.arange(6.0).reshape(2, 3))
    b = nn.Parameter(np.array([10.0, 11.0]))
    v = utils.parameters_to_vector([w, b])
    np.testing.assert_array_equal(v.data, [0, 1, 2, 3, 4, 5, 10, 11])
    assert v.requires_grad
    (v * tg.tensor(np.arange(8.0))).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(b.grad.data, [6, 7])
    assert not np.shares_memory(v.data, w.data)


def test_vector_round_trip_writes_into_the_existing_arrays_of_a_flat_model():
    model = MLP([6, 5, 4, 3], seed=0, dtype=np.float64)
    model.flatten_parameters()
    params = list(model.parameters())
    arrays = [p.data for p in params]
    flats = {id(p._flat) for p in params if p._flat is not None}
    assert flats  # some parameters live in one flat array
    vec = utils.parameters_to_vector(model.parameters())
    new = np.random.default_rng(1).standard_normal(vec.shape[0])
    with tg.no_grad():
        utils.vector_to_parameters(tg.tensor(new), model.parameters())
    assert all(p.data is a for p, a in zip(params, arrays))  # the same arrays, new values
    assert all(p._flat is None or p._flat.valid() for p in params)
    np.testing.assert_array_equal(utils.parameters_to_vector(params).data, new)
    new[:] = 0.0  # the parameters do not share the vector's memory
    assert utils.parameters_to_vector(params).data.any()
    # the flat SGD path still updates what the model uses
    x, y = np.random.default_rng(2).standard_normal((4, 6)), np.array([0, 1, 2, 0])
    before = utils.parameters_to_vector(params).data.copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    nn.functional.cross_entropy(model(tg.tensor(x)), y).backward()
    opt.step()
    grads = np.concatenate([p.grad.data.ravel() for p in params])
    np.testing.assert_allclose(utils.parameters_to_vector(params).data, before - 0.1 * grads,
                               rtol=1e-12, atol=1e-15)


def test_vector_to_parameters_handles_fortran_order_and_casts_and_checks_sizes():
    w = nn.Parameter(np.asfortranarray(np.zeros((2, 3), np.float32)))
    b = nn.Parameter(np.zeros(2, np.float32))
    utils.vector_to_parameters(np.arange(8.0), [w, b])
    np.testing.assert_array_equal(w.data, [[0, 1, 2], [3, 4, 5]])
    assert w.data.dtype == np.float32 and w.data.flags.f_contiguous
    np.testing.assert_array_equal(utils.parameters_to_vector([w, b]).data, np.arange(8.0))
    with pytest.raises(ValueError, match="hold 8 values, the vector 7"):
        utils.vector_to_parameters(tg.tensor(np.zeros(7)), [w, b])
    with pytest.raises(ValueError, match="1-d"):
        utils.vector_to_parameters(tg.tensor(np.zeros((2, 4))), [w, b])
    with pytest.raises(TypeError, match="expected a Tensor"):
        utils.vector_to_parameters([0.0] * 8, [w, b])


def test_reachable_as_tg_nn_utils():
    assert tg.nn.utils.clip_grad_norm_ is utils.clip_grad_norm_
