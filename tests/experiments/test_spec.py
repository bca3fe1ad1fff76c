"""experiments.spec: the Spec's checks, build(spec), run(spec, data) and run_all."""
import argparse
import dataclasses
import os
import time
import types

import numpy as np
import pytest

from experiments import common, spec
from experiments.spec import Spec
from tensorgrad.data import (
    ColorJitter,
    GaussianBlur,
    GaussianNoise,
    RandomHorizontalFlip,
    RandomTranslation,
)
from tensorgrad.optim import SGD, Adagrad, AdamW, RMSprop
from tensorgrad.optim.lr_scheduler import CyclicLR, OneCycleLR


def _args(root, **kw):
    return argparse.Namespace(data=os.fspath(root), quick=True, seed=0, out=None, progress=False,
                              **kw)


def _data(root, split="b"):
    return common.load_data(_args(root), split=split)


# --- the Spec and its checks -----------------------------------------------------------------

@pytest.mark.parametrize("values, match", [
    (dict(lam=-1), "lam must be a number >= 0, got -1"),
    (dict(n_s=0), "n_s must be a positive integer, got 0"),
    (dict(n_s=2.5), "n_s must be an integer, got 2.5"),
    (dict(batch_norm=1), "batch_norm must be true or false, got 1"),
    (dict(optimizer="lbfgs"), "optimizer must be one of sgd, adagrad, adam, rmsprop, adamw"),
    (dict(eta_max=float("nan")), "eta_max must be a finite number"),
    (dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (dict(widths="50-x"), "widths must look like '50-50'"),
    (dict(widths="50-50", depth=2), "depth 2 does not match widths '50-50'"),
    (dict(width=20), "width needs depth"),
    (dict(widths="r0", depth=10), "the r0 family has depths 2..9, got 10"),
    (dict(init="normal"), "init_std goes with init 'normal'"),
    (dict(eta=0.01, schedule="onecycle"), "eta .* and schedule 'onecycle' exclude each other"),
    (dict(optimizer="adam", momentum=0.9), "momentum goes with optimizer 'sgd' or 'rmsprop'"),
    (dict(nesterov=True), "nesterov needs optimizer 'sgd' with momentum > 0"),
    (dict(time_limit=60.0), "fit_budget fits a onecycle or cosine schedule"),
])
def test_bad_settings_are_refused_naming_the_option(values, match):
    with pytest.raises(ValueError, match=match):
        Spec(**values)


def test_unknown_options_are_refused_listing_the_known():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['lr'\]; known: "):
        Spec.of({"lr": 0.1})
    with pytest.raises(ValueError, match="'lr' is not a training option"):
        spec.check_option("lr", 0.1)


def test_network_shapes_and_schedule_lengths():
    assert Spec().dims() == [3072, 50, 50, 10]
    assert Spec(widths="r0", depth=5).hidden() == [50, 30, 20, 20]
    assert Spec(width=20, depth=4).hidden() == [20, 20, 20]
    assert Spec(widths=100).hidden() == [100] and Spec(widths=[8, 4]).hidden() == [8, 4]
    assert Spec(lam=0).lam == 0.0 and isinstance(Spec(lam=0).lam, float)
    assert Spec(n_s=5, cycles=3).updates(1000) == 30                       # cyclic: 2 n_s cycles
    assert Spec(eta=0.01, epochs=2, batch_size=30).updates(80) == 6        # constant: per epoch
    assert Spec(schedule="onecycle", epochs=2, batch_size=30, drop_last=True).updates(80) == 4
    assert Spec(widths=[500, 500]).cost() > Spec().cost() > Spec(n_s=100).cost()


def test_set_values_are_typed_against_the_spec():
    assert spec.setting("widths=50") == ("widths", "50")
    assert spec.setting("eta=1") == ("eta", 1.0) and type(spec.setting("eta=1")[1]) is float
    assert spec.setting("depth=null") == ("depth", None)
    assert spec.setting("batch_norm=false") == ("batch_norm", False)
    for bad, match in (("epochs=abc", "epochs must be an integer"), ("lr=1", "OPTION=VALUE"),
                       ("lam=-1", "lam must be a number >= 0"), ("lam", "OPTION=VALUE")):
        with pytest.raises(argparse.ArgumentTypeError, match=match):
            spec.setting(bad)


def test_flags_are_typed_and_documented_by_the_spec():
    p = common.study_parser("x", "test")
    spec.add_recipe_flags(p, lam=0.005, n_s=2250, cycles=2)
    args = p.parse_args([])
    s = Spec.from_args(args, widths=[50], batch_norm=False)
    assert (s.batch_size, s.eta_min, s.eta_max, s.n_s, s.cycles, s.lam) == (
        100, 1e-5, 1e-1, 2250, 2, 0.005)
    assert (s.bn_eps, s.bn_momentum, s.init, s.seed) == (1e-5, 0.1, "he", 0)
    assert p.parse_args(["--bn-momentum", "0", "--eta-min", "1e-6"]).bn_momentum == 0.0
    with pytest.raises(SystemExit):
        p.parse_args(["--n-s", "0"])


# --- build -----------------------------------------------------------------------------------

def test_build_makes_what_the_spec_says():
    b = spec.build(Spec(widths=[8], inputs=12, classes=3, bn_eps=1e-3, bn_momentum=0.2))
    assert (b.model[1].eps, b.model[1].momentum) == (1e-3, 0.2)
    assert isinstance(b.optimizer, SGD) and isinstance(b.scheduler, CyclicLR)
    assert b.optimizer.param_groups[0]["lr"] == 1e-5 and b.augment is None
    b = spec.build(Spec(widths=[8], inputs=12, eta=0.03, optimizer="adagrad"))
    assert isinstance(b.optimizer, Adagrad) and b.scheduler is None
    assert b.optimizer.param_groups[0]["lr"] == 0.03
    b = spec.build(Spec(widths=[8], inputs=12, optimizer="sgd", momentum=0.9, nesterov=True,
                        weight_decay=5e-4, schedule="onecycle", epochs=4), per_epoch=10)
    groups = b.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0] and groups[0]["nesterov"]
    assert isinstance(b.scheduler, spec.FittedSchedule) and b.scheduler.epochs == 4
    assert isinstance(spec.build(Spec(widths=[8], inputs=12, optimizer="rmsprop",
                                      momentum=0.5)).optimizer, RMSprop)
    assert isinstance(spec.build(Spec(widths=[8], inputs=12, optimizer="adamw")).optimizer, AdamW)
    with pytest.raises(ValueError, match="the onecycle schedule needs per_epoch"):
        spec.build(Spec(widths=[8], inputs=12, schedule="onecycle"))


