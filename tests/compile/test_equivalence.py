"""The fast layer proven equal to the reference: random programs of the registered ops give the
same values and first- and second-order gradients eagerly in fast mode, fused (tg.fuse) and in
reference mode (tg.fast_mode(False)); see tensorgrad.testing.programs.

Locally every run draws new programs. Under HYPOTHESIS_PROFILE=ci the draw is fixed by a seed
taken from the commit (`git rev-parse HEAD`), printed with the test's output; to replay a
failure, set TENSORGRAD_EQUIVALENCE_SEED to it. A failure's report ends with the program as an
@example: add it to tests/compile/equivalence_examples.py.
"""
import os
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.testing import FEATURES, assert_program_modes_agree, programs

from .equivalence_examples import EXAMPLES

N_PROGRAMS = 300  # at least, in every profile (the ci profile's 25 examples would be too few)
MIN_SHARE = 0.05  # each feature in at least this share of them

# every fast path the programs must take in fast mode (so each is proven against the
# reference); the others belong to training (optimizers, flat parameters) and to the import
PROGRAM_PATHS = ["fused_program", "fused_chain", "lowering", "inlined_lambda", "typed_number",
                 "lean_forward", "early_free", "blas_reduction", "compact_gradient", "vjp_all",
                 "fresh_gradient", "inplace_accumulate", "lazy_scaled", "axpy"]
OTHER_PATHS = ["flat_update", "momentum_axpby", "batched_running_stats", "prefetch_batch",
               "malloc_tuning"]


def _seed():
    """The seed of this run's programs: TENSORGRAD_EQUIVALENCE_SEED, else under the ci profile
    one from the commit (0 outside a git checkout), else None (hypothesis draws afresh)."""
    given_seed = os.environ.get("TENSORGRAD_EQUIVALENCE_SEED")
    if given_seed:
        return int(given_seed)
    if os.environ.get("HYPOTHESIS_PROFILE") != "ci":
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, cwd=Path(__file__).resolve().parent).stdout.strip()
        return int(head[:16], 16)
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


SEED = _seed()


def test_fast_eager_fused_and_reference_runs_of_random_programs_agree():
    drawn = []  # the features of each drawn program that passed
    explicit = {id(e["program"]) for e in EXAMPLES}

    @settings(max_examples=N_PROGRAMS, deadline=None, database=None, derandomize=False,
              print_blob=True, suppress_health_check=[
                  HealthCheck.too_slow, HealthCheck.data_too_large,
                  HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(program=programs(), seed=st.integers(0, 2 ** 32 - 1))
    def check(program, seed):
        assert_program_modes_agree(program, seed)
        if id(program) not in explicit:
            drawn.append(program.features)

    for e in EXAMPLES:
        check = example(**e)(check)
    if SEED is not None:
        check = seed(SEED)(check)
    print(f"equivalence: {N_PROGRAMS} programs, "
          + ("drawn afresh" if SEED is None else
             f"seed {SEED} (replay: TENSORGRAD_EQUIVALENCE_SEED={SEED})"))
    before = {name: p.hits for name, p in tg.fast_paths().items()}
    check()
    hits = {name: p.hits - before[name] for name, p in tg.fast_paths().items()}

    assert len(drawn) >= N_PROGRAMS
    shares = {f: sum(f in s for s in drawn) / len(drawn) for f in FEATURES}
    rare = {f: share for f, share in shares.items() if share < MIN_SHARE}
    assert not rare, f"features in under {MIN_SHARE:.0%} of {len(drawn)} programs: {rare}"
    assert sorted(hits) == sorted(PROGRAM_PATHS + OTHER_PATHS), \
        "a fast path was added or renamed: list it in PROGRAM_PATHS (and make the programs " \
        "take it) or in OTHER_PATHS"
    untaken = [name for name in PROGRAM_PATHS if not hits[name]]
    assert not untaken, f"fast paths no program took: {untaken}"
