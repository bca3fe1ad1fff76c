"""Every S6 study end to end in --quick mode on a tiny CIFAR-10: results.json, table.md, plots;
and the runs the full studies describe (their settings, seeds and pairings), without training."""
import json

import pytest

from experiments import architectures, final_r0, improvements

RESULT_KEYS = {"study", "name", "title", "command", "config", "seed", "quick", "versions",
               "started", "wall_time_s", "rows", "runs", "plots", "table"}
PNG = b"\x89PNG\r\n\x1a\n"

# study -> (id, lines expected in table.md, plots expected, runs expected)
EXPECTED = {
    "improvements": ("S6", ["| baseline: BN before ReLU, He init | — |",
                            "| dropout 0.1 after each hidden layer (R0's keep 0.9) | dropout=0.1 |",
                            "| blur 50%, sigma ~ U(0, 0.5) (R0) | blur=0.5 |",
                            "| batch norm after the activation (R3) | 0.0349 | 1e-05 |",
                            "| 43.30 |", "| ELU, a = 0.01 (R3) | 0.0129 | 0.0001 |",
                            "| 1 | 0.0316 | 0.000155 |", "| 50.86 |"],
                     ["s4_deltas.png", "r3_settings.png", "baseline_curves.png"],
                     3 * 3 + (4 + 3 * 4) * 3 + 3 * 3),
    "architectures": ("S6", ["| h1 50 |", "| h1 55 |", "| 95, 90, 75 |", "| 3-layer | 50-30 |",
                             "| 4-layer | 50-30-20 |", "| 9-layer | 0.081 |",
                             "34.5 (R0's trial 16)", "| 64-64 |"],
                      ["r3_grid.png", "r0_depth.png"], (4 + 3) + 2 + (2 + 2 + 3) + 1),
    "final_r0": ("S6", ["| 0 |", "| 1 |", "| 2 |", "| mean ± std (3 seeds) |", "R0: test 52.13%"],
                 ["final_r0_epochs.png"], 3),
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
          if r["config"]["tags"]["part"] == "s4" and r["config"]["seed"] == 0}
    base = s4["baseline"]
    differs = {k: {f for f in base if f not in ("label", "tags") and cfg[f] != base[f]}
               for k, cfg in s4.items()}
    assert differs == {"baseline": set(), "dropout": {"dropout"}, "blur": {"blur"}}
    r3 = [r["config"] for r in results["runs"] if r["config"]["tags"]["part"] == "r3"]
    elu = sorted({(c["eta"], c["lam"]) for c in r3 if c["tags"]["change"] == "elu"})
    assert elu == [(0.008, 1e-6), (0.0129, 1e-4), (0.0349, 1e-5)]
    # the R3 rows carry R3's numbers and a delta, and their effect against our baseline
    rows = [r for r in results["rows"] if r["label"].startswith("S6 R3 settings")
            and r["report"] is not None]
    assert len(rows) == 12 and all(r["delta"] is not None for r in rows)
    assert all(r["paired"]["against"] == "baseline at the same setting" for r in rows)


def seeds_of(runs, key):
    """{arm: sorted seeds} of runs grouped by key(tags)."""
    arms = {}
    for r in runs:
        arms.setdefault(key(r["config"]["tags"]), []).append(r["config"]["seed"])
    return {arm: sorted(seeds) for arm, seeds in arms.items()}


def test_compared_arms_share_their_seeds(improvement_studies_quick):
    """Every configuration compared with another ran the same seeds 0, 1, 2, and each row
    keeps its per-seed numbers and its mean ± std."""
    results = json.loads((improvement_studies_quick["improvements"][0] / "results.json")
                         .read_text())
    runs = results["runs"]
    arms = seeds_of(runs, lambda t: (t["part"], t["change"] if "change" in t else t["rank"],
                                     t.get("eta"), t.get("lam")))
    assert len(arms) == 3 + 16 + 3 and set(map(tuple, arms.values())) == {(0, 1, 2)}
    for row in results["rows"]:
        assert row["seeds"] == [0, 1, 2], row["label"]
        assert sorted(map(int, row["per_seed"]["test"])) == [0, 1, 2], row["label"]
        assert "(0, 1, 2)" in row["label"] and " ± " in row["ours_text"], row["label"]
    paired = [r for r in results["rows"] if r.get("paired")]
    assert len(paired) == 2 + 12 and all(r["paired"]["std"] is not None for r in paired)
    arch = json.loads((improvement_studies_quick["architectures"][0] / "results.json")
                      .read_text())
    four = [r for r in arch["runs"] if r["config"]["tags"].get("kind") == "four"]
    assert sorted(r["config"]["seed"] for r in four) == [0, 1, 2]
    final = json.loads((improvement_studies_quick["final_r0"][0] / "results.json").read_text())
    assert [r["config"]["seed"] for r in final["runs"]] == [0, 1, 2]
    assert " ± " in final["rows"][0]["ours_text"] and final["rows"][0]["std"]["test"] is not None