def test_augmentations_run_in_a_fixed_order_each_on_its_own_stream():
    from tensorgrad.data import Normalize
    norm = Normalize(np.zeros(3072), np.ones(3072))
    s = Spec(flip=0.2, blur=0.5, noise=0.1, shift=2, jitter=0.2, seed=4)
    steps = spec.build_augment(s, norm).transforms
    assert [type(t) for t in steps] == [RandomHorizontalFlip, GaussianBlur, GaussianNoise,
                                        RandomTranslation, ColorJitter, Normalize]
    seeds = np.random.SeedSequence([4, spec.AUGMENT_STREAM]).spawn(5)
    for t, seed in zip(steps, seeds):
        assert t.rng.bit_generator.state == np.random.default_rng(seed).bit_generator.state
    only_blur = spec.build_augment(Spec(blur=0.5, seed=4), norm).transforms[0]  # the first stream
    assert only_blur.rng.bit_generator.state == np.random.default_rng(
        seeds[0]).bit_generator.state
    assert spec.build_augment(Spec(), norm) is None
    with pytest.raises(ValueError, match="needs norm"):
        spec.build_augment(Spec(flip=0.5))


def test_fitted_schedule_resize_continues_the_shorter_schedule():
    s = Spec(widths=[4], schedule="onecycle", epochs=10)
    b = spec.build(s, per_epoch=10)
    for _ in range(30):
        b.scheduler.step()
    b.scheduler.resize(6)
    ref_opt = SGD(spec.build_model(s).parameters(), lr=s.eta_max)
    ref = OneCycleLR(ref_opt, max_lr=s.eta_max, total_steps=60, pct_start=s.pct_start)
    for _ in range(30):
        ref.step()
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
    for _ in range(29):
        b.scheduler.step()
        ref.step()
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
    assert b.optimizer.param_groups[0]["lr"] < 1e-3 and b.scheduler.epochs == 6


