"""experiments.common: flags, the split loader and its quick cut, rows and tables."""
import argparse

import numpy as np
import pytest

from experiments import common


def _args(root, **kw):
    return argparse.Namespace(data=str(root), quick=True, seed=0, out=None, **kw)


def test_quick_split_b_uses_what_a_tiny_dataset_has(tiny_cifar):
    data = common.load_data(_args(tiny_cifar), split="b", n_val=5000)
    assert data.sizes() == {"train": 80, "val": 20, "test": 20}  # 100 training images: a fifth
    x = data.train[0][:]
    assert x.dtype == np.float32 and x.shape == (80, 3072)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)  # the training part's statistics
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-3)
    assert data.folder.endswith("cifar-10-batches-py")


def test_the_loader_gives_pixels_and_the_normalize_for_augmenting(tiny_cifar):
    data = common.load_data(_args(tiny_cifar), split="b")
    pixels = data.pixels[:]
    assert pixels.dtype == np.float32 and pixels.min() >= 0 and pixels.max() <= 1
    assert data.norm(pixels).tobytes() == data.train[0][:].tobytes()
    assert common.load_data(_args(tiny_cifar), split="b") is data           # kept, not reloaded
    other = common.load_data(_args(tiny_cifar), split="b", val_choice="random")  # quick: its cut
    assert other is not data and other.sizes() == data.sizes()


def test_quick_mode_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False"):
        common.load_data(_args(tmp_path / "empty"), split="b")


def test_outputs_default_to_the_untracked_runs_folder():
    quick = common.output_dir(argparse.Namespace(out=None, quick=True), "k_layer_bn")
    full = common.output_dir(argparse.Namespace(out=None, quick=False), "k_layer_bn")
    assert full == common.REPO / "runs" / "k_layer_bn"
    assert quick == common.REPO / "runs" / "quick" / "k_layer_bn"
    assert common.RESULTS_ROOT not in quick.parents and common.RESULTS_ROOT not in full.parents
    given = common.output_dir(argparse.Namespace(out="elsewhere", quick=False), "k_layer_bn")
    assert given == common.Path("elsewhere")


def test_result_row_compares_on_the_last_shared_split():
    row = common.result_row("r", {"train": 0.6, "val": 0.54, "test": 0.52},
                            {"train": 0.612, "test": 0.523})
    assert row["compare"] == "test" and row["delta"] == pytest.approx(-0.3)
    assert row["ours_text"] == "train 60.0, val 54.0, test 52.0"
    assert row["report_text"] == "train 61.2, test 52.3"
    assert common.result_row("r", {"test": 0.5})["delta"] is None
    with_std = common.result_row("r", {"test": 0.5}, std={"test": 0.004})
    assert with_std["ours_text"] == "test 50.0 ± 0.4"


def test_summarize_and_tables():
    runs = [{"final": {"test_acc": a}} for a in (0.50, 0.52, 0.54)]
    mean, std = common.summarize(runs, keys=("test_acc",))["test_acc"]
    assert mean == pytest.approx(0.52) and std == pytest.approx(0.02)
    assert common.summarize(runs[:1], keys=("test_acc",))["test_acc"] == (0.5, None)  # no spread
    assert common.pct(None) == "—" and common.pct(0.5321, 0.0041, 2) == "53.21 ± 0.41"
    assert common.markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_mean_std_is_the_sample_std_ddof_1():
    # by hand: mean 0.54; squared deviations 0.0016 + 0.0001 + 0.0025 = 0.0042; / (3 - 1) =
    # 0.0021; sqrt = 0.045826 (ddof=0 would give sqrt(0.0014) = 0.037417)
    mean, std = common.mean_std([0.50, 0.53, 0.59])
    assert mean == pytest.approx(0.54) and std == pytest.approx(0.0458258, abs=1e-7)
    assert common.pct(mean, std, 2) == "54.00 ± 4.58"
    assert common.mean_std([0.5]) == (0.5, None)
    with pytest.raises(ValueError, match="mean_std: no values"):
        common.mean_std([])
    assert common.seeds_text([2, 0, 1]) == "seeds 0, 1, 2" and common.seeds_text([4]) == "seed 4"


def test_paired_delta_is_the_spread_of_the_per_seed_differences():
    a = {0: 0.55, 1: 0.53, 2: 0.54}
    b = {0: 0.52, 1: 0.515, 2: 0.50}
    # by hand: differences 0.03, 0.015, 0.04; mean 0.028333; squared deviations 2.778e-6 +
    # 1.7778e-4 + 1.3611e-4 = 3.1667e-4; / 2; sqrt = 0.012583 (the arms' own stds, 0.0100
    # and 0.0104, would give an unpaired 0.0144)
    mean, std = common.paired_delta(a, b)
    assert mean == pytest.approx(0.0283333, abs=1e-7) and std == pytest.approx(0.0125831, abs=1e-7)
    assert common.points(mean, std) == "+2.8 ± 1.3" and common.points(-0.004) == "-0.4"
    assert common.points(None) == "—"
    assert common.paired_delta({3: 0.6}, {3: 0.5}) == (pytest.approx(0.1), None)
    with pytest.raises(ValueError, match=r"seeds differ: \[0, 1\] vs \[0, 2\]"):
        common.paired_delta({0: 0.5, 1: 0.5}, {0: 0.5, 2: 0.5})


