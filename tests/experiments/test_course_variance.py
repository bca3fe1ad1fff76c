"""The course studies S2-S5 with variance and honest pairings: the compared arms share their
seeds and differ only in the compared setting; every row compared with a report is a mean ±
std (ddof=1) over seeds 0, 1, 2 with its per-seed values; differences between arms carry the
spread of their per-seed differences; R2's coarse stage runs in both readings."""
import dataclasses
import json

import numpy as np
import pytest

from experiments import common, init_sensitivity, k_layer_bn, lambda_search, two_layer_cyclic

SEEDS = [0, 1, 2]


def differing(a, b) -> set:
    """The Spec fields in which two runs differ (the label and tags are bookkeeping)."""
    return {f.name for f in dataclasses.fields(a)
            if f.name not in ("label", "tags") and getattr(a, f.name) != getattr(b, f.name)}


def by(specs, **tags):
    return {s.seed: s for s in specs if all(s.tags.get(k) == v for k, v in tags.items())}


def test_s4_arms_share_seeds_and_differ_only_in_batch_norm_or_lambda():
    args = k_layer_bn.build_parser().parse_args([])
    specs = k_layer_bn.main_specs(args)
    assert len(specs) == 5 * 3     # (3, 9 layers) x (BN, no BN), + 3-layer no BN at R1's lambda
    for layers in (3, 9):
        with_bn = by(specs, layers=layers, batch_norm=True, lam="main")
        without = by(specs, layers=layers, batch_norm=False, lam="main")
        assert sorted(with_bn) == sorted(without) == SEEDS
        for seed in SEEDS:
            assert differing(with_bn[seed], without[seed]) == {"batch_norm"}
    r1 = by(specs, layers=3, batch_norm=False, lam="r1")
    main = by(specs, layers=3, batch_norm=False, lam="main")
    assert sorted(r1) == SEEDS and {s.lam for s in r1.values()} == {0.0134}
    assert {s.lam for s in main.values()} == {0.005}
    for seed in SEEDS:
        assert differing(r1[seed], main[seed]) == {"lam"}
        assert r1[seed].label == f"3-layer without BN, lambda 0.0134 (R1's setting), seed {seed}"
    # at R1's lambda the main row is R1's setting: no extra row
    same = k_layer_bn.main_specs(k_layer_bn.build_parser().parse_args(["--r1-lam", "0.005"]))
    assert len(same) == 4 * 3


def test_s5_bn_arms_share_seeds_and_differ_only_in_batch_norm():
    specs = init_sensitivity.build_specs(init_sensitivity.build_parser().parse_args([]))
    assert len(specs) == 4 * 2 * 3
    for init in ("sigma 0.1", "sigma 0.001", "sigma 0.0001", "He"):
        with_bn, without = (by(specs, init=init, batch_norm=bn) for bn in (True, False))
        assert sorted(with_bn) == sorted(without) == SEEDS
        for seed in SEEDS:
            assert differing(with_bn[seed], without[seed]) == {"batch_norm"}


def test_s2_settings_and_s3_finals_run_the_same_three_seeds():
    specs = two_layer_cyclic.build_specs(two_layer_cyclic.build_parser().parse_args([]))
    for name in two_layer_cyclic.SETTINGS:
        assert sorted(s.seed for s in specs if s.tags["setting"] == name) == SEEDS
    args = lambda_search.build_parser().parse_args([])
    stages = lambda_search.stage_settings(args)
    for name in ("r1_best", "r2_final"):
        assert sorted(s.seed for s in lambda_search.stage_specs(name, stages[name], args)) == SEEDS
    for name in ("r2_coarse_45k", "r2_coarse_10k", "r2_fine", "r1_coarse", "r1_fine"):
        assert {s.seed for s in lambda_search.stage_specs(name, stages[name], args)} == {0}


def test_r2_coarse_readings_run_r2s_stated_settings_on_45k_and_10k_images():
    args = lambda_search.build_parser().parse_args([])
    stages = lambda_search.stage_settings(args)
    big, small = (lambda_search.stage_specs(n, stages[n], args) for n in lambda_search.COARSE)
    assert len(big) == len(small) == 10
    for a, b in zip(big, small):   # the same lambdas and updates; only the data differ
        assert differing(a, b) == {"split"} and (a.split, b.split) == ("b", "a")
        assert (a.batch_size, a.n_s, a.cycles) == (100, 450, 2)
        assert a.updates(45000) == 1800 and 1800 // b.per_epoch(10000) == 18   # R2's 18 epochs


@pytest.mark.parametrize("spans, reading, within", [
    ({"r2_coarse_45k": (0.44, 0.52), "r2_coarse_10k": (0.36, 0.465)}, "10k", True),
    ({"r2_coarse_45k": (0.34, 0.47), "r2_coarse_10k": (0.20, 0.30)}, "45k", True),
    ({"r2_coarse_45k": (0.44, 0.52), "r2_coarse_10k": (0.30, 0.50)}, "10k", False),
])
def test_the_coarse_verdict_is_computed_from_the_spans(spans, reading, within):
    text = lambda_search.coarse_verdict(spans)
    assert f"The {reading} reading matches R2's range" in text
    assert ("both ends within 1.5 points" in text) == within
    assert "R2's coarse val range 35.2-46.0%" in text
    assert "r2_coarse_45k val 44.0-52.0% (ends +8.8 / +6.0 points)" in lambda_search.coarse_verdict(
        {"r2_coarse_45k": (0.44, 0.52)})


def results_of(root, name):
    return json.loads((root / name / "results.json").read_text())


