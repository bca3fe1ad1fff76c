"""Fixtures for the S6 studies: the tiny CIFAR-10 folder of tests/experiments and one --quick run
of every S6 script, all started at once (each on one BLAS thread) into a temporary folder."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import common
from tests.experiments.conftest import tiny_cifar  # noqa: F401  (a fixture, used by name)

REPO = Path(__file__).resolve().parents[2]

# study -> extra flags of its quick run (small subsets keep the whole set well under a minute)
QUICK_FLAGS = {
    "improvements": ["--changes", "dropout", "blur", "--workers", "2"],
    "architectures": ["--workers", "1"],
    "final_r0": [],
    "best_mlp": ["--seeds", "2", "--average-last", "2"],
    "parallel": ["--speed"],
}


@pytest.fixture(scope="session")
def s6_quick(tiny_cifar, tmp_path_factory):  # noqa: F811
    """{study: (output folder, completed stdout)} of every S6 script run with --quick."""
    root = tmp_path_factory.mktemp("s6_quick")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop(common.ENV_VAR, None)
    procs = {}
    for name, flags in QUICK_FLAGS.items():
        cmd = [sys.executable, "-m", f"experiments.{name}", "--quick", "--data",
               os.fspath(tiny_cifar), "--out", os.fspath(root / name), "--no-progress", *flags]
        procs[name] = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}:\n{stdout[-3000:]}\n{stderr[-3000:]}"
        out[name] = (root / name, stdout)
    return out
