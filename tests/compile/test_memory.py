"""tensorgrad.compile.memory: malloc keeps freed blocks for reuse (glibc), and can be turned off."""

import os
import platform
import subprocess
import sys

import pytest

from tensorgrad.compile.memory import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="malloc tuning only exists on glibc")
def test_applies_on_glibc():
    assert keep_freed_memory() is True


@pytest.mark.skipif(GLIBC, reason="elsewhere it must do nothing")
def test_does_nothing_elsewhere():
    assert keep_freed_memory() is False


@pytest.mark.parametrize("value", ["0", "1"])
def test_import_applies_it_unless_the_environment_says_0(value):
    env = dict(os.environ, TENSORGRAD_KEEP_FREED_MEMORY=value, TENSORGRAD_FAST="1")
    out = subprocess.run(
        [sys.executable, "-c", "import tensorgrad; print(tensorgrad.compile.memory.APPLIED)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[-1] == str(GLIBC and value == "1")
