"""compile.compiled: a program's forwards and backwards, compiled when first needed."""
import numpy as np

import tensorgrad as tg
from tensorgrad.autograd.xp import numpy_ns
from tensorgrad.compile.codegen import FREED
from tensorgrad.compile.compiled import Compiled
from tensorgrad.compile.trace import trace


def _norm(x, w, b, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return (x - mu) * (w * (var + eps) ** -0.5) + b, mu, var


def _compiled():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((4, 3)), rng.standard_normal(3) + 2, rng.standard_normal(3)]
    program, _, examples = trace(_norm, [tg.tensor(a, requires_grad=True) for a in arrays], {})
    return Compiled(program, examples), arrays


def test_the_first_backward_probes_the_later_ones_run_compiled_and_agree():
    compiled, arrays = _compiled()
    mask, g = (True, True, True), np.linspace(-1.0, 1.0, 12).reshape(4, 3)
    first = compiled.backward(numpy_ns, g, compiled.run(arrays, mask), mask)
    assert list(compiled.backwards) == [(mask, (4, 3), np.dtype(np.float64))]
    vals = compiled.run(arrays, mask)  # now lean: only what the backward reads
    assert any(v is FREED for v in vals) and not compiled.reads[mask] & \
        {i for i, v in enumerate(vals) if v is FREED}
    for a, b in zip(compiled.backward(numpy_ns, g, vals, mask), first):
        np.testing.assert_array_equal(a, b)


def test_a_lean_forwards_values_meeting_a_new_backward_are_computed_again():
    # the values a lean forward freed may be read by a backward compiled for another gradient
    # dtype: the program computes them again from the inputs rather than fail
    compiled, arrays = _compiled()
    mask = (True, True, True)
    compiled.backward(numpy_ns, np.ones((4, 3)), compiled.run(arrays, mask), mask)
    vals = compiled.run(arrays, mask)
    assert any(v is FREED for v in vals)
    got = compiled.backward(numpy_ns, np.ones((4, 3), np.float32), vals, mask)
    want = compiled.backward(numpy_ns, np.ones((4, 3)), vals, mask)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_differentiable_only_through_ops_with_vjps():
    x = tg.tensor(np.ones(2), requires_grad=True)
    program, _, examples = trace(lambda x, c: c * 2.0 + (x > 0), (x, tg.tensor(np.ones(2))), {})
    compiled = Compiled(program, examples)
    assert not compiled.differentiable((True, False)) and compiled.differentiable((False, True))
