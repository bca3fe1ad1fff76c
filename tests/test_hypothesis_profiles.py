"""The test suite's hypothesis profiles (tests/conftest.py) give the same verdict on a fresh
clone and after a failed run; its `each_mode` fixture runs a test in both modes."""
import pytest
from hypothesis import settings

import tensorgrad as tg


@pytest.mark.parametrize("name", ["ci", "dev"])
def test_no_profile_replays_a_leftover_example_database(name):
    # a database would replay a failed run's examples (kept in .hypothesis/) into every later run
    assert settings.get_profile(name).database is None


def test_ci_runs_the_same_examples_every_time():
    assert settings.get_profile("ci").derandomize


def test_each_mode_runs_a_test_in_fast_mode_and_in_reference_mode(each_mode, request):
    assert tg.is_fast() is each_mode
    assert request.node.callspec.id == ("fast" if each_mode else "reference")