COMPARED = {  # study -> the labels' starts of its rows compared with a report over seeds
    "two_layer_cyclic": ("2-layer, split",),
    "lambda_search": ("r1_best:", "r2_final:"),
    "k_layer_bn": ("3-layer with", "9-layer with", "3-layer: with", "9-layer: with"),
    "init_sensitivity": ("3-layer, ",),
}


@pytest.mark.parametrize("name", sorted(COMPARED))
def test_compared_rows_are_mean_and_std_over_three_seeds(quick_run, name):
    root, _, _, _ = quick_run
    results = results_of(root, name)
    rows = [r for r in results["rows"] if r["label"].startswith(COMPARED[name])]
    assert rows
    for row in rows:
        assert row["seeds"] == SEEDS and "(seeds 0, 1, 2)" in row["label"], row["label"]
        for k, values in row["per_seed"].items():
            assert sorted(values) == ["0", "1", "2"]
            mean, std = np.mean(list(values.values())), np.std(list(values.values()), ddof=1)
            assert row["ours"][k] == pytest.approx(mean) and row["std"][k] == pytest.approx(std)
        assert " ± " in row["ours_text"], row
        if row["delta"] is not None:
            assert row["delta_std"] == pytest.approx(100 * row["std"][row["compare"]])
            assert " ± " in row["delta_text"]
    for row in results["rows"]:  # the others are searches or curves, single-seed, and say so
        if row not in rows and name == "lambda_search":
            assert row["seeds"] is None and "single-seed" in row["label"], row["label"]
    table = (root / name / "table.md").read_text()
    assert "ddof=1" in table and "seeds 0, 1, 2" in table


def test_per_seed_values_are_the_runs(quick_run):
    root, _, _, _ = quick_run
    results = results_of(root, "k_layer_bn")
    row = next(r for r in results["rows"] if r["label"] == "9-layer without BN (seeds 0, 1, 2)")
    runs = {r["config"]["seed"]: r["final"]["test_acc"] for r in results["runs"]
            if r["label"].startswith("9-layer without BN, seed")}
    assert {int(s): v for s, v in row["per_seed"]["test"].items()} == runs


@pytest.mark.parametrize("name, delta, a, b", [
    ("k_layer_bn", "3-layer: with BN − without BN, lambda 0.005 (seeds 0, 1, 2)",
     "3-layer with BN (seeds 0, 1, 2)", "3-layer without BN (seeds 0, 1, 2)"),
    ("k_layer_bn", "9-layer: with BN − without BN, lambda 0.005 (seeds 0, 1, 2)",
     "9-layer with BN (seeds 0, 1, 2)", "9-layer without BN (seeds 0, 1, 2)"),
    ("init_sensitivity", "3-layer, He init: with BN − without BN (seeds 0, 1, 2)",
     "3-layer, He init, with BN (seeds 0, 1, 2)", "3-layer, He init, without BN (seeds 0, 1, 2)"),
])
def test_differences_between_arms_carry_the_paired_error_bar(quick_run, name, delta, a, b):
    root, _, _, _ = quick_run
    rows = {r["label"]: r for r in results_of(root, name)["rows"]}
    diff, with_bn, without = rows[delta], rows[a]["per_seed"]["test"], rows[b]["per_seed"]["test"]
    expected = {s: with_bn[s] - without[s] for s in with_bn}
    assert diff["per_seed"]["test"] == pytest.approx(expected)
    mean, std = common.mean_std(expected.values())
    assert diff["ours"]["test"] == pytest.approx(mean) and diff["std"]["test"] == pytest.approx(std)
    assert diff["ours_text"] == f"test {common.points(mean, std)} points (seeds 0, 1, 2)"


def test_s4_compares_r1s_no_bn_number_at_r1s_lambda(quick_run):
    root, _, _, _ = quick_run
    results = results_of(root, "k_layer_bn")
    rows = {r["label"]: r for r in results["rows"]}
    r1 = rows["3-layer without BN, lambda 0.0134 (R1's setting) (seeds 0, 1, 2)"]
    assert r1["report"] == {"test": 0.517} and "at lambda 0.0134" in r1["report_text"]
    main = rows["3-layer without BN (seeds 0, 1, 2)"]
    assert main["report"] is None and "no number for this network at lambda 0.005" in main["note"]
    # R1's 3-layer pair is at two lambdas: no report difference; the 9-layer one is computed
    assert rows["3-layer: with BN − without BN, lambda 0.005 (seeds 0, 1, 2)"]["report"] is None
    nine = rows["9-layer: with BN − without BN, lambda 0.005 (seeds 0, 1, 2)"]
    assert nine["report"]["test"] == pytest.approx(0.510 - 0.466)
    lams = {r["config"]["lam"] for r in results["runs"]
            if r["label"].startswith("3-layer without BN, lambda 0.0134")}
    assert lams == {0.0134}


def test_r2_coarse_rows_name_their_reading_and_the_one_that_matches(quick_run):
    root, _, _, _ = quick_run
    results = results_of(root, "lambda_search")
    rows = {r["label"].split(":")[0]: r for r in results["rows"]}
    assert "split (b)" in rows["r2_coarse_45k"]["label"]
    assert "split (a)" in rows["r2_coarse_10k"]["label"]
    for name in lambda_search.COARSE:
        assert "batch 100, n_s 5, 2 cycles" in rows[name]["label"]
    spans = {}
    for name in lambda_search.COARSE:   # recomputed from the runs, as the study does
        vals = [r["final"]["val_acc"] for r in results["runs"] if r["stage"] == name]
        spans[name] = (min(vals), max(vals))
    verdict = lambda_search.coarse_verdict(spans)
    assert verdict in (root / "lambda_search" / "table.md").read_text()
    assert all(verdict in rows[n]["note"] for n in lambda_search.COARSE)
