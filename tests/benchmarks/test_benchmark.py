"""The speed benchmark's quick mode runs end to end (timings are printed, never asserted), and its
tensorgrad network trains as the numpy baseline does."""
import json

import numpy as np
import pytest

from benchmarks import benchmark
from benchmarks.baselines import NumpyMLP, time_updates

ALL_ROWS = {"3-layer", "9-layer", "best", "best-momentum"}


def test_benchmark_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a write outside --out would land here
    out = tmp_path / "out"
    result = benchmark.main(["--quick", "--no-torch", "--out", str(out)])
    rows = {r["network"]: r for r in result["rows"]}
    assert set(rows) == ALL_ROWS
    assert all(r["tensorgrad_ms"] > 0 and r["numpy_ms"] > 0 for r in rows.values())
    assert rows["best"]["sizes"] == [3072, 1024, 512, 256, 10] and rows["best"]["batch"] == 256
    assert rows["best-momentum"]["sgd_momentum"] == 0.9 and rows["best"]["sgd_momentum"] == 0
    assert json.loads((out / "results.json").read_text())["rows"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert "tensorgrad/numpy" in capsys.readouterr().out


def test_frameworks_take_turns_in_chunks(tmp_path):
    result = benchmark.main(["--quick", "--no-torch", "--chunk", "2", "--networks",
                             "9-layer,3-layer", "--out", str(tmp_path)])
    assert result["chunk"] == 2
    assert [r["network"] for r in result["rows"]] == ["3-layer", "9-layer"]


def test_unknown_network_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--quick", "--networks", "best,tiny", "--out", str(tmp_path)])
    assert "--networks" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("net", ["best", "best-momentum"])
def test_tensorgrad_and_numpy_rows_train_the_same_network(net):
    """The benchmark's tensorgrad model and the numpy baseline, started from the same weights
    on the same batches, follow the same losses and weights (float32 rounding apart)."""
    _, batch, lam, momentum = benchmark.NETWORKS[net]
    sizes = (48, 32, 16, 8, 4)  # the rows' kind of network, small
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6 * batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], 6 * batch)
    ours = benchmark.TensorgradMLP(sizes, lam=lam, sgd_momentum=momentum, eta_max=0.5, n_s=4)
    ref = NumpyMLP(sizes, lam=lam, sgd_momentum=momentum)
    for lin, W in zip(ours.model.linears, ref.W):
        lin.weight.data[...] = W.T
    a, b = [], []
    time_updates(ours.train_step, x, y, batch, 5, 0, eta_max=0.5, n_s=4, losses=a)
    time_updates(ref.train_step, x, y, batch, 5, 0, eta_max=0.5, n_s=4, losses=b)
    np.testing.assert_allclose(a, b, rtol=1e-4)
    for lin, W in zip(ours.model.linears, ref.W):
        np.testing.assert_allclose(lin.weight.data.T, W, rtol=1e-3, atol=1e-5)
    moved = max(np.abs(lin.weight.data.T - W0).max() for lin, W0 in
                zip(ours.model.linears, NumpyMLP(sizes, lam=lam).W))
    assert moved > 1e-2


def test_ablation_times_each_path_switched_off_alone(tmp_path, capsys):
    """--ablate adds one contestant per path, run in that path's reference mode (its counter stays
    0 during its turns), and reports its change against the all-fast run."""
    import tensorgrad as tg
    result = benchmark.main(["--quick", "--no-torch", "--networks", "3-layer", "--ablate",
                             "axpy,fused_chain", "--out", str(tmp_path)])
    rows = {(r["path"], r["network"]) for r in result["ablation"]}
    assert rows == {("axpy", "3-layer"), ("fused_chain", "3-layer")}
    assert all(r["ms"] > 0 and np.isfinite(r["change"]) for r in result["ablation"])
    assert "fused_chain | 3-layer" in capsys.readouterr().out
    assert tg.is_fast()  # every path is on again afterwards
    with benchmark._turn("tensorgrad-axpy"):
        assert not tg.is_fast("axpy") and tg.is_fast("fused_chain")


def test_ablation_refuses_unknown_paths_and_malloc_tuning(tmp_path, capsys):
    for spec in ("axpy,warp_drive", "malloc_tuning"):
        with pytest.raises(SystemExit):
            benchmark.main(["--quick", "--ablate", spec, "--out", str(tmp_path)])
        assert "--ablate" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