# --- run -------------------------------------------------------------------------------------

def test_run_counts_updates_per_batch_and_evaluates_on_test(tiny_cifar):
    data = _data(tiny_cifar)
    run = spec.run(Spec(widths=[8], n_s=3, cycles=2, batch_size=30, label="t"), data)
    assert run["updates"] == 12 and run["epochs"] == 4  # 80 images in batches of 30: 3 per epoch
    assert len(run["history"]["lr"]) == 12 and run["history"]["steps"][-1] == 12
    assert run["history"]["lr"][3] == pytest.approx(1e-1)  # the peak after n_s updates
    assert {"train_acc", "val_acc", "test_acc", "test_loss"} <= run["final"].keys()
    assert not run["diverged"] and run["config"]["dims"] == [3072, 8, 10]


def test_a_batch_larger_than_the_data_is_refused_with_drop_last(tiny_cifar):
    with pytest.raises(ValueError, match="batch_size 100 with drop_last leaves no batch of the "
                                         "80 training images"):
        spec.run(Spec(widths=[8], drop_last=True), _data(tiny_cifar))


def test_augmented_runs_read_pixels_and_standardise_after_augmenting(tiny_cifar):
    data = _data(tiny_cifar)
    assert data.pixels[:].min() >= 0 and data.pixels[:].max() <= 1
    np.testing.assert_array_equal(data.norm(data.pixels[:]), data.train[0][:])
    plain = spec.run(Spec(widths=[8], n_s=2, cycles=1, batch_size=40), data)
    # flips so rare that none happens: the pixel path gives bitwise the standardised one
    never = spec.run(Spec(widths=[8], n_s=2, cycles=1, batch_size=40, flip=1e-300), data)
    flipped = spec.run(Spec(widths=[8], n_s=2, cycles=1, batch_size=40, flip=1.0), data)
    assert plain["final"] == never["final"]
    assert plain["final"]["train_loss"] != flipped["final"]["train_loss"]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_a_diverged_run_keeps_the_measurements_made_before(tiny_cifar, capsys):
    data = _data(tiny_cifar)
    s = Spec(widths=[8], batch_norm=False, eta=1e12, epochs=3, measure_every=1, batch_size=40,
             label="boom")
    run = spec.run(s, data)
    assert run["diverged"] and run["history"]["stopped_early"]
    assert len(run["history"]["lr"]) == run["updates_done"] >= len(run["history"]["steps"])
    assert run["final"]["test_acc"] is not None and "boom: fit:" in capsys.readouterr().out
    with pytest.raises(spec.TrainingDiverged):
        spec.run(s, data, keep_diverged=False)


def test_test_curve_measures_the_test_set_under_its_own_name(tiny_cifar):
    data = _data(tiny_cifar, split="c")
    run = spec.run(Spec(split="c", widths=[8], n_s=2, cycles=1, test_curve=True), data)
    metrics = run["history"]["metrics"]
    assert "test_acc" in metrics and not any(k.startswith("val_") for k in metrics)
    assert run["final"]["test_acc"] == pytest.approx(metrics["test_acc"][-1])


