"""Every S6 study end to end in --quick mode on a tiny CIFAR-10: results.json, table.md, plots."""
import json

import pytest

RESULT_KEYS = {"study", "name", "title", "command", "config", "seed", "quick", "versions",
               "started", "wall_time_s", "rows", "runs", "plots", "table"}
PNG = b"\x89PNG\r\n\x1a\n"

# study -> (id, lines expected in table.md, plots expected, runs expected)
EXPECTED = {
    "improvements": ("S6", ["| baseline (S4: BN before ReLU, SGD + cyclic, He) |",
                            "| dropout 0.1 after each hidden layer (R0) |",
                            "| blur 50%, sigma ~ U(0, 0.5) (R0) |",
                            "| batch norm after the activation |", "(43.30)",
                            "| ELU, a = 0.01 (R3) |"],
                     ["s4_deltas.png", "r3_settings.png", "baseline_curves.png"], 3 + 16),
    "architectures": ("S6", ["| h1 50 |", "| h1 55 |", "| 95, 90, 75 |", "| 3-layer | 50-30 |",
                             "| 4-layer | 50-30-20 |", "val 50.6% (R0", "| 64-64 |"],
                      ["r3_grid.png", "r0_depth.png"], 5 + 2 + 2 + 1),
    "final_r0": ("S6", ["| 0 |", "| 52.13 |"], ["final_r0_epochs.png"], 1),
    "best_mlp": ("S6+", ["| 0 |", "| 1 |", "| mean ± std (2) |", "**Selection** on split b"],
                 ["best_mlp_curves.png", "best_mlp_lr.png", "best_mlp_seeds.png",
                  "best_mlp_selection.png"], 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_study_writes_results_table_and_plots(improvement_studies_quick, name):
    out, stdout = improvement_studies_quick[name]
    sid, lines, plots, n_runs = EXPECTED[name]
    results = json.loads((out / "results.json").read_text())
    assert RESULT_KEYS <= results.keys()
    assert results["study"] == sid and results["quick"] is True and results["wall_time_s"] > 0
    assert results["command"].startswith(f"python -m experiments.{name} ")
    assert "--quick" in results["command"]
    assert len(results["runs"]) == n_runs
    assert all(0.0 <= r["final"]["test_acc"] <= 1.0 for r in results["runs"])
    assert results["rows"] and all({"label", "ours_text", "report_text", "delta"} <= r.keys()
                                   for r in results["rows"])
    table = (out / "table.md").read_text()
    assert table.startswith(f"# {sid}. ")
    for line in lines:
        assert line in table, f"{name}: {line!r} missing from table.md"
    assert set(plots) <= set(results["plots"])
    for plot in results["plots"]:
        data = (out / plot).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, plot
    assert "table:" in stdout


def test_improvements_change_exactly_one_thing(improvement_studies_quick):
    folder = improvement_studies_quick["improvements"][0]
    results = json.loads((folder / "results.json").read_text())
    s4 = {r["config"]["tags"]["change"]: r["config"] for r in results["runs"]
          if r["config"]["tags"]["part"] == "s4"}
    base = s4["baseline"]
    differs = {k: {f for f in base if f not in ("label", "tags") and cfg[f] != base[f]}
               for k, cfg in s4.items()}
    assert differs == {"baseline": set(), "dropout": {"dropout"}, "blur": {"blur"}}
    r3 = [r["config"] for r in results["runs"] if r["config"]["tags"]["part"] == "r3"]
    elu = sorted((c["eta"], c["lam"]) for c in r3 if c["tags"]["change"] == "elu")
    assert elu == [(0.008, 1e-6), (0.0129, 1e-4), (0.0349, 1e-5)]
    # the R3 rows carry R3's numbers and a delta
    rows = [r for r in results["rows"] if r["label"].startswith("S6 R3 settings")]
    assert len(rows) == 15 and all(r["delta"] is not None for r in rows)


def test_best_mlp_tests_the_recipe_selected_on_split_b_on_split_c(improvement_studies_quick):
    out, stdout = improvement_studies_quick["best_mlp"]
    results = json.loads((out / "results.json").read_text())
    selection = results["selection"]
    assert [r["config"]["tags"]["recipe"] for r in selection["runs"]] == ["present", "wide"]
    assert {r["config"]["split"] for r in selection["runs"]} == {"b"}
    for run in results["runs"]:
        assert run["config"]["split"] == "c"
        assert run["config"]["tags"]["recipe"] == selection["selected"]
        assert run["wall_time"] >= run["train_time"] > 0
        assert {"test_acc", "test_acc_plain"} <= run["final"].keys()
    assert [r["config"]["seed"] for r in results["runs"]] == [0, 1]
    assert results["final"]["fits"] == [True, True] and results["data_load_s"]
    assert "time estimate" in stdout and "selected: " in stdout


def test_final_r0_uses_r0_recipe_and_test_curve(improvement_studies_quick):
    results = json.loads((improvement_studies_quick["final_r0"][0] / "results.json").read_text())
    cfg = results["runs"][0]["config"]
    assert cfg["dims"] == [3072, 50, 30, 10] and cfg["lam"] == 0.014
    assert cfg["optimizer"] == "adagrad" and cfg["dropout"] == 0.1 and cfg["init"] == "lecun"
    assert (cfg["flip"], cfg["blur"], cfg["blur_sigma"], cfg["cycles"]) == (0.2, 0.5, 0.5, 4)
    metrics = results["runs"][0]["history"]["metrics"]
    assert "test_acc" in metrics and not any(k.startswith("val_") for k in metrics)
    assert results["data"]["split"] == "c"


def test_speed_measures_both_ways(improvement_studies_quick):
    out, stdout = improvement_studies_quick["parallel"]
    speed = json.loads((out / "speed.json").read_text())["speed"]
    modes = [k for k in speed if isinstance(speed[k], dict)]
    assert len(modes) == 2 and speed["faster"] in modes
    assert {speed[m]["workers"] for m in modes} == {1, 2}
    assert all(speed[m]["wall_time_s"] > 0 and len(speed[m]["test_acc"]) == 2 for m in modes)
    assert "faster:" in stdout
