"""Unit tests of the S6 helpers: Variant checks, thread settings, job order, the best MLP's
fitted schedule and time budget."""
import argparse
import json
import os
import time
import types

import numpy as np
import pytest

from experiments import best_mlp, parallel
from models.mlp import MLP


def test_variant_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown augmentations"):
        parallel.Variant([3072, 50, 10], augment=["rotate"])
    with pytest.raises(ValueError, match="optimizer"):
        parallel.Variant([3072, 50, 10], optimizer="adam")
    with pytest.raises(ValueError, match="needs epochs"):
        parallel.Variant([3072, 50, 10], constant_lr=0.01)


def test_variant_cost_orders_bigger_and_longer_runs_first():
    small = parallel.Variant([3072, 50, 50, 10])
    wide = parallel.Variant([3072, 500, 500, 10])
    short = parallel.Variant([3072, 50, 50, 10], n_s=100)
    assert wide.cost() > small.cost() > short.cost()


def test_blas_threads_sets_and_restores_environment(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with parallel.blas_threads(1):
        assert all(os.environ[k] == "1" for k in parallel.THREAD_VARS)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and "OMP_NUM_THREADS" not in os.environ


def _echo(item, data, progress):
    return {"item": item, "n_train": len(data.train[1])}


def test_run_jobs_in_process_keeps_order(tiny_cifar):
    args = argparse.Namespace(data=os.fspath(tiny_cifar), quick=True, seed=0)
    seen = []
    out = parallel.run_jobs(_echo, [3, 1, 2], args, workers=1, order=lambda x: x,
                            on_done=lambda i, r: seen.append(r["item"]))
    assert [r["item"] for r in out] == [3, 1, 2] and seen == [3, 2, 1]
    assert all(r["worker"]["data_load_time"] >= 0 for r in out)


def test_load_data_keeps_pixels_and_standardises_with_train_statistics(tiny_cifar):
    args = argparse.Namespace(data=os.fspath(tiny_cifar), quick=True, seed=0)
    data = parallel.load_data(args, "b")
    assert data.train_pixels.min() >= 0 and data.train_pixels.max() <= 1
    np.testing.assert_allclose(data.norm(data.train_pixels), data.train[0])
    np.testing.assert_allclose(data.train[0].mean(axis=0), 0, atol=1e-5)


def test_total_wall_time_skips_quick_results(tmp_path):
    for name, quick, wall in (("a", False, 10.0), ("b", True, 99.0), ("c", False, 5.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(
            json.dumps({"quick": quick, "wall_time_s": wall}))
    total = parallel.total_wall_time(tmp_path)
    assert total == {"studies": {"a": 10.0, "c": 5.5}, "total_s": 15.5}


def test_fitted_schedule_resize_continues_the_shorter_schedule():
    from tensorgrad.optim import SGD
    from tensorgrad.optim.lr_scheduler import OneCycleLR
    r = best_mlp.Recipe(hidden=[4], epochs=10)
    model, opt, sched = best_mlp.build(r, per_epoch=10)
    for _ in range(30):
        sched.step()
    sched.resize(6)
    ref_model = MLP([3072, 4, 10], seed=0)
    ref_opt = SGD(ref_model.parameters(), lr=r.lr)
    ref = OneCycleLR(ref_opt, max_lr=r.lr, total_steps=60, pct_start=r.pct_start)
    for _ in range(30):
        ref.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
    for _ in range(29):
        sched.step()
        ref.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
    assert opt.param_groups[0]["lr"] < 1e-3 and sched.epochs == 6


def test_time_budget_shortens_the_schedule(tiny_cifar, monkeypatch):
    # a fake clock that advances one second per reading: the budget logic sees slow epochs
    # deterministically, whatever the machine's load (no assertion on real time)
    ticks = iter(range(10**6))
    monkeypatch.setattr(best_mlp, "time", types.SimpleNamespace(
        perf_counter=lambda: float(next(ticks)), process_time=time.process_time))
    args = argparse.Namespace(data=os.fspath(tiny_cifar), quick=True, seed=0)
    data = parallel.load_data(args, "c")
    r = best_mlp.Recipe(hidden=[16], epochs=6, batch_size=20, eval_train=50, time_limit=15.2,
                        label="budget")
    run = best_mlp.train_best(r, data)
    assert run["schedule_epochs"] == 1 and run["epochs_done"] == 1
    assert run["schedule_resized"] == [[1, 1]] or run["schedule_resized"] == [(1, 1)]
    free = best_mlp.train_best(best_mlp.Recipe(hidden=[16], epochs=3, batch_size=20,
                                               eval_train=50), data)
    assert free["schedule_epochs"] == 3 and free["epochs_done"] == 3 and free["within_limit"]
