"""python -m experiments.search end to end on a tiny CIFAR-10: two workers, outputs, resume;
Ctrl-C and SIGTERM end it with one message and the command that resumes."""
import json
import os
import shlex
import signal
import subprocess
import sys

import pytest

from experiments import common, search
from tensorgrad.search import StorageSpec
from tensorgrad.search.storage import open_storage
from tests.experiments.conftest import REPO, run_module
from tests.search.test_faults import live_workers, wait_for
from tests.search.test_search import key

PNG = b"\x89PNG\r\n\x1a\n"


def test_search_command_runs_two_workers_writes_outputs_and_continues(tiny_cifar, tmp_path,
                                                                      optuna):
    spec = tmp_path / "lam.json"
    spec.write_text(json.dumps({
        "space": {"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
                  "optimizer": {"type": "choice", "values": ["sgd", "adagrad"]}},
        "fixed": {"split": "a", "widths": "16"}, "sampler": "random", "trials": 4,
        "refine": {"trials": 2, "factor": 4}}))
    out = tmp_path / "out"
    args = ["--space", spec, "--workers", "2", "--quick", "--data", tiny_cifar, "--out", out,
            "--no-progress", "--pruner", "none"]
    proc = run_module("search", *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    trials = results["trials"]
    assert [t["stage"] for t in trials] == [0] * 4 + [1] * 2
    assert all(t["state"] == "COMPLETE" for t in trials)
    assert len({t["worker"] for t in trials}) >= 1 and results["search"]["workers"] == 2
    assert results["best"]["value"] == max(t["value"] for t in trials)
    assert 0 < results["search"]["span_s"] <= results["wall_time_s"]
    final = results["runs"][0]
    assert final["data"]["split"] == "b" and "test_acc" in final["final"]
    assert final["config"]["lam"] == results["best"]["params"]["lam"]
    table = (out / "table.md").read_text()
    assert "Top 10" in table and "| rank | trial | lam | optimizer | val % |" in table
    for name in ("params.png", "best_so_far.png", "final_curves.png"):
        assert name in results["plots"] and (out / name).read_bytes().startswith(PNG)
    assert (out / "study.journal").exists()

    again = run_module("search", *args, "--no-final")      # the same study: nothing to redo
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert " COMPLETE:" not in again.stdout and "done: 4 complete" in again.stdout
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 6


def test_a_search_without_quick_loads_its_data_as_full_runs_do(tiny_cifar, tmp_path, optuna):
    """The path every full search takes: trials and final run read the data with --seed (R0's
    random validation choice) through common.data_args; --quick never reached it."""
    spec = tmp_path / "lam.json"
    spec.write_text(json.dumps({
        "space": {"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-1}},
        "fixed": {"split": "b", "n_val": 20, "val_choice": "random", "widths": "16",
                  "batch_size": 20, "n_s": 4, "cycles": 1},
        "final": {"split": "b"}, "sampler": "random", "trials": 2}))
    out = tmp_path / "out"
    proc = run_module("search", "--space", spec, "--workers", "1", "--data", tiny_cifar, "--out",
                      out, "--no-progress", "--pruner", "none")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [t["state"] for t in results["trials"]] == ["COMPLETE"] * 2
    assert "test_acc" in results["runs"][0]["final"]


def test_search_command_rejects_unknown_options(tiny_cifar, tmp_path, optuna):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"learning_rate": {"type": "loguniform", "low": 1e-3,
                                                  "high": 1e-1}}))
    proc = run_module("search", "--space", spec, "--quick", "--data", tiny_cifar, "--out",
                      tmp_path / "o", "--trials", "2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "['learning_rate'] are not training options" in proc.stderr


def test_a_space_the_options_cannot_take_is_refused_before_the_first_trial(tiny_cifar, tmp_path,
                                                                          optuna):
    spec = tmp_path / "depth.json"   # depth 2..5 beside the default widths '50-50' (3 layers)
    spec.write_text(json.dumps({"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
                                "depth": {"type": "int", "low": 2, "high": 5}}))
    out = tmp_path / "o"
    proc = run_module("search", "--space", spec, "--quick", "--data", tiny_cifar, "--out", out,
                      "--trials", "2", "--no-progress")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "depth=2" in last and "does not match widths '50-50'" in last, last
    assert not (out / "study.journal").exists()


def test_a_search_whose_every_trial_failed_exits_non_zero(tiny_cifar, tmp_path, optuna):
    spec = tmp_path / "lam.json"
    spec.write_text(json.dumps({"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-3}}))
    out = tmp_path / "o"   # learning rates up to 1e12 without batch norm: every trial diverges
    proc = run_module("search", "--space", spec, "--quick", "--data", tiny_cifar, "--out", out,
                      "--trials", "2", "--no-progress", "--pruner", "none", "--set",
                      "eta_max=1e12", "--set", "batch_norm=false", "--set", "split=a",
                      "--set", "widths=16")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RuntimeError" not in proc.stderr   # (Optuna logs each failed trial's traceback)
    last = proc.stderr.strip().splitlines()[-1]
    assert "no trial completed" in last and "2 failed" in last, last
    results = json.loads((out / "results.json").read_text())
    assert results["best"] is None and [t["state"] for t in results["trials"]] == ["FAIL"] * 2


def test_r4_grid_retrains_its_top_three_and_compares_test_with_test(tiny_cifar, tmp_path,
                                                                   optuna):
    """S7: the three best configurations of the search (on split a) are retrained on split b
    and tested; each row sets that test accuracy against R4's test accuracy of the same rank."""
    out = tmp_path / "r4"
    proc = run_module("search", "--space", "r4_grid", "--quick", "--trials", "4",
                      "--fine-trials", "0", "--data", tiny_cifar, "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    best = sorted((t for t in results["trials"] if t["state"] == "COMPLETE"),
                  key=lambda t: (-t["value"], t["stage"], t["number"]))[:3]
    finals = results["runs"]
    assert [f["rank"] for f in finals] == [1, 2, 3]
    assert [f["params"] for f in finals] == [t["params"] for t in best]
    for f, t in zip(finals, best):
        assert f["data"]["split"] == "b" and 0 <= f["final"]["test_acc"] <= 1
        assert (f["config"]["eta"], f["config"]["lam"]) == (t["params"]["eta"], t["params"]["lam"])
    rows = results["rows"]
    assert [r["compare"] for r in rows] == ["test"] * 3
    assert [r["report"] for r in rows] == [{"test": 0.418}, {"test": 0.4157}, {"test": 0.412}]
    assert [r["ours"]["test"] for r in rows] == [f["final"]["test_acc"] for f in finals]
    assert all("retrained on split b" in r["label"] and "split not stated" in r["report_text"]
               for r in rows)
    table = (out / "table.md").read_text()
    assert "One seed (0)" in table and "R4 does not state its split" in table


def test_r0_tpe_table_states_its_pruner_lambda_floor_and_validation_split():
    preset = search.load_preset("r0_tpe")
    fixed = {**preset["fixed"], "seed": 0}
    o = search.options(fixed)
    opts = search.pruner_options("median", o, preset["space"], 45000)
    text = search.setting_text(preset, preset["space"], fixed, "tpe", "median", opts, None, 1,
                               "c")
    assert "Pruner: median (Optuna's MedianPruner)" in text and "not before update 4500" in text
    assert "lam log-uniform from 0.01 (the floor) to 0.08" in text
    assert "validated on the last 5,000 training images" in text
    assert "R0's validation images were the random 5,000, ours the last 5,000" in text
    assert text.startswith("One seed (0): a search")


def start_module(name, *args):
    """run_module's command, started in a session of its own (a terminal's Ctrl-C reaches its
    whole process group) and not waited for."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop(common.ENV_VAR, None)
    return subprocess.Popen([sys.executable, "-m", f"experiments.{name}", *map(str, args)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def slow_search(tiny_cifar, tmp_path, trials=10):
    """The arguments of a search whose trials take about a second each."""
    spec = tmp_path / "lam.json"
    spec.write_text(json.dumps({
        "space": {"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-1}},
        "fixed": {"split": "a", "widths": "16", "cycles": 10}, "sampler": "random",
        "trials": trials}))
    return ["--space", spec, "--workers", "2", "--quick", "--data", tiny_cifar, "--out",
            tmp_path / "out", "--no-progress", "--pruner", "none", "--no-final"]


def load(optuna, journal, name="lam"):
    """The study, or None before it exists."""
    if not journal.exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=open_storage(StorageSpec(journal)))
    except KeyError:
        return None


def completed_in_journal(optuna, journal):
    """{number: (params, value)} of the study's completed trials."""
    study = load(optuna, journal)
    return {} if study is None else {t.number: (key(t.params), t.value) for t in study.trials
                                     if t.state.name == "COMPLETE"}


def stop_when_one_trial_is_done(proc, optuna, journal, sig, group):
    """Send sig (to the process group if `group`) once a trial has completed; returns the
    completed trials at that moment and the process's (stdout, stderr)."""
    try:
        wait_for(lambda: completed_in_journal(optuna, journal), proc)
        before = completed_in_journal(optuna, journal)
        (os.killpg if group else os.kill)(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return before, out, err


def test_ctrl_c_ends_the_search_with_one_message_and_the_same_command_resumes(
        tiny_cifar, tmp_path, optuna):
    args = slow_search(tiny_cifar, tmp_path)
    journal = tmp_path / "out" / "study.journal"
    proc = start_module("search", *args)
    before, out, err = stop_when_one_trial_is_done(proc, optuna, journal, signal.SIGINT,
                                                   group=True)
    assert proc.returncode == 130, out[-3000:] + err[-3000:]
    assert "Traceback" not in err and "[W " not in err                 # nor Optuna's warnings
    message, command = err.splitlines()[-2:]
    assert message.startswith("interrupted (Ctrl-C): ") and f"journal file {journal}" in message
    assert command == "  python -m experiments.search " + shlex.join(map(str, args))
    assert not live_workers(load(optuna, journal))

    again = run_module("search", *args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    trials = json.loads((tmp_path / "out" / "results.json").read_text())["trials"]
    done = {t["number"]: (key(t["params"]), t["value"]) for t in trials
            if t["state"] == "COMPLETE"}
    assert len(done) == 10 and all(done[n] == v for n, v in before.items())
    for t in trials:   # the trials in flight (recorded as interrupted, or left RUNNING if the
        if t["state"] == "FAIL":   # interruption came between two calls to Optuna): re-run
            assert t["retried_as"] is not None, t


def test_sigterm_stops_the_search_and_its_workers_with_exit_143(tiny_cifar, tmp_path, optuna):
    args = slow_search(tiny_cifar, tmp_path)
    journal = tmp_path / "out" / "study.journal"
    proc = start_module("search", *args)
    _, out, err = stop_when_one_trial_is_done(proc, optuna, journal, signal.SIGTERM,
                                              group=False)
    assert proc.returncode == 143, out[-3000:] + err[-3000:]
    assert "Traceback" not in err and "[W " not in err
    assert err.splitlines()[-2].startswith("stopped (SIGTERM): ")
    assert f"journal file {journal}" in err
    assert not live_workers(load(optuna, journal))     # the workers were stopped too


@pytest.mark.parametrize("sampler", ["grid", "random", "tpe"])
def test_a_killed_one_worker_search_resumes_to_the_same_trials_and_final_run(
        tiny_cifar, tmp_path, optuna, sampler):
    """Each finished trial equals a fresh run of its parameters and seed: a trial lost to a
    SIGKILL is run again from its start, so with one worker and a seeded sampler the resumed
    study is the uninterrupted one; the final run, killed after its checkpoint, resumes. Random
    and TPE draw each trial from (seed, trials finished), not from a worker's running state."""
    spec = tmp_path / "space.json"
    lam = {"type": "loguniform", "low": 1e-4, "high": 1e-2}
    spec.write_text(json.dumps({
        "space": {"lam": {**lam, "num": 3} if sampler == "grid" else lam},
        "fixed": {"split": "a", "widths": "16"}, "sampler": sampler, "pruner": "none",
        **({} if sampler == "grid" else {"trials": 3})}))

    def search(out, fault=""):
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MPLBACKEND="Agg", TENSORGRAD_FAULT=fault)
        env.pop(common.ENV_VAR, None)
        return subprocess.run(
            [sys.executable, "-m", "experiments.search", "--space", spec, "--workers", "1",
             "--quick", "--data", tiny_cifar, "--out", out, "--no-progress"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    def trials(out):
        results = json.loads((out / "results.json").read_text())
        final = {k: v for k, v in results["runs"][0].items()
                 if k not in {"wall_time", "train_time", "eval_time", "cpu_time",
                              "resumed_from", "measure_time", "measured_images"}}
        final["history"].pop("wall_time")
        return {key(t["params"]): t["value"] for t in results["trials"]
                if t["state"] == "COMPLETE"}, final

    ref = search(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "out"
    for fault in ("KILL@update:5", "KILL@saved:20"):   # in the first trial; in the final run
        proc = search(out, fault)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    last = search(out)
    assert last.returncode == 0, last.stderr[-3000:]
    assert "best configuration, retrained: resumed from update 20 of 20 (0 left)" in last.stdout
    assert trials(out) == trials(tmp_path / "ref") and len(trials(out)[0]) == 3
