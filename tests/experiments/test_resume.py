"""Resumable studies: a study killed with a real SIGKILL (sent by the study process, or a pool
worker, to itself at a point named by the test-only TENSORGRAD_FAULT variable) and re-run with
the same command ends with results bitwise equal to an uninterrupted run; --restart starts
over; a resume under another command or another commit is refused, naming the difference."""
import json
import os
import signal
import subprocess
import sys

import pytest

from experiments import common, runstate
from experiments.spec import Spec
from tests.experiments.conftest import REPO

# the bookkeeping of a run that differs between invocations: times, process, resume point
TIMES = {"wall_time", "train_time", "eval_time", "cpu_time", "worker", "resumed_from",
         "measure_time", "measured_images"}  # timing, and what this process measured
S4 = ["--layers", "3", "--seeds", "1", "--r1-lam", "0.005", "--quick", "--no-progress",
      "--batch-size", "10", "--checkpoint-every", "3"]
# two runs of 20 updates (--r1-lam at --lam: no third run at R1's lambda), 8 per epoch, a
# checkpoint every 3
POOL = ["--seeds", "2", "--workers", "2", "--quick", "--no-progress", "--checkpoint-every", "3",
        "--candidates", "present", "wide"]


def run(name, *args, fault=None, commit=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    for key, value in ((common.ENV_VAR, None), ("TENSORGRAD_FAULT", fault),
                       (runstate.COMMIT_ENV, commit)):
        env.pop(key, None)
        if value is not None:
            env[key] = value
    return subprocess.run([sys.executable, "-m", f"experiments.{name}", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def numbers(out):
    """results.json's rows and runs without their times: what must be bitwise the same."""
    results = json.loads((out / "results.json").read_text())
    runs = [{**{k: v for k, v in r.items() if k not in TIMES},
             "history": {k: v for k, v in r["history"].items() if k != "wall_time"}}
            for r in results["runs"]]
    return results["rows"], runs


def killed(proc):
    return proc.returncode == -signal.SIGKILL


def selected(proc):
    """The recipe best_mlp selected, as it printed it."""
    return [line.split(" (")[0] for line in proc.stdout.splitlines()
            if line.startswith("selected: ")]


def untimed(numbers_):
    """numbers() without best_mlp's wall-time row (its seconds differ between invocations)."""
    rows, runs = numbers_
    return [r for r in rows if "wall time" not in r["label"]], runs


def test_a_study_killed_mid_epoch_mid_write_and_between_runs_resumes_bitwise(tiny_cifar,
                                                                             tmp_path):
    ref = run("k_layer_bn", *S4, "--data", tiny_cifar, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "out"
    args = [*S4, "--data", tiny_cifar, "--out", out]
    first = run("k_layer_bn", *args, fault="KILL@update:5")   # mid-epoch, after checkpoint 3
    assert killed(first), first.stderr[-3000:]
    second = run("k_layer_bn", *args, fault="KILL@write:2")   # writing the checkpoint of 9
    assert killed(second), second.stderr[-3000:]
    assert "3-layer with BN, seed 0: resumed from update 3 of 20 (17 left)" in second.stdout
    third = run("k_layer_bn", *args, fault="KILL@run:1")      # between the two runs
    assert killed(third), third.stderr[-3000:]
    assert "resumed from update 6 of 20 (14 left)" in third.stdout
    last = run("k_layer_bn", *args)
    assert last.returncode == 0, last.stderr[-3000:]
    assert "[1/2] 3-layer with BN, seed 0: finished before" in last.stdout
    assert "resumed from" not in last.stdout          # the second run had not begun
    assert numbers(out) == numbers(tmp_path / "ref")
    assert not [p for p in (out / "state").iterdir() if "tmp" in p.name or p.suffix == ".ckpt"]


def test_a_pool_study_resumes_after_its_workers_and_then_itself_are_killed(tiny_cifar,
                                                                           tmp_path):
    """best_mlp on 2 workers: its selection and its final runs each resume, to the same
    selection and numbers (its wall-time row aside)."""
    ref = run("best_mlp", *POOL, "--data", tiny_cifar, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "out"
    args = [*POOL, "--data", tiny_cifar, "--out", out]
    # candidate present (12 updates) is killed in its worker, wide (8) finishes
    workers = run("best_mlp", *args, fault="KILL@update:10")
    assert workers.returncode == 1 and "1 job(s) unfinished" in workers.stderr, \
        workers.stderr[-3000:]
    main = run("best_mlp", *args, fault="KILL@run:1")         # the study, between runs
    assert killed(main), main.stderr[-3000:]
    assert "candidate wide, split b, seed 0: finished before" in main.stdout
    assert "resumed from update 9 of 12 (3 left)" in main.stdout
    final = run("best_mlp", *args, fault="KILL@run:1")        # after the first final run
    assert killed(final), final.stderr[-3000:]
    assert final.stdout.count(": finished before") == 2 and "selected: " in final.stdout
    last = run("best_mlp", *args)
    assert last.returncode == 0, last.stderr[-3000:]
    assert selected(last) == selected(ref) and len(selected(ref)) == 1
    for label in ("candidate present, split b, seed 0", "candidate wide, split b, seed 0"):
        trained = [p.stdout.count(f"] {label}: train") for p in (workers, main, final, last)]
        assert sum(trained) == 1 and f"] {label}: finished before" in last.stdout, label
    name = selected(ref)[0].removeprefix("selected: ")
    for label in (f"final {name}, split c, seed {s}" for s in (0, 1)):
        # each final run finished once: before the study was killed (its worker may have
        # finished it after), or now
        trained = [p.stdout.count(f"] {label}: train") for p in (final, last)]
        before = last.stdout.count(f"] {label}: finished before")
        assert sum(trained) <= 1 and trained[1] + before == 1, (label, final.stdout,
                                                                 last.stdout)
    assert untimed(numbers(out)) == untimed(numbers(tmp_path / "ref"))


def test_restart_starts_over_and_another_command_or_commit_is_refused(tiny_cifar, tmp_path):
    out = tmp_path / "out"
    args = ["--setting", "a_ns500", "--seeds", "1", "--quick", "--no-progress", "--data",
            tiny_cifar, "--out", out]
    first = run("two_layer_cyclic", *args, commit="commit aaa")
    assert first.returncode == 0, first.stderr[-3000:]
    before = numbers(out)
    other = run("two_layer_cyclic", *args, "--lam", "0.02", commit="commit aaa")
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert "--lam None then, 0.02 now" in other.stderr and "--restart" in other.stderr
    newer = run("two_layer_cyclic", *args, commit="commit bbb")
    assert newer.returncode == 1 and "Traceback" not in newer.stderr
    assert "the code changed: commit aaa then, commit bbb now" in newer.stderr
    same = run("two_layer_cyclic", *args, commit="commit aaa")
    assert same.returncode == 0 and "[1/1] split (a), lambda 0.01, n_s 5, 1 cycle, seed 0: " \
                                    "finished before" in same.stdout
    assert numbers(out) == before   # rewritten from the kept run
    again = run("two_layer_cyclic", *args, "--restart", commit="commit bbb")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished before" not in again.stdout and "resuming" not in again.stdout
    assert numbers(out) == before   # trained again, to the same numbers
    manifest = json.loads((out / "state" / "manifest.json").read_text())
    assert manifest["code"] == "commit bbb" and "--restart" in manifest["command"]


def test_runs_are_keyed_by_their_spec_and_other_runs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(runstate.COMMIT_ENV, "commit aaa")
    assert runstate.spec_key(Spec(seed=1)) == runstate.spec_key(Spec(seed=1))
    assert len({runstate.spec_key(s) for s in (Spec(), Spec(seed=1), Spec(lam=0.01))}) == 3
    flags = {"seed": 0, "progress": True}
    state = runstate.RunState.open(tmp_path / "state", flags, "cmd")
    assert not state.resumed
    state.check_batch([Spec(label="a"), Spec(seed=1, label="b")])
    resumed = runstate.RunState.open(tmp_path / "state", {**flags, "progress": False}, "cmd")
    assert resumed.resumed   # --no-progress changes no number
    with pytest.raises(runstate.ResumeRefused, match=r"run 2 \('b'\): seed 1 then, 2 now"):
        resumed.check_batch([Spec(label="a"), Spec(seed=2, label="b")])
