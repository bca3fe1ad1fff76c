"""compile.codegen: the straight-line forward and backward written from a program and its plan
compute what the engine computes, with the fixes the plan asks for and nothing else."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import mode
from tensorgrad.autograd.xp import numpy_ns
from tensorgrad.compile import codegen
from tensorgrad.compile.plan import probe
from tensorgrad.compile.trace import trace

PROGRAMS = {
    "broadcast and cast": (lambda x, b: (x * b + b).exp(),
                           [np.ones((4, 3), np.float32), np.linspace(0.1, 0.3, 3)]),
    "bias column sum": (lambda x, w, b: tg.relu(tg.ops.linear(x, w, b)),
                        [np.linspace(-1, 1, 12).reshape(4, 3), np.ones((2, 3)), np.zeros(2)]),
    "lazy product": (lambda w, v: tg.ops.sum_squares(w) * 2.0 + (w * v).sum(),
                     [np.ones((4, 3)), np.arange(12.0).reshape(4, 3)]),
    "compact gradients": (lambda x, y: x.reshape(6).sum() + (y * 0.0).sum(),
                          [np.ones((2, 3)), np.ones(4)]),
}


def _compile(fn, arrays, off=frozenset()):
    program, _, vals = trace(fn, [tg.tensor(a, requires_grad=True) for a in arrays], {})
    out = vals[program.result]
    g = np.linspace(-1.0, 1.0, out.size).reshape(out.shape).astype(out.dtype)
    mask = (True,) * len(arrays)
    grads, plan = probe(program, mask, numpy_ns, g, vals)
    return program, vals, g, grads, codegen.backward(program, mask, plan, off)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_compiled_backward_gives_the_probes_gradients(name):
    fn, arrays = PROGRAMS[name]
    program, vals, g, grads, backward = _compile(fn, arrays)
    got = backward(numpy_ns, g, list(vals))
    for a, b, x in zip(got, grads, arrays):
        assert a.shape == x.shape and a.dtype == x.dtype  # (fuse copies views it must own)
        np.testing.assert_array_equal(a, b)


def test_a_bias_gradient_is_a_blas_column_sum_unless_that_path_is_off():
    fn, arrays = PROGRAMS["bias column sum"]
    tg.fast_paths(reset=True)
    *_, backward = _compile(fn, arrays)
    assert "dot(ones" in backward.source
    *_, plain = _compile(fn, arrays, frozenset(["blas_reduction"]))
    assert "reduce_to(" in plain.source and "dot(ones" not in plain.source


def test_consume_empties_the_values_and_each_is_deleted_after_its_last_use():
    fn, arrays = PROGRAMS["broadcast and cast"]
    program, vals, g, grads, backward = _compile(fn, arrays)
    given = list(vals)
    tg.fast_paths(reset=True)
    backward(numpy_ns, g, given, True)
    assert given == [] and tg.fast_paths()["early_free"].hits == 1
    # values and gradients are deleted after their last use (using one after its del would
    # have raised UnboundLocalError above)
    assert "    del " in backward.source
    *_, keeping = _compile(fn, arrays, frozenset(["early_free"]))
    given = list(vals)
    keeping(numpy_ns, g, given, True)
    assert len(given) == len(vals)


def test_python_numbers_become_typed_0d_arrays_in_a_float32_forward():
    x = tg.tensor(np.linspace(0, 1, 6, dtype=np.float32), requires_grad=True)
    program, _, examples = trace(lambda x: x * 3.0 + 1.0, (x,), {})
    tg.fast_paths(reset=True)
    forward = codegen.assemble_forward(
        program, codegen.forward_source(program, examples, frozenset()), None)
    assert tg.fast_paths()["typed_number"].hits == 2
    out = forward(x.data)[program.result]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.data * 3.0 + 1.0)


def test_with_the_fast_paths_off_the_same_program_compiles_without_them():
    fn, arrays = PROGRAMS["bias column sum"]
    off = mode._closure({"lowering", "inlined_lambda", "blas_reduction"})
    program, vals, g, grads, backward = _compile(fn, arrays, off)
    assert "np.matmul" not in backward.source and "dot(" not in backward.source
    got = backward(numpy_ns, g, list(vals))
    for a, b in zip(got, grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)
