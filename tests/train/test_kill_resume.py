"""A training subprocess killed with SIGKILL (a real signal, sent by the process to itself at a
point named by the test-only TENSORGRAD_FAULT variable) resumes from its checkpoint to bitwise
the result of an uninterrupted run: SGD with momentum, Nesterov and Adam, with dropout, batch
norm and augmentation, on 2 BLAS threads."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tensorgrad.serialization import load
from tests.data.conftest import write_cifar

REPO = Path(__file__).resolve().parents[2]
THREADS = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
# Three kills in a row, each resuming the previous one's checkpoint (every 3 updates, 24 in all):
# after update 5 (two updates past the checkpoint of update 3), in the middle of the
# resumed process's second checkpoint write (update 9: the temporary file is complete, not yet
# renamed), and right after the checkpoint of update 15 is on disk.
KILLS = ["KILL@update:5", "KILL@write:2", "KILL@saved:15"]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_cifar")
    write_cifar(root / "cifar-10-batches-py")
    return root


def run_worker(cifar, checkpoint, optimizer, out, fault=None, prefetch=0):
    env = {k: v for k, v in os.environ.items() if k != "TENSORGRAD_FAULT"}
    env.update(THREADS, TENSORGRAD_TEST_PREFETCH=str(prefetch))
    if fault:
        env["TENSORGRAD_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "tests.train.resume_worker", str(cifar), str(checkpoint),
         optimizer, str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def results(out):
    return load(f"{out}.npz"), json.loads(Path(f"{out}.json").read_text())


@pytest.mark.parametrize("optimizer, prefetch", [("momentum", 0), ("nesterov", 0), ("adam", 0),
                                               ("momentum", 2)])
def test_killed_three_times_resumes_bitwise(cifar, tmp_path, optimizer, prefetch):
    """(With prefetch: the killed and resumed runs prefetch 2 batches, the reference does not.)"""
    (tmp_path / "ref").mkdir()
    ref = run_worker(cifar, tmp_path / "ref" / "run.ckpt", optimizer, tmp_path / "ref_out")
    assert ref.returncode == 0, ref.stderr
    folder = tmp_path / "killed"
    folder.mkdir()
    ckpt = folder / "run.ckpt"
    for fault in KILLS:
        proc = run_worker(cifar, ckpt, optimizer, tmp_path / "out", fault, prefetch)
        assert proc.returncode == -signal.SIGKILL, (fault, proc.returncode, proc.stderr[-3000:])
        assert ckpt.exists(), fault
    proc = run_worker(cifar, ckpt, optimizer, tmp_path / "out", prefetch=prefetch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref_arrays, ref_json = results(tmp_path / "ref_out")
    arrays, got_json = results(tmp_path / "out")
    assert list(arrays) == list(ref_arrays)
    for key, value in ref_arrays.items():
        np.testing.assert_array_equal(arrays[key], value, err_msg=key, strict=True)
    assert got_json == ref_json
    assert len(got_json["history"]["lr"]) == 24
    # the temporary file the mid-write kill left behind is gone once a later write succeeded
    assert sorted(p.name for p in folder.iterdir()) == ["run.ckpt"]
