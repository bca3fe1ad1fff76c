"""tensorgrad.faults: the test-only $TENSORGRAD_FAULT plan is read strictly."""
import signal

import pytest

from tensorgrad import faults


def test_a_plan_is_parsed_per_point():
    assert faults._parse("KILL@update:5, INT@write:2,TERM@saved:3") == {
        "update": [(5, signal.SIGKILL)], "write": [(2, signal.SIGINT)],
        "saved": [(3, signal.SIGTERM)]}
    assert faults._parse("") == {}


@pytest.mark.parametrize("text", ["KILL@update", "HUP@update:1", "KILL@nowhere:1", "KILL:1"])
def test_a_malformed_plan_names_the_variable(text):
    with pytest.raises(ValueError, match="TENSORGRAD_FAULT"):
        faults._parse(text)


def test_without_a_plan_nothing_fires():
    assert not faults.active("update")
    faults.at("write")  # no signal: this test process goes on