def test_result_row_from_seeds_shows_mean_std_and_a_delta_error_bar():
    row = common.result_row("r", per_seed={"test": {0: 0.50, 1: 0.53, 2: 0.59}},
                            report={"test": 0.52})
    assert row["ours"] == {"test": pytest.approx(0.54)}
    assert row["std"] == {"test": pytest.approx(0.0458258, abs=1e-7)}
    assert row["ours_text"] == "test 54.0 ± 4.6" and row["seeds"] == [0, 1, 2]
    assert row["per_seed"] == {"test": {0: 0.50, 1: 0.53, 2: 0.59}}
    # the report is one number: ours - report spreads as ours does
    assert row["delta"] == pytest.approx(2.0) and row["delta_std"] == pytest.approx(4.58258)
    assert row["delta_text"] == "+2.0 ± 4.6"
    runs = [{"label": f"s{s}", "config": {"seed": s}, "final": {"test_acc": a, "val_acc": a}}
            for s, a in ((0, 0.50), (1, 0.53), (2, 0.59))]
    assert common.seed_row("r", runs, {"test": 0.52}, keys=("test",)) == row
    assert common.by_seed(runs, "val_acc") == {0: 0.50, 1: 0.53, 2: 0.59}
    with pytest.raises(ValueError, match="seed 0 appears twice"):
        common.by_seed(runs + runs[:1])
    with pytest.raises(ValueError, match="give ours or per_seed"):
        common.result_row("r")


def test_delta_row_carries_the_paired_error_bar():
    a = {0: 0.55, 1: 0.53, 2: 0.54}
    b = {0: 0.52, 1: 0.515, 2: 0.50}
    row = common.delta_row("BN - no BN", a, b, report_delta=0.015)
    assert row["ours"]["test"] == pytest.approx(0.0283333, abs=1e-7)
    assert row["std"]["test"] == pytest.approx(0.0125831, abs=1e-7)
    assert row["ours_text"] == "test +2.8 ± 1.3 points (seeds 0, 1, 2)"
    assert row["report_text"] == "test +1.5 points"
    assert row["delta"] == pytest.approx(1.33333, abs=1e-4)     # ours - report, in points
    assert row["delta_std"] == pytest.approx(1.25831, abs=1e-4)
    assert row["per_seed"]["test"] == pytest.approx({0: 0.03, 1: 0.015, 2: 0.04})
    assert common.delta_row("d", a, b)["report_text"] == "—"


def test_plot_deltas_draws_the_error_bars(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(common, "save_plot", lambda fig, path: figures.append(fig) or path)
    common.plot_deltas([("a", 0.02, 0.005), ("b", -0.01, None)], tmp_path / "d.png", "t")
    from matplotlib.container import BarContainer
    bars = next(c for c in figures[0].axes[0].containers if isinstance(c, BarContainer))
    segments = bars.errorbar.lines[2][0].get_segments()   # one horizontal bar per difference
    half_widths = sorted(abs(s[1][0] - s[0][0]) / 2 for s in segments)
    assert half_widths == pytest.approx([0.0, 0.5])                  # points: 100 x std
    assert sorted(b.get_width() for b in bars) == pytest.approx([-1.0, 2.0])
    with pytest.raises(ValueError, match="no differences"):
        common.plot_deltas([], tmp_path / "e.png", "t")


def test_command_line_records_the_data_source(monkeypatch):
    monkeypatch.setenv(common.ENV_VAR, "/some data")
    assert common.command_line("s", ["--seed", "1"], None) == (
        "TENSORGRAD_DATA='/some data' python -m experiments.s --seed 1")
    assert common.command_line("s", ["--data", "/d"], "/d") == "python -m experiments.s --data /d"


def test_results_and_tables_are_written_atomically(tmp_path, monkeypatch):
    """finish() and reproduce's RESULTS.md go through tensorgrad.atomic (fsync, then rename)."""
    import os

    from experiments import reproduce
    replaced = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append(os.path.basename(dst)),
                                                        real(src, dst)))
    args = argparse.Namespace(out=str(tmp_path), quick=True, seed=0, data=None)
    study = common.start("two_layer_cyclic", "S2", "test", args, [])
    common.finish(study, "| a |\n|---|\n| 1 |", [])
    reproduce.write_report(tmp_path / "RESULTS.md", {}, "python -m experiments.reproduce",
                           True, 1.0)
    assert replaced == ["results.json", "table.md", "RESULTS.md"]


def test_quick_data_stays_uint8_and_is_bitwise_todays(tiny_cifar):
    """The standardised splits are uint8 images read through ImageArray; every value equals
    today's float path: pixels / 255 in float32, standardised with the training part's mean and
    std."""
    from tensorgrad.data import ImageArray, load_cifar10, standardize
    data = common.load_data(_args(tiny_cifar), split="b")
    raw = load_cifar10(tiny_cifar, split="c", download=False)
    x, test = raw.train[0], raw.test[0]
    expected = standardize(x[:80], x[80:], test[:100])
    for part, want in zip((data.train, data.val, data.test), expected):
        assert isinstance(part[0], ImageArray) and part[0].images.dtype == np.uint8
        got = part[0][:]
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_load_data_names_a_split_holding_non_finite_values(tiny_cifar, monkeypatch):
    real = common.load_cifar10

    def poisoned(*args, **kwargs):
        kwargs.pop("dtype", None)                   # float32 pixels, which can hold NaN
        splits = real(*args, **kwargs)
        splits.test[0][3, 7] = np.nan
        return splits
    monkeypatch.setattr(common, "load_cifar10", poisoned)
    common._cache.clear()
    with pytest.raises(ValueError, match=r"load_data: the test split holds 1 non-finite value "
                                         r"\(NaN or inf\); the first is at row 3"):
        common.load_data(_args(tiny_cifar), split="b")
    common._cache.clear()
