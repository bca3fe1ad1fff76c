"""The speed benchmark's quick mode runs end to end (timings are printed, never asserted)."""
import json

from experiments import bench_engine, benchmark


def test_benchmark_quick(tmp_path, capsys):
    result = benchmark.main(["--quick", "--no-torch", "--out", str(tmp_path)])
    rows = {r["network"]: r for r in result["rows"]}
    assert set(rows) == {"3-layer", "9-layer"}
    assert all(r["tensorgrad_ms"] > 0 and r["numpy_ms"] > 0 for r in rows.values())
    assert json.loads((tmp_path / "results.json").read_text())["rows"]
    assert "tensorgrad/numpy" in capsys.readouterr().out


def test_engine_benchmark_quick(capsys):
    bench_engine.main(["--repeats", "5"])
    out = capsys.readouterr().out
    assert "ratio" in out and "overhead" in out


def test_frameworks_take_turns_in_chunks(tmp_path):
    result = benchmark.main(["--quick", "--no-torch", "--chunk", "2", "--out", str(tmp_path)])
    assert result["chunk"] == 2 and len(result["rows"]) == 2


def test_timed_updates_are_the_updates_time_updates_runs():
    import numpy as np

    from experiments.baselines import NumpyMLP, time_updates, timed_updates
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 12)).astype(np.float32), rng.integers(0, 3, 60)
    whole, turns = [], []
    time_updates(NumpyMLP((12, 5, 3)).train_step, x, y, 10, 8, 2, losses=whole)
    it = timed_updates(NumpyMLP((12, 5, 3)).train_step, x, y, 10, 10, losses=turns)
    for _ in range(5):  # pulled two at a time, as the benchmark does
        next(it), next(it)
    assert turns == whole and len(whole) == 10