def test_flip_tta_and_weight_averaging_add_their_accuracies(tiny_cifar):
    data = _data(tiny_cifar)
    s = Spec(widths=[8], schedule="onecycle", epochs=3, batch_size=20, tta=True,
             average_last=2, eval_train=30)
    run = spec.run(s, data)
    f = run["final"]
    assert {"val_acc_plain", "test_acc_plain", "val_acc_swa", "test_acc_swa"} <= f.keys()
    assert all(0 <= f[k] <= 1 for k in ("val_acc", "test_acc", "val_acc_swa", "test_acc_swa"))
    assert f["val_acc_plain"] == run["history"]["metrics"]["val_acc"][-1]
    assert run["epochs_done"] == 3 and "schedule_epochs" not in run
    plain = spec.run(dataclasses.replace(s, tta=False, average_last=0), data)["final"]
    assert not {k for k in plain if k.endswith(("_plain", "_swa"))}
    assert plain["test_acc"] == f["test_acc_plain"] and plain["val_acc"] == f["val_acc_plain"]


def test_time_budget_shortens_the_schedule(tiny_cifar, monkeypatch):
    # a fake clock that advances one second per reading: the budget logic sees slow epochs
    # deterministically, whatever the machine's load (no assertion on real time)
    ticks = iter(range(10**6))
    monkeypatch.setattr(spec, "time", types.SimpleNamespace(
        perf_counter=lambda: float(next(ticks)), process_time=time.process_time))
    data = _data(tiny_cifar, split="c")
    budget = dict(split="c", widths=[16], schedule="onecycle", batch_size=20, drop_last=True,
                  eval_train=50)
    run = spec.run(Spec(**budget, epochs=6, time_limit=15.2, label="budget"), data)
    assert run["schedule_epochs"] == 1 and run["epochs_done"] == 1
    assert run["schedule_resized"] == [(1, 1)]
    free = spec.run(Spec(**budget, epochs=3, time_limit=900.0), data)
    assert free["schedule_epochs"] == 3 and free["epochs_done"] == 3 and free["within_limit"]


# --- run_all ---------------------------------------------------------------------------------

def test_run_all_gives_the_same_numbers_here_and_in_workers(tiny_cifar, capsys):
    specs = [Spec(widths=[8], n_s=2, cycles=1, seed=s, label=f"seed {s}") for s in (0, 1)]
    specs.append(Spec(split="a", widths=[8], n_s=2, cycles=1, label="split a"))
    here = spec.run_all(specs, _args(tiny_cifar))
    there = spec.run_all(specs, _args(tiny_cifar), workers=2)
    assert [r["label"] for r in there] == ["seed 0", "seed 1", "split a"]
    # one BLAS thread there, maybe more here: equal up to the order of BLAS's sums
    assert [r["final"] for r in there] == [pytest.approx(r["final"], rel=1e-4) for r in here]
    assert [r["data"]["sizes"]["train"] for r in here] == [80, 80, 20]
    assert {r["worker"]["pid"] for r in here} == {os.getpid()}
    assert os.getpid() not in {r["worker"]["pid"] for r in there}
    assert {r["worker"]["blas_threads"] for r in there} == {"1"}
    out = capsys.readouterr().out
    assert "[3/3] " in out and "seed 1: train " in out


def test_study_scripts_leave_building_and_running_to_spec():
    """No script but spec.py builds a model, an optimizer, a loader or a pool, or calls fit."""
    import ast

    forbidden = {"MLP", "fit", "SGD", "Adagrad", "Adam", "AdamW", "RMSprop", "DataLoader",
                 "CyclicLR", "OneCycleLR", "Pool", "Process", "map_jobs", "start_workers",
                 "build", "build_model"}
    found = []
    for path in sorted(common.EXPERIMENTS.glob("*.py")):
        if path.name == "spec.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in forbidden:
                    found.append(f"{path.name}:{node.lineno} {name}")
    assert not found, found


@pytest.mark.parametrize("val_choice", ["last", "random"])
def test_load_for_reads_a_specs_split_outside_quick(tiny_cifar, val_choice):
    """The full runs' path, as worker processes and search trials take it (common.data_args
    carries --seed, which split b's random validation choice draws with)."""
    args = argparse.Namespace(data=os.fspath(tiny_cifar), quick=False, seed=3)
    s = spec.Spec.of({"split": "b", "n_val": 20, "val_choice": val_choice, "seed": 3})
    data = spec.load_for(s, common.data_args(args))
    assert (len(data.train[1]), len(data.val[1])) == (80, 20)
