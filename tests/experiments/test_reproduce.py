"""python -m experiments.reproduce: the time estimate, resumable parts, and what RESULTS.md
records (commit, machine, versions, wall times with the searches' trials, the data caveat, no
private path, and gaps explained only by notes whose backing runs exist)."""
import json
import re

import pytest

from experiments import common, reproduce, search, spec
from tests.experiments.conftest import run_module

# ---------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------


def _estimates(stdout: str) -> dict:
    """{part folder: minutes} and 'total' from the printed estimate."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"\s+(?:S\S+ (\w+):.*->|(total):) about ([\d.]+) (min|h)", line)
        if m:
            out[m.group(1) or m.group(2)] = float(m.group(3)) * (60 if m.group(4) == "h" else 1)
    return out


def test_estimate_is_printed_and_scales_with_the_parts_chosen(tiny_cifar, tmp_path):
    root = tmp_path / "root"
    args = ["--estimate", "--data", tiny_cifar, "--out-root", root, "--no-progress"]
    one = run_module("reproduce", *args, "--only", "S2")
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    assert "Time estimate of the full run (an estimate, not a measurement" in one.stdout
    assert "ratio of the full run's updates to the quick run's" in one.stdout
    assert one.stdout.count("=====") == 1  # S2 had no quick timing: run with --quick first
    assert (root / "quick" / "two_layer_cyclic" / "results.json").is_file()
    assert not (root / "two_layer_cyclic").exists()  # nothing full ran
    first = _estimates(one.stdout)
    assert set(first) == {"two_layer_cyclic", "total"} and first["total"] > 0

    two = run_module("reproduce", *args, "--only", "S2", "S5")
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert two.stdout.count("=====") == 1  # S2's quick timing is read again, S5's made
    both = _estimates(two.stdout)
    assert set(both) == {"two_layer_cyclic", "init_sensitivity", "total"}
    assert both["two_layer_cyclic"] == first["two_layer_cyclic"]
    assert both["total"] > first["total"]
    assert both["total"] == pytest.approx(both["two_layer_cyclic"] + both["init_sensitivity"],
                                          abs=0.11)


def test_updates_are_counted_from_the_studys_specs_without_training(tmp_path):
    count = reproduce.count_updates("k_layer_bn", ["--layers", "3", "--bn", "--seeds", "2",
                                                   "--out", str(tmp_path / "k")])
    per_run = spec.Spec(n_s=2250, cycles=2).updates(45000)
    # 20 measurements a run (every 450 updates: 10 a cycle) of 45,000 + 5,000 images
    assert count == {"runs": 2, "updates": 2 * per_run, "measured_images": 2 * 20 * 50000,
                     "complete": True}
    assert not list((tmp_path / "k").glob("*.png"))  # nothing drawn to disk, nothing trained


@pytest.mark.parametrize("part", [name for name, _, sid, _ in reproduce.STUDIES if sid != "S1"])
def test_every_part_is_counted_to_its_end(tmp_path, part):
    """The dry run of each part's full invocation, as reproduce runs it, reaches the study's
    end (a study reading a field the placeholder results lack would stop it early)."""
    _, module, _, extra = next(s for s in reproduce.STUDIES if s[0] == part)
    args = reproduce.build_parser().parse_args([])
    count = reproduce.count_updates(module, reproduce.full_argv(extra, args, tmp_path / part))
    assert count["complete"] and "stopped" not in count, count
    assert count["runs"] > 0 and count["updates"] > 0


def test_a_searchs_trials_and_final_run_are_counted(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({
        "space": {"lam": {"type": "loguniform", "low": 1e-3, "high": 1e-1, "num": 3}},
        "fixed": {"split": "a", "eta": 0.01, "epochs": 2}, "sampler": "grid",
        "pruner": "none"}))
    count = reproduce.count_updates("search", ["--space", str(space), "--out",
                                               str(tmp_path / "s")])
    # 3 trials of 2 epochs on split a (100 updates each), then the best retrained on split b
    # the trials are timed whole; the final run measures once an epoch (constant eta) its
    # search.TRAIN_EVAL training images and the 5,000 validation images
    assert count == {"runs": 4, "updates": 3 * 2 * 100 + 2 * 450,
                     "measured_images": 2 * (search.TRAIN_EVAL + 5000), "complete": True}
    assert not (tmp_path / "s" / "study.journal").exists()


def test_estimate_scales_the_training_share_of_the_quick_run():
    quick = {"wall": 10.0, "train": 4.0, "updates": 100, "started": None}
    assert reproduce.estimate_seconds(quick, 100) == 10.0
    assert reproduce.estimate_seconds(quick, 1000) == pytest.approx(6.0 + 40.0)
    assert reproduce.estimate_seconds(dict(quick, updates=0), 1000) == 10.0  # no training
    # 3 of the 4 training seconds measured 600 images: the updates (1 s) scale by the updates,
    # the measurements by the images, and the rest (6 s) is counted once
    measured = dict(quick, measure=3.0, measured_images=600)
    assert reproduce.estimate_seconds(measured, 1000, 60000) == pytest.approx(6.0 + 10.0 + 300.0)


def test_a_quick_run_s_measurements_are_timed_apart_from_its_updates():
    runs = [{"updates_done": 50, "train_time": 2.0, "measure_time": 1.5, "measured_images": 300},
            {"updates_done": 50, "train_time": 2.0, "measure_time": 1.5, "measured_images": 300}]
    timing = reproduce.quick_timing({"runs": runs, "wall_time_s": 10.0, "config": {}})
    assert (timing["train"], timing["measure"], timing["updates"],
            timing["measured_images"]) == (4.0, 3.0, 100, 600)


def test_a_plain_run_says_when_no_quick_timing_is_available(tmp_path, capsys):
    args = reproduce.build_parser().parse_args(["--data", str(tmp_path)])
    assert reproduce.print_estimate({"two_layer_cyclic"}, args, tmp_path / "quick",
                                    run_missing=False) is None
    out = capsys.readouterr().out
    assert "S2 two_layer_cyclic: no quick timing" in out
    assert "`python -m experiments.reproduce --estimate --only two_layer_cyclic`" in out


# ---------------------------------------------------------------------------------------------
# Resumable parts
# ---------------------------------------------------------------------------------------------


def test_only_runs_those_parts_and_a_second_invocation_resumes(tiny_cifar, tmp_path):
    root = tmp_path / "root"
    args = ["--quick", "--only", "two_layer_cyclic", "--data", tiny_cifar, "--out-root", root,
            "--no-progress"]
    first = run_module("reproduce", *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    made = {p.name for p in root.iterdir() if p.is_dir()}
    assert made == {"two_layer_cyclic"}
    assert "Time estimate" not in first.stdout  # quick runs are not estimated
    again = run_module("reproduce", *args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    runs = len(json.loads((root / "two_layer_cyclic" / "results.json").read_text())["runs"])
    assert again.stdout.count("finished before, result kept") == runs > 0  # none trained again
    assert "resumed from update" not in again.stdout
    reuse = run_module("reproduce", *args, "--reuse")
    assert reuse.returncode == 0
    assert "S2: reusing" in reuse.stdout and "=====" not in reuse.stdout


def test_only_refuses_an_unknown_part():
    with pytest.raises(ValueError, match="unknown part 'S9'"):
        reproduce.selected(["S9"])
    assert reproduce.selected(["S6+", "search_r4_grid"]) == {"best_mlp", "search_r4_grid"}


# ---------------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------------


def _results(name, sid, rows, wall, tmp_path, **extra) -> dict:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return {"study": sid, "name": name, "title": f"title of {name}", "quick": False,
            "command": f"TENSORGRAD_DATA=/work/cifar python -m experiments.{name} --data "
                       f"/home/someone/cifar --out /work/runs/{name}",
            "versions": common.versions(), "code": common.code_trees(), "wall_time_s": wall,
            "rows": rows, "runs": [], "_dir": str(folder), **extra}


def _search(tmp_path) -> dict:
    """A search resumed after its 2,000 s of trials: its last invocation took 10 s."""
    trials = [{"started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:16:40",
               "duration_s": 1000.0},
              {"started": "2026-01-01T00:08:20", "finished": "2026-01-01T00:33:20",
               "duration_s": 1500.0}]
    row = common.result_row("S6 r0_tpe: best trial", {"val": 0.5}, {"val": 0.506},
                            compare="val")
    return _results("search_r0_tpe", "S6", [row], 10.0, tmp_path, trials=trials,
                    search={"wall_time_s": 0.2, "span_s": 2000.0, "trial_seconds": 2500.0})


def test_results_md_records_commit_machine_versions_wall_times_and_the_caveat(tmp_path):
    row = common.result_row("3-layer with BN (3 seeds)", {"test": 0.53}, {"test": 0.532})
    everything = {"k_layer_bn": _results("k_layer_bn", "S4", [row], 60.0, tmp_path),
                  "search_r0_tpe": _search(tmp_path)}
    path = reproduce.write_report(tmp_path / "RESULTS.md", everything,
                                  "python -m experiments.reproduce --data /work/cifar", False,
                                  5.0)
    text = path.read_text()
    head = common.code_trees()["commit"]
    assert f"from commit {head}." in text and f"commit {head} (k_layer_bn, search_r0_tpe)" in text
    v = common.versions()
    assert f"Machine: {v['cpu']}, {v['cpus']} cores" in text
    assert f"Python {v['python']}, numpy {v['numpy']} (BLAS threads: " in text
    # 60 s + the search: 10 s - 0.2 s of search in its last invocation + 2,000 s of trials
    assert "Total wall time of the studies: 34.5 min, searches' trials included" in text
    assert "S4 1.0 min, S6 33.5 min" in text
    assert "its search's trials included (33.3 min by their own start and end times" in text
    assert "quality-75 JPEGs" in text and "data_batch_1" in text and "last 5,000" in text
    assert ("TENSORGRAD_DATA=<data> python -m experiments.k_layer_bn --data <data> --out <out>"
            in text)
    assert "/work/" not in text and "/home/" not in text


def test_a_flagged_row_is_explained_only_by_a_note_whose_backing_row_exists(tmp_path,
                                                                           monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "NOTES", {
        ("k_layer_bn", "3-layer without BN"): reproduce.Note(
            "at R1's lambda S5 gets {0.test}%", (("init_sensitivity", "He, without BN"),))})
    gap = common.result_row("3-layer without BN (3 seeds)", {"test": 0.49}, {"test": 0.517})
    other = common.result_row("9-layer without BN (3 seeds)", {"test": 0.40}, {"test": 0.466})
    close = common.result_row("3-layer with BN (3 seeds)", {"test": 0.53}, {"test": 0.532})
    s4 = _results("k_layer_bn", "S4", [gap, other, close], 60.0, tmp_path)
    text = reproduce.write_report(tmp_path / "a.md", {"k_layer_bn": s4}, "reproduce", False,
                                  1.0).read_text()
    assert ("| 3-layer without BN (3 seeds) | test 49.0 | test 51.7 | -2.7 (!) | unexplained |"
            in text)
    assert ("- 3-layer without BN (3 seeds): unexplained (note's backing run missing: "
            "init_sensitivity / He, without BN)." in text)
    assert "- 9-layer without BN (3 seeds): unexplained." in text
    assert "| 3-layer with BN (3 seeds) | test 53.0 | test 53.2 | -0.2 | within 1.5 |" in text
    assert "backing run missing" in capsys.readouterr().err  # printed too

    backing = common.result_row("He, without BN", {"test": 0.503}, {"test": 0.5166},
                                std={"test": 0.002})
    s5 = _results("init_sensitivity", "S5", [backing], 60.0, tmp_path)
    text = reproduce.write_report(tmp_path / "b.md", {"k_layer_bn": s4, "init_sensitivity": s5},
                                  "reproduce", False, 1.0).read_text()
    assert "| -2.7 (!) | explained |" in text
    assert "- 3-layer without BN (3 seeds): at R1's lambda S5 gets 50.30 ± 0.20%." in text
    assert "| test 50.3 ± 0.2 | test 51.7 | -1.4 ± 0.2 | within 1.5 |" in text  # its error bar


def test_notes_type_no_accuracy_by_hand_and_name_their_backing_rows():
    for key, note in reproduce.NOTES.items():
        assert note.backing, key
        assert not re.search(r"\d\s?%|\d\.\d+ points", note.text), (key, note.text)


def test_public_command_hides_private_paths():
    command = ("TENSORGRAD_DATA=/work/cifar python -m experiments.search --space r0_tpe --data "
               "~/cifar --out /tmp/x/search --storage postgresql://u:pw@h/db --out-root="
               f"{common.REPO / 'runs'}")
    assert common.public_command(command) == (
        "TENSORGRAD_DATA=<data> python -m experiments.search --space r0_tpe --data <data> "
        "--out <out> --storage <storage> --out-root=runs")


def _quick_results(folder, wall=3.0, train=2.0, updates=60):
    """A stored quick run's results.json: one run of `updates` updates."""
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "quick": True, "started": "2026-01-01T00:00:00+00:00", "wall_time_s": wall,
        "config": {}, "runs": [{"updates_done": updates, "train_time": train}]}))