def test_rows_are_labelled_with_what_they_ran(improvement_studies_quick):
    results = json.loads((improvement_studies_quick["improvements"][0] / "results.json")
                         .read_text())
    for row in results["rows"]:
        label = row["label"]
        if label.startswith(("S6 R3 settings", "S6 R3 random-search")):
            assert "SGD constant lr" in label and "cyclic" not in label, label
        else:
            assert "SGD cyclic lr 1e-05..0.1" in label and "constant" not in label, label
        if "noise" in label.lower():
            assert "(our choice; R3 gives no fraction)" in label and "std (R3)" not in label
    table = (improvement_studies_quick["improvements"][0] / "table.md").read_text()
    assert "SGD + cyclic" not in table and "0.1 × batch std (our choice" in table
    top = [r for r in results["rows"] if r["label"].startswith("S6 R3 random-search")]
    assert [r["report"]["test"] for r in top] == [0.5086, 0.5069, 0.5086]
    assert all("split c (all 50,000, no val)" in r["label"] for r in top)


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
    for run in results["runs"]:
        cfg = run["config"]
        assert cfg["dims"] == [3072, 50, 30, 10] and cfg["lam"] == 0.014
        assert cfg["optimizer"] == "adagrad" and cfg["dropout"] == 0.1 and cfg["init"] == "lecun"
        assert (cfg["flip"], cfg["blur"], cfg["blur_sigma"], cfg["cycles"]) == (0.2, 0.5, 0.5, 4)
    metrics = results["runs"][0]["history"]["metrics"]
    assert "test_acc" in metrics and not any(k.startswith("val_") for k in metrics)
    assert results["data"]["split"] == "c"
    row = results["rows"][0]
    tests = [r["final"]["test_acc"] for r in results["runs"]]
    assert row["ours"]["test"] == pytest.approx(sum(tests) / 3)
    assert row["per_seed"]["test"] == {str(r["config"]["seed"]): r["final"]["test_acc"]
                                    for r in results["runs"]}


def test_r0_rows_compare_r0_trials_at_their_own_lambda(improvement_studies_quick):
    """R0's 9-layer 34.5% was its trial at lambda 0.081: our row runs that lambda, with its
    seeds, and compares validation with validation."""
    results = json.loads((improvement_studies_quick["architectures"][0] / "results.json")
                         .read_text())
    nine = [r for r in results["rows"] if r["label"].startswith("S6 R0 9-layer")]
    assert len(nine) == 1 and "lambda 0.081" in nine[0]["label"]
    assert nine[0]["report"] == {"val": 0.345} and nine[0]["compare"] == "val"
    runs = [r["config"] for r in results["runs"] if r["config"]["tags"]["part"] == "r0_recipe"
            and r["config"]["depth"] == 9]
    assert sorted((c["lam"], c["seed"]) for c in runs) == [(0.081, 0), (0.081, 1), (0.081, 2)]
    four = [r for r in results["rows"] if r["label"].startswith("S6 R3 4-layer")]
    assert four and all("constant lr 0.0129" in r["label"] and "lambda 0.0001" in r["label"]
                        for r in four)


