"""Every op case's forward equals the numpy function it mirrors (its `ref`) in shape, dtype and
value (float64, to 1e-12) over hypothesis-generated inputs, in fast and in reference mode; so
does every function without gradient (comparisons, argmax, all/any...), which records no graph."""
import pytest

from tensorgrad.testing import assert_op_matches

from .op_cases import CASES, NONDIFF_CASES

pytestmark = pytest.mark.usefixtures("each_mode")


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_forward_matches_numpy(name):
    case = CASES[name]
    assert_op_matches(case["fn"], case["ref"], *case["inputs"], **case.get("params", {}))


@pytest.mark.parametrize("name", sorted(NONDIFF_CASES))
def test_nondifferentiable_forward_matches_numpy(name):
    case = NONDIFF_CASES[name]

    def fn(*args, **kw):
        out = case["fn"](*args, **kw)
        assert not out.requires_grad and out.grad_fn is None, f"{name} recorded a graph"
        return out
    assert_op_matches(fn, case["ref"], *case["inputs"], **case.get("params", {}))
