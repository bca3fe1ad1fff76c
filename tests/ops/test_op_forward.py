"""Every op case's forward equals the numpy function it mirrors (its `ref`) in shape, dtype and
value (float64, to 1e-12) over hypothesis-generated inputs, in fast and in reference mode."""
import pytest

from tensorgrad.testing import assert_op_matches

from .op_cases import CASES

pytestmark = pytest.mark.usefixtures("each_mode")


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_forward_matches_numpy(name):
    case = CASES[name]
    assert_op_matches(case["fn"], case["ref"], *case["inputs"], **case.get("params", {}))
