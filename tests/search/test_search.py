"""run_search on tiny problems: planned trials, workers sharing a journal, kill and resume,
failed and pruned trials."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tensorgrad.search import (
    Int,
    LogUniform,
    Refine,
    StorageSpec,
    grid_points,
    run_search,
    span_seconds,
    trial_records,
)
from tensorgrad.search.storage import open_storage
from tests.search import objectives as obj

REPO = Path(__file__).resolve().parents[2]
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def key(params):
    return json.dumps(params, sort_keys=True)


def by_state(records):
    out = {}
    for r in records:
        out.setdefault(r["state"], []).append(r)
    return out


def search(tmp_path, objective, space=obj.SPACE, **kw):
    kw = {"study_name": "s", "sampler": "grid", "pruner": "none", "verbose": False, **kw}
    return run_search(objective, space, storage=tmp_path / "study.journal", **kw)


def run_cli(*args, env=None, timeout=120):
    """python -m tests.search.objectives ARGS: a search in a process of its own."""
    return subprocess.run([sys.executable, "-m", "tests.search.objectives", *map(str, args)],
                          cwd=REPO, env={**os.environ, **ONE_THREAD, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_grid_runs_each_point_once_finds_the_best_and_resumes_as_done(tmp_path, optuna):
    result = search(tmp_path, obj.quadratic)
    assert len(result.records) == 20 and all(r["state"] == "COMPLETE" for r in result.records)
    assert sorted(key(r["params"]) for r in result.records) == \
        sorted(key(p) for p in grid_points(obj.SPACE))
    assert result.best["params"] == {"x": pytest.approx(0.01), "k": 3}
    assert result.best["value"] == pytest.approx(0.0, abs=1e-12)
    assert all(r["started"] <= r["finished"] for r in result.records)
    assert 0 <= span_seconds(result.records) <= result.wall_time + 1
    again = search(tmp_path, obj.quadratic)           # the same call: nothing left to do
    assert [r["number"] for r in again.records] == list(range(20))
    with pytest.raises(ValueError, match="made for another search"):
        search(tmp_path, obj.quadratic, space={"x": LogUniform(1e-4, 1.0, num=3), "k": Int(1, 4)})


def test_random_search_with_a_fine_second_stage(tmp_path, optuna):
    space = {"x": LogUniform(1e-4, 1.0), "k": Int(1, 4)}
    result = search(tmp_path, obj.quadratic, space, sampler="random", trials=12, seed=3,
                    refine=Refine(trials=6, factor=10))
    stages = by_state(result.records)["COMPLETE"]
    coarse = [r for r in stages if r["stage"] == 0]
    fine = [r for r in stages if r["stage"] == 1]
    assert len(coarse) == 12 and len(fine) == 6 and len(result.records) == 18
    for r in coarse:
        assert 1e-4 <= r["params"]["x"] <= 1 and r["params"]["k"] in (1, 2, 3, 4)
    best1 = max(coarse, key=lambda r: r["value"])["params"]
    for r in fine:   # narrowed 10-fold around the coarse best (clipped to the space)
        assert best1["x"] / math.sqrt(10) * (1 - 1e-9) <= r["params"]["x"] \
            <= best1["x"] * math.sqrt(10) * (1 + 1e-9)
        assert abs(r["params"]["k"] - best1["k"]) <= 1
    assert result.stages[1]["study_name"] == "s-fine"
    assert result.best["params"]["k"] == 3                 # the known best
    assert abs(math.log10(result.best["params"]["x"]) + 2) < 0.5
    assert result.best["value"] >= max(r["value"] for r in coarse)


def test_two_worker_processes_on_one_journal_run_exactly_the_budget(tmp_path, optuna,
                                                                     monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    result = search(tmp_path, obj.barrier, sampler="random", trials=10, workers=2)
    assert len(result.records) == 10
    assert all(r["state"] == "COMPLETE" for r in result.records)
    workers = {r["worker"] for r in result.records}
    assert len(workers) == 2 and os.getpid() not in {int(w.split(":")[1]) for w in workers}
    assert {r["user_attrs"]["blas_threads"] for r in result.records} == {"1"}
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"          # this process is untouched


def test_a_killed_search_restarted_ends_with_the_planned_trials(tmp_path, optuna):
    storage = tmp_path / "study.journal"
    first = run_cli("--storage", storage, "--study-name", "k", "--objective", "killer",
                    env={obj.EXIT_AFTER: "3"})
    assert first.returncode == obj.EXIT_CODE, first.stderr[-2000:]
    study = optuna.load_study(study_name="k", storage=open_storage(StorageSpec(storage)))
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 3 + ["RUNNING"]        # lost: only the trial in flight

    second = run_cli("--storage", storage, "--study-name", "k", "--objective", "killer")
    assert second.returncode == 0, second.stderr[-2000:]
    records = trial_records(optuna.load_study(study_name="k", storage=study._storage))
    groups = by_state(records)
    assert sorted(key(r["params"]) for r in groups["COMPLETE"]) == \
        sorted(key(p) for p in grid_points(obj.SPACE))      # every grid point once
    (dead,) = groups["FAIL"]
    assert dead["number"] == 3 and "worker stopped" in dead["reason"]
    retry = records[dead["retried_as"]]
    assert retry["retry_of"] == 3 and retry["params"] == dead["params"]
    assert retry["state"] == "COMPLETE" and len(records) == 21


def test_workers_that_die_are_replaced_and_their_trials_rerun(tmp_path, optuna, monkeypatch):
    monkeypatch.setenv(obj.EXIT_AFTER, "2")    # every worker process dies on its 3rd trial
    result = search(tmp_path, obj.killer, trials=8, workers=2)
    groups = by_state(result.records)
    assert len(groups["COMPLETE"]) == 8
    assert len({key(r["params"]) for r in groups["COMPLETE"]}) == 8
    assert groups["FAIL"] and all(r["retried_as"] is not None for r in groups["FAIL"])
    assert len(result.records) == 8 + len(groups["FAIL"])


def test_a_trial_that_raises_is_failed_with_its_reason_and_the_others_go_on(tmp_path, optuna):
    result = search(tmp_path, obj.picky)
    groups = by_state(result.records)
    assert len(groups["FAIL"]) == 5 and len(groups["COMPLETE"]) == 15
    for r in groups["FAIL"]:
        assert r["params"]["k"] == 2 and r["retried_as"] is None
        assert r["reason"] == "ValueError: k = 2 is not a valid configuration"
    assert result.best["params"] == {"x": pytest.approx(0.01), "k": 3}


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_hopeless_trial_is_pruned_and_a_diverging_one_fails(tmp_path, optuna):
    result = search(tmp_path, obj.tiny_fit, obj.TINY_FIT_SPACE, pruner="median",
                    pruner_options={"n_startup_trials": 2})
    records = {r["params"]["lr"]: r for r in result.records}
    hopeless, diverged = records[0.0], records[1e8]
    # Precondition (grid order of seed 0): the hopeless trial runs after the good ones.
    assert [r["state"] for r in result.records[:3]] == ["COMPLETE"] * 3
    assert hopeless["state"] == "PRUNED"
    assert hopeless["reason"].startswith("pruned at update 10 ")   # at the first measurement
    assert hopeless["user_attrs"]["epochs_run"] == 1 and hopeless["last_reported"] < 0.5
    assert diverged["state"] == "FAIL"
    assert diverged["reason"].startswith("TrainingDiverged: fit: the loss became nan")
    assert all(records[lr]["value"] > 0.85 for lr in (0.1, 0.2, 0.3))