def test_speed_measures_both_ways(improvement_studies_quick):
    out, stdout = improvement_studies_quick["parallel"]
    speed = json.loads((out / "speed.json").read_text())["speed"]
    modes = [k for k in speed if isinstance(speed[k], dict)]
    assert len(modes) == 2 and speed["faster"] in modes
    assert {speed[m]["workers"] for m in modes} == {1, 2}
    assert all(speed[m]["wall_time_s"] > 0 and len(speed[m]["test_acc"]) == 2 for m in modes)
    assert "faster:" in stdout


# --- the full studies' runs, as described (nothing is trained) --------------------------------

def test_r3_retrained_rows_run_at_r3s_own_settings_with_a_constant_lr():
    args = improvements.build_parser().parse_args([])
    specs = improvements.r3_variants(args)
    top = [s for s in specs if s.tags["part"] == "r3_top3"]
    assert sorted((s.eta, s.lam, s.seed) for s in top) == sorted(
        (eta, lam, seed) for eta, lam in [(0.0316, 1.55e-4), (0.0139, 1.06e-6),
                                          (0.00654, 6.43e-4)] for seed in (0, 1, 2))
    assert all(s.kind() == "constant" and s.epochs == 10 and s.split == "c" for s in top)
    assert all(s.optimizer == "sgd" and s.bn_position == "before" for s in top)


def test_each_r3_change_has_a_baseline_at_its_setting_and_seeds():
    """The 'BN after the activation' comparison (and every other R3 change) is paired: for each
    of its runs, the baseline ran at the same (eta, lambda) and seed, differing in that only."""
    args = improvements.build_parser().parse_args([])
    specs = [s for s in improvements.r3_variants(args) if s.tags["part"] == "r3"]
    base = {(s.eta, s.lam, s.seed): s for s in specs if s.tags["change"] == "baseline"}
    for s in specs:
        if s.tags["change"] == "baseline":
            continue
        b = base[(s.eta, s.lam, s.seed)]
        assert set(improvements.differences(s, b).split(", ")) == {
            f"{k}={v!r}" for k, v in improvements.CHANGES[s.tags["change"]][1].items()
            if getattr(b, k) != v}
    after = sorted((s.eta, s.lam) for s in specs if s.tags["change"] == "bn_after"
                   and s.seed == 0)
    assert after == [(0.008, 1e-6), (0.0129, 1e-5), (0.0349, 1e-5)]
    assert {s.kind() for s in specs} == {"constant"} and {s.epochs for s in specs} == {10}


def test_full_studies_run_every_compared_configuration_with_seeds_0_1_2():
    args = improvements.build_parser().parse_args([])
    specs = improvements.s4_variants(args) + improvements.r3_variants(args)
    assert len(specs) == 13 * 3 + 16 * 3 + 3 * 3
    assert len({(s.label, s.seed) for s in specs}) == len(specs)
    cells = {}
    for s in specs:
        cells.setdefault(tuple(sorted((k, str(v)) for k, v in s.tags.items())), []).append(s.seed)
    assert {tuple(v) for v in cells.values()} == {(0, 1, 2)}
    arch = architectures.build_parser().parse_args([])
    r0 = architectures.variants_of(arch, "r0_recipe")
    assert sorted((s.depth, s.seed) for s in r0 if s.lam == 0.081) == [(9, 0), (9, 1), (9, 2)]
    assert sorted(s.seed for s in r0 if s.depth == 3) == [0, 1, 2]
    assert len(r0) == len({improvements.describe(s) + str(s.seed) for s in r0}) == 7 + 2 + 3
    r3 = architectures.variants_of(arch, "r3")
    assert {(s.eta, s.lam) for s in r3} == {(0.0129, 1e-4)}
    four = [s for s in r3 if s.tags["kind"] == "four"]
    assert sorted((tuple(s.hidden()), s.seed) for s in four) == sorted(
        (h, seed) for h in [(95, 90, 75), (85, 35, 25), (95, 45, 40)] for seed in (0, 1, 2))
    assert len(r3) == 11 * 4 + 9
    assert final_r0.build_parser().parse_args([]).seeds == 3


def test_stats_drop_a_diverged_seed_from_both_arms():
    # a diverged run (None) drops its seed from both arms
    assert improvements.paired({0: 0.5, 1: None}, {0: 0.4, 1: 0.4}) == pytest.approx((0.1, None))
    assert improvements.stats({0: None}) == (None, None)
