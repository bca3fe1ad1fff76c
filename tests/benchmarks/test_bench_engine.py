"""The engine benchmark runs end to end (timings are printed, never asserted)."""
from benchmarks import bench_engine


def test_engine_benchmark_quick(capsys):
    bench_engine.main(["--repeats", "5"])
    out = capsys.readouterr().out
    assert "ratio" in out and "overhead" in out
