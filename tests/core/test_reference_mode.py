"""Reference mode: `tg.set_fast(False)` / `tg.fast_mode(False)` / TENSORGRAD_FAST=0 switch every
fast path off; `tg.fast_paths()` names and counts them."""
import os
import subprocess
import sys

import pytest

import tensorgrad as tg


def test_set_fast_and_is_fast():
    assert tg.is_fast()
    try:
        tg.set_fast(False)
        assert not tg.is_fast()
    finally:
        tg.set_fast(True)
    assert tg.is_fast()


def test_fast_mode_context_manager_and_decorator_restore_the_mode():
    with tg.fast_mode(False):
        assert not tg.is_fast()
        with tg.fast_mode(True):
            assert tg.is_fast()
        assert not tg.is_fast()
    assert tg.is_fast()

    @tg.fast_mode(False)
    def inside():
        return tg.is_fast()

    assert inside() is False and tg.is_fast()


def test_fast_paths_lists_each_path_with_a_purpose_and_a_counter():
    paths = tg.fast_paths()
    assert "fused_program" in paths
    for name, path in paths.items():
        assert path.purpose and isinstance(path.hits, int) and path.hits >= 0, name


def test_environment_variable_switches_everything_off_at_import():
    code = ("import tensorgrad as tg; print(tg.is_fast(), tg.memory.APPLIED, "
            "tg.fast_paths()['malloc_tuning'].hits)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, TENSORGRAD_FAST="0")).stdout.split()
    assert out == ["False", "False", "0"]


@pytest.mark.parametrize("value", ["yes", "off", "2"])
def test_an_unknown_value_of_the_environment_variable_is_refused(value):
    run = subprocess.run([sys.executable, "-c", "import tensorgrad"], capture_output=True,
                         text=True, env=dict(os.environ, TENSORGRAD_FAST=value))
    assert run.returncode != 0 and "TENSORGRAD_FAST" in run.stderr
