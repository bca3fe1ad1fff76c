"""Ctrl-C and SIGTERM at the command line, as real signals (sent by the study process to itself
after a training update named by the test-only TENSORGRAD_FAULT variable): one short message
naming the command that resumes, no traceback, exit status 130 or 143, no temporary file left;
that command then resumes from the update the interruption saved."""
import os
import subprocess
import sys

import pytest

from tests.experiments.conftest import REPO


def run(module, fault, *args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               TENSORGRAD_FAULT=fault)
    return subprocess.run([sys.executable, "-m", f"experiments.{module}", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _no_temporaries(folder):
    return [p for p in folder.rglob("*") if "tmp" in p.name]


@pytest.mark.parametrize("signal_name, status", [("INT", 130), ("TERM", 143)])
def test_a_study_stopped_by_a_signal_says_so_in_one_message(tiny_cifar, tmp_path, signal_name,
                                                             status):
    out = tmp_path / "s2"
    args = ["--setting", "a_ns500", "--quick", "--data", tiny_cifar, "--out", out,
            "--no-progress"]
    proc = run("two_layer_cyclic", f"{signal_name}@update:2", *args, "--restart")
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    command = "python -m experiments.two_layer_cyclic " + " ".join(map(str, args))
    assert message.endswith(f"the same command resumes it: `{command}`"), message  # no --restart
    assert f"run state (finished runs, the run in flight at update 2) is kept in {out}" in message
    assert ("Ctrl-C" if signal_name == "INT" else "SIGTERM") in message
    assert not (out / "results.json").exists() and not _no_temporaries(out)
    again = run("two_layer_cyclic", "", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from update 2 of 10 (8 left)" in again.stdout


def test_reproduce_stopped_by_ctrl_c_names_the_same_command_which_resumes(
        tiny_cifar, tmp_path):
    root = tmp_path / "root"
    args = ["--quick", "--only", "S1", "S2", "--data", tiny_cifar, "--out-root", root,
            "--no-progress"]
    proc = run("reproduce", "INT@update:12", *args)   # in S2's 4th run: 30 updates
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    command = "python -m experiments.reproduce " + " ".join(map(str, args))
    assert f"the same command resumes: `{command}`" in message
    assert "two_layer_cyclic resumes its run in flight" in message
    assert (root / "gradcheck_table" / "results.json").exists()  # S1 finished: kept
    assert not (root / "RESULTS.md").exists() and not _no_temporaries(root)
    again = run("reproduce", "", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    # S2 runs each setting on seeds 0, 1, 2: the 4th run (3 cycles, seed 0) was in flight
    assert "[1/9] split (a), lambda 0.01, n_s 5, 1 cycle, seed 0: finished before" in again.stdout
    assert "split (a), lambda 0.01, n_s 5, 3 cycles, seed 0: resumed from update 12" in \
        again.stdout
    assert (root / "RESULTS.md").exists()
