"""The hand-written baselines: their timing loop, their agreement with torch autograd, and their
data, read through tensorgrad.data's loader."""
import ast
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.baselines import (
    NumpyMLP,
    check_numpy_baseline_against_torch,
    load_cifar10_train,
    time_updates,
    timed_updates,
)
from tests.experiments.conftest import tiny_cifar  # noqa: F401  (a fixture, used by name)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_timed_updates_are_the_updates_time_updates_runs():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 12)).astype(np.float32), rng.integers(0, 3, 60)
    whole, turns = [], []
    time_updates(NumpyMLP((12, 5, 3)).train_step, x, y, 10, 8, 2, losses=whole)
    it = timed_updates(NumpyMLP((12, 5, 3)).train_step, x, y, 10, 10, losses=turns)
    for _ in range(5):  # pulled two at a time, as the benchmark does
        next(it), next(it)
    assert turns == whole and len(whole) == 10


@pytest.mark.parametrize("sgd_momentum", [0.0, 0.9])
def test_numpy_baseline_is_torch_autograd(sgd_momentum):
    pytest.importorskip("torch")
    diff = check_numpy_baseline_against_torch(steps=3, sgd_momentum=sgd_momentum)
    assert max(diff.values()) <= 1e-10


def test_numpy_momentum_baseline_moves_differently_from_plain_sgd():
    """The momentum variant really keeps a velocity: its third step differs from plain SGD with
    the same decay (which the L2 term in the cost gives)."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 12)), rng.integers(0, 4, 40)
    plain = NumpyMLP((12, 6, 4), dtype=np.float64)
    heavy = NumpyMLP((12, 6, 4), dtype=np.float64, sgd_momentum=0.9)
    for t in range(3):
        plain.train_step(x[:20], y[:20], 0.1)
        heavy.train_step(x[:20], y[:20], 0.1)
        if t == 0:  # v = g on the first step: the same update
            np.testing.assert_allclose(heavy.W[0], plain.W[0], rtol=1e-12, atol=1e-14)
    assert np.abs(heavy.W[0] - plain.W[0]).max() > 1e-3


def test_baseline_data_come_through_the_tensorgrad_loader(tiny_cifar, monkeypatch):  # noqa: F811
    from tensorgrad.data import load_cifar10, standardize
    monkeypatch.setenv("TENSORGRAD_DATA", str(tiny_cifar))  # no root: the environment's folder
    x, y, x_val, y_val = load_cifar10_train(n_val=20)
    splits = load_cifar10(tiny_cifar, split="b", n_val=20, download=False)
    expected_x, expected_val = standardize(splits.train[0], splits.val[0])
    assert x.dtype == np.float32 and x.shape == (80, 3072) and x_val.shape == (20, 3072)
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(x_val, expected_val)
    np.testing.assert_array_equal(y, splits.train[1])
    np.testing.assert_array_equal(y_val, splits.val[1])


def test_baseline_data_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORGRAD_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_cifar10_train(tmp_path)


def test_no_benchmark_module_names_a_data_folder():
    """Data folders come from --data or $TENSORGRAD_DATA, never from a path in the code (the
    kernel's /proc files, read to find the BLAS library, are not data)."""
    absolute = re.compile(r"^(/|~/)(?!proc/)\w")
    found = [(path.name, node.value) for path in sorted(BENCHMARKS.glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and absolute.match(node.value)]
    assert found == []
