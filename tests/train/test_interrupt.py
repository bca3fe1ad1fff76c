"""Ctrl-C in fit, as a real SIGINT to a training subprocess (sent by itself at a point named by
the test-only TENSORGRAD_FAULT variable): fit saves the last finished update and re-raises
KeyboardInterrupt carrying the checkpoint's path; a second Ctrl-C gives up the save at once."""
import json

import numpy as np
import pytest

from tests.data.conftest import write_cifar
from tests.train.test_kill_resume import results, run_worker


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt_cifar")
    write_cifar(root / "cifar-10-batches-py")
    return root


def _carried(proc):
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("prefetch", [0, 2])
def test_ctrl_c_saves_the_last_finished_update_and_resumes_bitwise(cifar, tmp_path, prefetch):
    """(With prefetch, the interrupted and resumed runs prefetch 2 batches: the thread is
    ahead when Ctrl-C comes; the reference does not prefetch.)"""
    (tmp_path / "ref").mkdir()
    ref = run_worker(cifar, tmp_path / "ref" / "run.ckpt", "adam", tmp_path / "ref_out")
    assert ref.returncode == 0, ref.stderr
    folder = tmp_path / "run"
    folder.mkdir()
    ckpt = folder / "run.ckpt"
    # update 5 is between the checkpoints of updates 3 and 6: saving it is the interrupt's doing
    carried = _carried(run_worker(cifar, ckpt, "adam", tmp_path / "out", "INT@update:5",
                                  prefetch))
    assert carried == {"interrupted": "KeyboardInterrupt", "checkpoint": str(ckpt), "step": 5}
    assert sorted(p.name for p in folder.iterdir()) == ["run.ckpt"]
    # resuming from update 5 gives the uninterrupted run's result, bit for bit
    proc = run_worker(cifar, ckpt, "adam", tmp_path / "out", prefetch=prefetch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ref_arrays, ref_json), (arrays, got_json) = results(tmp_path / "ref_out"), \
        results(tmp_path / "out")
    for key, value in ref_arrays.items():
        np.testing.assert_array_equal(arrays[key], value, err_msg=key, strict=True)
    assert got_json == ref_json


def test_ctrl_c_without_a_checkpoint_saves_nothing(cifar, tmp_path):
    carried = _carried(run_worker(cifar, "none", "adam", tmp_path / "out", "INT@update:5"))
    assert carried == {"interrupted": "KeyboardInterrupt", "checkpoint": None, "step": 5}
    assert list(tmp_path.iterdir()) == []


def test_a_second_ctrl_c_gives_up_the_save_and_leaves_no_temporary(cifar, tmp_path):
    """The first Ctrl-C (after update 5) starts the save of update 5, the process's second
    checkpoint write; a second one arrives while that file is being written: the write stops,
    its temporary file is removed, and the checkpoint of update 3 is what remains."""
    folder = tmp_path / "run"
    folder.mkdir()
    ckpt = folder / "run.ckpt"
    carried = _carried(run_worker(cifar, ckpt, "adam", tmp_path / "out",
                                  "INT@update:5,INT@write:2"))
    assert carried == {"interrupted": "KeyboardInterrupt", "checkpoint": str(ckpt), "step": 3}
    assert sorted(p.name for p in folder.iterdir()) == ["run.ckpt"]
