"""Every golden test runs in fast mode and in reference mode (the fixture `each_mode`)."""
import pytest


@pytest.fixture(autouse=True)
def _in_each_mode(each_mode):
    yield
