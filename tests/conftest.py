"""Hypothesis profiles: `ci` (HYPOTHESIS_PROFILE=ci: derandomized, the same examples every run)
and `dev` (the default: fresh random examples every run); no deadlines, small arrays.
No example database in either (database=None, as PyTorch's profiles), so a failed run's leftover
.hypothesis/ never replays into later runs; a failure prints its @reproduce_failure blob instead.

The fixture `each_mode` runs a test in fast mode and again in reference mode: the op cases, the
`fit` tests and the golden tests use it (`pytestmark` / tests/golden/conftest.py).

Ctrl-C is Python's KeyboardInterrupt in the test process even when the suite was started with
SIGINT ignored (a background job of a non-interactive shell): the signal tests, and the
subprocesses that inherit the disposition, test the handling a user's terminal gives.
"""

import os
import signal

import pytest
from hypothesis import HealthCheck, settings

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=20,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=[True, False], ids=["fast", "reference"])
def each_mode(request):
    """Run the test twice: in fast mode and in reference mode (tg.fast_mode(False), the
    textbook engine), so the fast paths and the specification pass the same checks."""
    import tensorgrad as tg
    with tg.fast_mode(request.param):
        yield request.param
