"""compile.program and compile.trace: a traced function as plain data (slots, steps, results)."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.compile.trace import trace


def _trace(fn, *arrays, grads=None):
    tensors = [tg.tensor(a, requires_grad=g) for a, g in
               zip(arrays, grads or [True] * len(arrays))]
    return trace(fn, tensors, {})


def test_a_trace_numbers_inputs_then_constants_then_steps():
    c = np.array([1.0, 2.0])

    def f(x, y):
        z = x * 3.0 + c
        return (z * y).sum(), z

    program, has_aux, examples = _trace(f, np.ones(2), np.full(2, 2.0))
    assert has_aux and program.n_in == 2 and program.first_step == 4
    assert program.consts[0] == 3.0 and program.consts[1] is c
    assert [(op.name, spec) for op, spec, _ in program.steps] == \
        [("mul", (0, 2)), ("add", (4, 3)), ("mul", (5, 1)), ("sum", (6,))]
    assert program.result == program.slot(3) == 7 and program.aux == (5,)
    assert program.shapes == [(2,), (2,), (), (2,), (2,), (2,), (2,), ()]
    np.testing.assert_array_equal(examples[5], [4.0, 5.0])  # every slot's value in the trace
    assert "v5 = add(v4, v3)" in repr(program)


def test_reach_follows_gradients_through_ops_with_vjps_only():
    def f(x, y):
        return x * (y > 0) + y.detach()  # a comparison and detach pass no gradient on

    program, _, _ = _trace(f, np.ones(2), np.ones(2))
    live, plans = program.reach((False, True))
    assert not live[program.result]  # y reaches the result only through > and detach
    live, plans = program.reach((True, False))
    assert live[program.result]
    assert [op.name for op, _, _ in program.steps] == ["greater", "mul", "detach", "add"]
    assert plans == [(), (0,), (), (0,)]


def test_returning_something_not_computed_by_ops_is_an_error():
    with pytest.raises(TypeError, match="must return tensors computed by tensorgrad ops"):
        _trace(lambda x: np.ones(2), np.ones(2))
