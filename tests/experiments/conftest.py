"""Fixtures for the study scripts: a tiny CIFAR-10 folder in the real format, and one
`python -m experiments.reproduce --quick` run of every study into a temporary folder."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import common
from experiments.reproduce import STUDIES
from tests.data.conftest import write_cifar

REPO = Path(__file__).resolve().parents[2]


def run_module(name, *args, timeout=300):
    """`python -m experiments.<name> args` from the repository root, on one BLAS thread (the
    tiny matrices gain nothing from more, and lose a lot when other jobs share the cores)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop(common.ENV_VAR, None)
    return subprocess.run([sys.executable, "-m", f"experiments.{name}", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _committed_state():
    """The studies' committed outputs as (path, mtime) pairs, RESULTS.md included (other
    folders under experiments/results belong to other scripts)."""
    paths = [common.EXPERIMENTS / "RESULTS.md"]
    for name, _, _, _ in STUDIES:
        if (common.RESULTS_ROOT / name).exists():
            paths += sorted((common.RESULTS_ROOT / name).rglob("*"))
    return [(os.fspath(p), p.stat().st_mtime_ns) for p in paths if p.exists()]


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> Path:
    """A root folder holding cifar-10-batches-py/ with 20 images per file (real format)."""
    root = tmp_path_factory.mktemp("tiny_cifar")
    write_cifar(root / "cifar-10-batches-py")
    return root


COURSE_STUDIES = ("S1", "S2", "S3", "S4", "S5")


@pytest.fixture(scope="session")
def quick_run(tiny_cifar, tmp_path_factory):
    """The course studies S1-S5 in --quick mode on tiny_cifar, through reproduce, into a
    temporary root (the S6/S7 studies have their own quick tests).

    Returns (root, completed process, committed results before, committed results after)."""
    root = tmp_path_factory.mktemp("quick_results")
    before = _committed_state()
    proc = run_module("reproduce", "--quick", "--only", *COURSE_STUDIES, "--data", tiny_cifar,
                      "--out-root", root, "--no-progress")
    after = _committed_state()
    assert proc.returncode == 0, proc.stdout[-4000:] + "\n" + proc.stderr[-4000:]
    return root, proc, before, after


# study -> extra flags of its quick run (small subsets keep the whole set well under a minute)
QUICK_FLAGS = {
    "improvements": ["--changes", "dropout", "blur", "--workers", "2"],
    "architectures": ["--workers", "1"],
    "final_r0": [],
    "best_mlp": ["--seeds", "2", "--candidates", "present", "wide"],
    "parallel": ["--speed"],
}


@pytest.fixture(scope="session")
def improvement_studies_quick(tiny_cifar, tmp_path_factory):
    """{study: (output folder, completed stdout)} of every later study (improvements,
    architectures, final R0, best MLP, parallel) run with --quick."""
    root = tmp_path_factory.mktemp("improvement_studies_quick")
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
