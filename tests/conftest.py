"""Hypothesis profiles: `ci` (HYPOTHESIS_PROFILE=ci: derandomized, the same examples every run)
and `dev` (the default: fresh random examples every run); no deadlines, small arrays.
No example database in either (database=None, as PyTorch's profiles), so a failed run's leftover
.hypothesis/ never replays into later runs; a failure prints its @reproduce_failure blob instead.
"""

import os

from hypothesis import HealthCheck, settings

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
