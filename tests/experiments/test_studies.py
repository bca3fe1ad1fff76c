"""Every study end to end in --quick mode on a tiny CIFAR-10: results.json, table.md, plots."""
import json

import pytest

from tests.experiments.conftest import COURSE_STUDIES, run_module

RESULT_KEYS = {"study", "name", "title", "command", "config", "seed", "quick", "versions",
               "started", "wall_time_s", "rows", "runs", "plots", "table"}
PNG = b"\x89PNG\r\n\x1a\n"

# study -> (id, rows expected in table.md, plots expected)
EXPECTED = {
    "gradcheck_table": ("S1", [f"| {k}-layer {w} BN |" for k in (2, 3, 4, 9)
                               for w in ("with", "without")], []),
    "two_layer_cyclic": ("S2", ["| split (a), lambda 0.01, n_s 5, 1 cycle |",
                                "| split (a), lambda 0.01, n_s 5, 3 cycles |",
                                "| split (b), lambda 0.005, n_s 5, 2 cycles |"],
                         ["a_ns500_curves.png", "a_ns500_lr.png", "b_ns2250_curves.png"]),
    "lambda_search": ("S3", [f"### {s}:" for s in ("r2_coarse_45k", "r2_coarse_10k", "r2_fine",
                                                    "r1_coarse", "r1_fine", "r1_best",
                                                    "r2_final")]
                      + ["### Which reading of R2's coarse stage matches", "| mean ± std |"],
                      ["r2_coarse_45k_search.png", "r2_coarse_10k_search.png",
                       "r1_fine_search.png", "r2_final_curves.png", "r1_best_curves.png"]),
    "k_layer_bn": ("S4", [f"| {k}-layer {w} BN |" for k in (3, 9) for w in ("with", "without")]
                   + ["| 3-layer without BN, lambda 0.0134 (R1's setting) |", "| 9-layer | ",
                      "| 3-layer | 0.01 | He |", "| 3-layer | 0.01 | sigma 0.01 |",
                      "| 2-layer | 0.0002 | He |", "| 2-layer | 0.05 | He |"],
                   ["3layer_bn_curves.png", "9layer_nobn_lr.png", "3layer_nobn_r1lam_curves.png",
                    "bn_deltas.png", "r4_3layer_eta0.01.png", "r4_3layer_eta0.01_sigma0.01.png",
                    "r4_2layer_loss.png"]),
    "init_sensitivity": ("S5", ["| sigma 0.1 |", "| sigma 0.001 |", "| sigma 0.0001 |", "| He |"],
                         ["loss_curves.png", "lr.png", "bn_deltas.png"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_study_writes_results_table_and_plots(quick_run, name):
    root, _, _, _ = quick_run
    sid, table_rows, plots = EXPECTED[name]
    out = root / name
    results = json.loads((out / "results.json").read_text())
    assert RESULT_KEYS <= results.keys()
    assert results["study"] == sid and results["quick"] is True and results["wall_time_s"] > 0
    assert results["command"].startswith(f"python -m experiments.{name} ")
    assert "--quick" in results["command"]
    assert results["rows"] and all({"label", "ours_text", "report_text", "delta"} <= r.keys()
                                   for r in results["rows"])
    table = (out / "table.md").read_text()
    assert table.startswith(f"# {sid}. ")
    for row in table_rows:
        assert row in table, f"{name}: {row!r} missing from table.md"
    assert set(plots) <= set(results["plots"])
    for plot in results["plots"]:
        data = (out / plot).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, plot


def test_training_runs_record_config_history_and_test_accuracy(quick_run):
    root, _, _, _ = quick_run
    results = json.loads((root / "two_layer_cyclic" / "results.json").read_text())
    run = results["runs"][0]
    assert run["config"]["n_s"] == 5 and run["config"]["cycles"] == 1
    assert run["updates"] == 10 and run["history"]["lr_summary"]["updates"] == 10
    assert run["history"]["lr_summary"]["max"] == pytest.approx(0.1)
    assert {"train_acc", "val_acc", "test_acc", "train_cost"} <= run["final"].keys()
    assert run["data"]["sizes"] == {"train": 20, "val": 20, "test": 20}  # split (a), tiny


def test_gradient_check_rows_hold_every_parameter(quick_run):
    root, _, _, _ = quick_run
    results = json.loads((root / "gradcheck_table" / "results.json").read_text())
    nine_bn = next(c for c in results["checks"] if c["layers"] == 9 and c["batch_norm"])
    names = [r["name"] for r in nine_bn["rows"]]
    assert names[:4] == ["W1", "b1", "gamma1", "beta1"] and names[-2:] == ["W9", "b9"]
    for r in nine_bn["rows"]:  # b1..b8 feed a batch norm; b9 (the scores' bias) does not
        assert r["vanishing"] == (r["name"] in {f"b{k}" for k in range(1, 9)}), r


def test_reproduce_writes_results_md_beside_quick_results_only(quick_run):
    root, proc, before, after = quick_run
    assert after == before  # nothing under experiments/results or experiments/RESULTS.md moved
    text = (root / "RESULTS.md").read_text()
    assert "--quick: tiny data" in text
    for sid in ("S1", "S2", "S3", "S4", "S5"):
        assert f"\n## {sid}. " in text
    assert "`python -m experiments.k_layer_bn --r4 " in text
    assert "| 3-layer with BN (seeds 0, 1, 2) |" in text
    assert "Total wall time of the studies" in text


def test_reproduce_reuse_reads_finished_results_without_training(quick_run, tiny_cifar,
                                                                 tmp_path):
    root, _, _, _ = quick_run
    stamp = (root / "k_layer_bn" / "results.json").stat().st_mtime_ns
    proc = run_module("reproduce", "--quick", "--reuse", "--only", *COURSE_STUDIES, "--data",
                      tiny_cifar, "--out-root", root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("reusing") == 5 and "=====" not in proc.stdout
    assert (root / "k_layer_bn" / "results.json").stat().st_mtime_ns == stamp


def test_main_command_prints_progress_test_accuracy_and_plot_paths(tiny_cifar, tmp_path):
    proc = run_module("k_layer_bn", "--layers", "3", "--quick", "--data", tiny_cifar,
                      "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "upd/s" in proc.stderr  # fit's tqdm bar
    out = proc.stdout.rstrip().splitlines()
    assert out[-5] == "Test accuracy (mean ± std over seeds 0, 1, 2):"
    assert out[-4].startswith("  3-layer with BN: ") and " ± " in out[-4]
    assert out[-3].startswith("  3-layer without BN: ")
    assert out[-2].startswith("  3-layer without BN, lambda 0.0134 (R1's setting): ")
    assert out[-1].startswith("  3-layer: with BN − without BN, lambda 0.005 (seeds 0, 1, 2): "
                              "test ") and out[-1].endswith(" points (seeds 0, 1, 2)")
    assert any(line.startswith("plot:") and line.endswith("3layer_bn_curves.png") for line in out)
    assert (tmp_path / "3layer_bn_curves.png").stat().st_size > 5000
    assert (tmp_path / "bn_deltas.png").stat().st_size > 5000


def test_missing_data_fails_with_a_clear_message(tmp_path):
    proc = run_module("two_layer_cyclic", "--quick", "--data", tmp_path / "nowhere", "--out",
                      tmp_path / "out", timeout=60)
    assert proc.returncode != 0
    assert "cifar-10-batches-py" in proc.stderr


def test_reproduce_records_a_failed_study_and_exits_nonzero(tmp_path):
    proc = run_module("reproduce", "--quick", "--only", "S2", "--data", tmp_path / "nowhere",
                      "--out-root", tmp_path / "out", timeout=60)
    assert proc.returncode == 1
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "**Failed**: `python -m experiments.two_layer_cyclic --data " in text
    assert "download=False" in text and "## S1. gradcheck_table\n\nNot run" in text
