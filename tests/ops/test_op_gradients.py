"""Every public op passes gradcheck and gradgradcheck (float64, central differences) over
hypothesis-generated inputs: broadcasting, size-1 axes and 0-d tensors included."""

import pytest

from tensorgrad.testing import assert_op_gradients

from .op_cases import CASES

pytestmark = pytest.mark.usefixtures("each_mode")  # in fast and reference mode


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradients(name):
    case = CASES[name]
    assert_op_gradients(
        case["fn"],
        *case["inputs"],
        gradgrad=case.get("gradgrad", True),
        eps=case.get("eps", 1e-6),
        atol=case.get("atol", 1e-5),
        rtol=case.get("rtol", 1e-3),
        **case.get("params", {}),
    )
