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
