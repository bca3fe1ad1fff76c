"""The best MLP by the book (experiments/best_mlp.py): a stated set of candidate recipes within
a stated time budget, selected on split b's validation images without ever evaluating on the
test set, then the selected recipe on split c with every seed, with and without flip TTA, and
each run's wall time against the limit. Also the studies' total wall time (parallel)."""
import argparse
import json
import os

import numpy as np
import pytest

from experiments import best_mlp, common, parallel, spec
from experiments.spec import Spec


def test_total_wall_time_skips_quick_results(tmp_path):
    for name, quick, wall in (("a", False, 10.0), ("b", True, 99.0), ("c", False, 5.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(
            json.dumps({"quick": quick, "wall_time_s": wall}))
    total = parallel.total_wall_time(tmp_path)
    assert total == {"studies": {"a": 10.0, "c": 5.5}, "total_s": 15.5}


def test_total_wall_time_counts_a_search_s_trials_of_every_invocation(tmp_path):
    """A search's results.json times only its last invocation (here 60 s, whose trials took
    100 s); its trials, 1000 s and 100 s by their own start and end, are its wall time."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "results.json").write_text(json.dumps({
        "quick": False, "wall_time_s": 70.0, "search": {"wall_time_s": 60.0},
        "trials": [{"started": "2026-12-07T10:00:00", "finished": "2026-12-07T10:16:40"},
                   {"started": "2026-12-07T11:00:00", "finished": "2026-12-07T11:01:40"}]}))
    assert parallel.total_wall_time(tmp_path) == {"studies": {"s": 1110.0}, "total_s": 1110.0}


# --- the candidates and the selection rule ---------------------------------------------------

def test_candidates_change_one_stated_thing_and_fit_the_budget():
    names = list(best_mlp.CANDIDATES)
    assert names[0] == "present" and 2 <= len(names) <= 6
    specs = best_mlp.selection_specs(names, seed=0)
    base = specs[0]
    for name, s in zip(names, specs):
        assert (s.split, s.n_val, s.val_choice, s.seed) == ("b", 5000, "last", 0)
        changed = {f for f in spec.OPTIONS if getattr(s, f) != getattr(base, f)}
        assert changed == set(best_mlp.CANDIDATES[name][1]), name
    # the stated budget holds for the estimate, and each final run leaves a margin under 15 min
    assert sum(best_mlp.estimate_s(s, 45000) for s in specs) <= best_mlp.SELECTION_BUDGET_S
    for name in names:
        final = best_mlp.final_specs(name, [0])[0]
        assert final.split == "c"
        assert best_mlp.estimate_s(final, 50000) <= 0.75 * best_mlp.TIME_LIMIT_S, name
    # the yardstick: the present recipe on 50,000 images is the published runs' mean
    present = best_mlp.final_specs("present", [0])[0]
    assert best_mlp.estimate_s(present, 50000) == pytest.approx(np.mean(best_mlp.REFERENCE_S))
    # --quick keeps the candidates apart
    quick = best_mlp.selection_specs(names, seed=0, quick=True)
    assert len({(tuple(s.hidden()), s.epochs, s.dropout, s.jitter) for s in quick}) == len(names)
    with pytest.raises(ValueError, match="unknown candidate 'huge'"):
        best_mlp.recipe("huge")


def _run(label, **final):
    return {"label": label, "final": final}


def test_select_takes_the_best_validation_accuracy_without_tta_first_on_ties():
    runs = [_run("a", val_acc_plain=0.50, val_acc=0.90), _run("b", val_acc_plain=0.60,
                                                                val_acc=0.10),
            _run("c", val_acc_plain=0.60, val_acc=0.70), _run("d")]
    assert best_mlp.select(runs) == 1
    assert best_mlp.select([_run("a", val_acc=0.4), _run("b", val_acc=0.5)]) == 1  # no TTA
    with pytest.raises(RuntimeError, match=r"\['b'\] were evaluated on it"):
        best_mlp.select([_run("a", val_acc=0.5), _run("b", val_acc=0.6, test_acc=0.6)])
    with pytest.raises(RuntimeError, match="no selection run has a validation accuracy"):
        best_mlp.select([_run("a"), _run("b")])


def test_a_run_told_not_to_test_touches_no_test_number(tiny_cifar):
    args = argparse.Namespace(data=os.fspath(tiny_cifar), quick=True, seed=0)
    data = common.load_data(args, "b")
    s = Spec(widths=[8], schedule="onecycle", epochs=2, batch_size=20, tta=True,
             average_last=1, eval_train=30)
    final = spec.run(s, data, test=False)["final"]
    assert {"val_acc", "val_acc_plain", "val_acc_swa"} <= final.keys()
    assert not [k for k in final if k.startswith("test_")]
    assert {"test_acc", "test_acc_plain", "test_acc_swa"} <= spec.run(s, data)["final"].keys()


def test_a_resumed_runs_time_adds_its_parts():
    run = {"wall_time": 5.0, "eval_time": 2.0, "history": {"wall_time": 40.0},
           "resumed_from": 300}
    assert best_mlp.run_seconds(run) == 42.0
    assert best_mlp.run_seconds(dict(run, resumed_from=None)) == 5.0


# --- the study, in this process with spies ---------------------------------------------------

def _spy(monkeypatch):
    """Record, in order, what each training (fit: its validation data) and each evaluation
    (evaluate: its images) reads, as 'split:part', and when the selection is made."""
    events, loaded = [], []
    real_load, real_fit, real_evaluate, real_select = (common.load_data, spec.fit,
                                                       spec.evaluate, best_mlp.select)

    def part(x):
        if x is None:
            return None
        for d in loaded:
            for name in ("train", "val", "test"):
                xy = getattr(d, name)
                if xy is not None and x is xy[0]:
                    return f"{d.split}:{name}"
        return "other"

    def load(args, split="b", *rest, **kw):
        data = real_load(args, split, *rest, **kw)
        loaded.append(data)
        return data

    def fit(model, optimizer, loader, val_data=None, **kw):
        events.append(("fit", part(None if val_data is None else val_data[0])))
        return real_fit(model, optimizer, loader, val_data=val_data, **kw)

    def evaluate(model, x, y, **kw):
        events.append(("evaluate", part(x)))
        return real_evaluate(model, x, y, **kw)

    def select(runs):
        events.append(("select", None))
        return real_select(runs)
    monkeypatch.setattr(common, "load_data", load)
    monkeypatch.setattr(spec, "fit", fit)
    monkeypatch.setattr(spec, "evaluate", evaluate)
    monkeypatch.setattr(best_mlp, "select", select)
    return events


def _main(tiny_cifar, out, *flags):
    return best_mlp.main(["--quick", "--data", os.fspath(tiny_cifar), "--out", os.fspath(out),
                          "--no-progress", "--workers", "1", *flags])


def test_selection_reads_only_split_b_then_the_selected_recipe_is_tested_on_split_c(
        tiny_cifar, tmp_path, monkeypatch, capsys):
    events = _spy(monkeypatch)
    results = _main(tiny_cifar, tmp_path / "out", "--candidates", "present", "wide",
                    "--seeds", "2")
    out = capsys.readouterr().out
    i = events.index(("select", None))
    before, after = events[:i], events[i + 1:]
    # selection: two trainings measured on split b's validation images, no test image read
    assert [e for e in before if e[0] == "fit"] == [("fit", "b:val")] * 2
    assert {e for e in before if e[0] == "evaluate"} == {("evaluate", "b:val")}
    # final: two trainings on split c (no validation part), each tested plain and with TTA
    assert [e for e in after if e[0] == "fit"] == [("fit", None)] * 2
    assert [e for e in after if e[0] == "evaluate"] == [("evaluate", "c:test")] * 4

    selection = results["selection"]
    assert [r["config"]["split"] for r in selection["runs"]] == ["b", "b"]
    assert all(not [k for k in r["final"] if k.startswith("test_")] for r in selection["runs"])
    chosen = selection["selected"]
    assert chosen in ("present", "wide") and results["final"]["recipe"] == chosen
    scores = [best_mlp._val_plain(r["final"]) for r in selection["runs"]]
    assert chosen == ["present", "wide"][int(scores[1] > scores[0])]
    recipe = best_mlp.recipe(chosen, quick=True)
    for run, seed in zip(results["runs"], (0, 1)):
        cfg = run["config"]
        assert (cfg["split"], cfg["seed"]) == ("c", seed)
        assert {k: cfg[k] for k in recipe} == recipe
        assert {"test_acc", "test_acc_plain"} <= run["final"].keys()

    tta_row, plain_row, select_row, time_row = results["rows"]
    tests = [r["final"]["test_acc"] for r in results["runs"]]
    plains = [r["final"]["test_acc_plain"] for r in results["runs"]]
    assert "flip TTA" in tta_row["label"] and "no TTA" in plain_row["label"]
    assert tta_row["ours"]["test"] == pytest.approx(np.mean(tests))
    assert tta_row["std"]["test"] == pytest.approx(np.std(tests, ddof=1))
    assert plain_row["ours"]["test"] == pytest.approx(np.mean(plains))
    assert plain_row["std"]["test"] == pytest.approx(np.std(plains, ddof=1))
    assert "±" in tta_row["ours_text"] and "±" in plain_row["ours_text"]
    assert f"selected {chosen}" in select_row["ours_text"]
    assert "2 of 2 within 900 s" in time_row["ours_text"]
    assert results["final"]["fits"] == [True, True]
    assert results["final"]["seconds"] == [r["wall_time"] for r in results["runs"]]

    table = (tmp_path / "out" / "table.md").read_text()
    for text in ("**Selection** on split b", "| present", "| wide", "**(selected)**",
                 "The test set was not evaluated", "test (no TTA) | test (flip TTA)",
                 "| <= 900 s |", "| mean ± std (2) |", "| 2 of 2 |", "Data caveat",
                 "all 2 run(s) fit the 900 s limit", "1 worker(s)"):
        assert text in table, text
    full = sum(best_mlp.estimate_s(s, 45000)
               for s in best_mlp.selection_specs(["present", "wide"], 0)) / 60
    assert "time estimate of the full runs (not this --quick one)" in out
    assert f"selection 2 run(s), {full:.1f} min (budget 40 min)" in out
    assert f"selected: {chosen}" in out
    assert "best_mlp_selection.png" in results["plots"]


def test_runs_over_the_limit_are_reported_as_such(tiny_cifar, tmp_path):
    results = _main(tiny_cifar, tmp_path / "out", "--candidates", "wide", "--seeds", "1",
                    "--time-limit", "1e-6")
    assert results["final"]["fits"] == [False]
    assert results["rows"][0]["std"] is None and "±" not in results["rows"][0]["ours_text"]
    assert "0 of 1 within 1e-06 s" in results["rows"][3]["ours_text"]
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| NO |" in table and "1 of 1 run(s) EXCEED" in table


def test_bad_candidate_lists_are_refused(tmp_path, capsys):
    for flags, message in ((["--candidates", "wide", "wide"], "wide given more than once"),
                           (["--candidates", "huge"], "invalid choice: 'huge'")):
        with pytest.raises(SystemExit):
            best_mlp.main([*flags, "--out", os.fspath(tmp_path)])
        err = capsys.readouterr().err
        assert "error: argument --candidates" in err and message in err
