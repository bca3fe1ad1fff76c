"""compile.plan: probing a program's backward once gives the gradients and, per site, what the
compiled backward must do there (sum down, cast, broadcast) and which vjps are lowered."""
import numpy as np

import tensorgrad as tg
from tensorgrad.autograd.xp import numpy_ns
from tensorgrad.compile.plan import probe
from tensorgrad.compile.trace import trace


def _probe(fn, arrays, g=None, lowering=True):
    tensors = [tg.tensor(a, requires_grad=True) for a in arrays]
    program, _, vals = trace(fn, tensors, {})
    out = vals[program.result]
    g = np.ones(out.shape, out.dtype) if g is None else g
    grads, plan = probe(program, (True,) * len(arrays), numpy_ns, g, vals, lowering)
    eager = [tg.tensor(a, requires_grad=True) for a in arrays]
    fn(*eager).backward(g)
    for got, t in zip(grads, eager):  # the probe's gradients are the engine's
        assert got.shape == t.shape and got.dtype == t.dtype
        np.testing.assert_allclose(got, t.grad.data, rtol=1e-6)
    return program, plan


def test_a_broadcast_operand_needs_summing_down_the_other_not():
    program, plan = _probe(lambda x, b: (x + b).exp(), [np.ones((4, 3)), np.ones(3)])
    x_site, b_site = plan.sites["in", 0, 0], plan.sites["in", 0, 1]
    assert x_site.kept and not b_site.kept and b_site.shape == (4, 3)


def test_a_gradient_of_another_dtype_is_cast_to_its_inputs():
    program, plan = _probe(lambda x, b: x * b, [np.ones((2, 3), np.float32), np.ones(3)])
    x_site = plan.sites["in", 0, 0]
    assert x_site.dtype == np.float64 and x_site.target == np.float32


def test_a_compact_gradient_is_broadcast_for_a_shape_op_and_made_full_for_an_input():
    # sum's vjp hands reshape a compact gradient; y's gradient (through * 0.0 and sum) stays
    # compact up to the input, which needs a full array of its own
    program, plan = _probe(lambda x, y: x.reshape(6).sum() + (y * 0.0).sum(),
                           [np.ones((2, 3)), np.ones(4)])
    reshape = next(k for k, (op, _, _) in enumerate(program.steps) if op.name == "reshape")
    assert plan.sites["out", reshape].shape != (6,)
    assert plan.sites["grad", 1].shape != (4,)


def test_a_lazy_product_is_noted_where_it_is_computed():
    program, plan = _probe(lambda w: tg.ops.sum_squares(w) * 2.0, [np.ones((3, 2))])
    assert plan.sites["in", 0, 0].scaled


def test_lowered_vjps_are_planned_with_what_they_return():
    def layer(x, w, b):
        h = tg.ops.linear(x, w, b)
        return h - h.mean(axis=0)

    arrays = [np.ones((4, 3)), np.ones((2, 3)), np.zeros(2)]
    program, plan = _probe(layer, arrays, np.arange(8.0).reshape(4, 2))
    names = {(k, i): program.steps[k][0].name for k, i in plan.lowered}
    assert names == {(0, 1): "linear", (1, 0): "mean", (2, 1): "sub"}
    # the lowered vjp of the row vector sums down itself: nothing left to do at its site
    assert plan.sites["in", 2, 1].kept and plan.sites["in", 2, 1].shape == (2,)
    _, plan = _probe(layer, arrays, np.arange(8.0).reshape(4, 2), lowering=False)
    assert plan.lowered == {} and not plan.sites["in", 2, 1].kept