def test_a_plain_run_prints_the_estimate_from_a_stored_quick_timing_first(tmp_path, capsys,
                                                                           monkeypatch):
    _quick_results(tmp_path / "quick" / "two_layer_cyclic")
    ran = []

    def run_part(name, *args, **kwargs):
        ran.append(name)
        print("RUNNING", name)
        return {"command": "python -m experiments.two_layer_cyclic", "error": "not here"}
    monkeypatch.setattr(reproduce, "run_part", run_part)
    outcome = reproduce.main(["--only", "S2", "--out-root", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert ran == ["two_layer_cyclic"] and outcome["failed"] == ["two_layer_cyclic"]
    assert out.index("Time estimate of the full run") < out.index("RUNNING two_layer_cyclic")
    updates = reproduce.count_updates("two_layer_cyclic", ["--out", str(tmp_path / "dry")])
    expected = 1.0 + 2.0 * updates["updates"] / 60   # the rest once + training scaled
    line = next(x for x in out.splitlines() if x.startswith("  S2 two_layer_cyclic: "))
    assert f"{updates['updates']:,} updates" in line and "quick run of 2026-01-01" in line
    assert f"-> about {expected / 60:.1f} min" in line


def test_notes_are_read_from_their_data_file(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text(json.dumps([{"folder": "k_layer_bn", "label": "R4 2-layer", "text": "see {0}",
                                 "backing": [["k_layer_bn", "R4 2-layer"]]}]))
    assert reproduce.load_notes(path) == {("k_layer_bn", "R4 2-layer"): reproduce.Note(
        "see {0}", (("k_layer_bn", "R4 2-layer"),))}
    assert reproduce.NOTES == reproduce.load_notes()  # the tracked file, loaded at import


def test_every_gap_note_names_rows_of_the_published_results():
    """A note whose row or backing row is gone explains nothing (its row reads unexplained):
    each one names rows of the published results, experiments/results/."""
    published = reproduce.published_results()
    for (folder, label), note in reproduce.NOTES.items():
        assert reproduce.find_row(published, folder, label), (folder, label)
        for backing in note.backing:
            assert reproduce.find_row(published, *backing), ((folder, label), backing)
