"""Run many variants of the course MLP recipe, optionally as parallel one-BLAS-thread processes.

    python -m experiments.parallel --speed         # two S4 runs: one at a time (2 threads) vs
                                                  # side by side (1 thread each)
    python -m experiments.parallel --total         # sum the wall times of every finished study

The S6 studies are dozens of small trainings. A `Variant` is one of them: the course recipe
(3-layer BN, SGD + triangular CyclicLR, L2 via fit) plus any of the changes the reports tried
(AdaGrad, a constant lr, batch norm after the activation, dropout, another activation or init,
augmentation). `run_jobs` runs a list of jobs in a pool of `spawn`ed worker processes whose BLAS
thread count is fixed before numpy is imported (the environment variables are set while the
pool starts), each worker loading the data once; with workers=1 the jobs run in this process.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from models.mlp import MLP
from tensorgrad import nn
from tensorgrad.atomic import write_text
from tensorgrad.data import (
    ColorJitter,
    Compose,
    DataLoader,
    GaussianBlur,
    GaussianNoise,
    Normalize,
    RandomHorizontalFlip,
    RandomTranslation,
    find_cifar10,
    load_cifar10,
)
from tensorgrad.data.cifar10 import resolve_root
from tensorgrad.optim import SGD, Adagrad
from tensorgrad.optim.lr_scheduler import CyclicLR
from tensorgrad.train import TrainingDiverged, evaluate, fit

from . import common

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Augmentations by name, each built from a seed: the reports' settings (STUDIES.md S6) and ours.
AUGMENTATIONS = {
    "flip20": lambda seed: RandomHorizontalFlip(0.2, seed=seed),            # R0: 20% of images
    "flip50": lambda seed: RandomHorizontalFlip(0.5, seed=seed),
    "blur": lambda seed: GaussianBlur(0.5, (0.0, 0.5), seed=seed),           # R0: 50%, U(0, 0.5)
    "noise": lambda seed: GaussianNoise(0.1, seed=seed),                     # R3: 0.1 x batch std
    "translate": lambda seed: RandomTranslation(2, seed=seed),               # +-2 pixels
    "jitter": lambda seed: ColorJitter(brightness=0.2, contrast=0.2, seed=seed),
}


# ---------------------------------------------------------------------------------------------
# Data: standardised splits plus the training images in pixel space for augmentation
# ---------------------------------------------------------------------------------------------

@dataclass
class PixelData(common.Data):
    """common.Data plus the raw training pixels and the Normalize that standardised them
    (augmentations work on pixels in [0, 1], then `norm` standardises the batch)."""
    train_pixels: np.ndarray | None = None
    norm: Normalize | None = None


_cache: dict = {}


def load_data(args, split: str = "b", n_val: int = 5000, val_choice: str = "last") -> PixelData:
    """CIFAR-10 as common.load_data returns it (same --quick cuts), plus pixels and Normalize.

    val_choice 'random' draws split b's validation images at random with args.seed (R0's way).
    """
    key = (os.fspath(resolve_root(args.data)), split, n_val, val_choice, bool(args.quick))
    if key in _cache:
        return _cache[key]
    _cache.clear()
    if args.quick:
        raw = load_cifar10(args.data, split="a" if split == "a" else "c", download=False)
        (x, y), test = raw.train, raw.test
        if split == "a":
            n = common.QUICK_TRAIN
            train, val = (x[:n], y[:n]), tuple(a[:common.QUICK_VAL] for a in raw.val)
        elif split == "b":
            n_v = max(1, min(common.QUICK_VAL, n_val, len(y) // 5))
            n = min(common.QUICK_TRAIN, len(y) - n_v)
            train, val = (x[:n], y[:n]), (x[len(y) - n_v:], y[len(y) - n_v:])
        else:
            train, val = (x[:common.QUICK_TRAIN], y[:common.QUICK_TRAIN]), None
        test = (test[0][:common.QUICK_TEST], test[1][:common.QUICK_TEST])
    else:
        raw = load_cifar10(args.data, split=split, n_val=n_val, val_choice=val_choice,
                           seed=args.seed)
        train, val, test = raw.train, raw.val, raw.test
    del raw
    norm = Normalize.fit(train[0])
    folder = os.fspath(find_cifar10(args.data) or resolve_root(args.data))
    data = PixelData(train=(norm(train[0]), train[1]),
                     val=None if val is None else (norm(val[0]), val[1]),
                     test=(norm(test[0]), test[1]), folder=folder, split=split,
                     train_pixels=train[0], norm=norm)
    _cache[key] = data
    return data


# ---------------------------------------------------------------------------------------------
# One variant of the recipe
# ---------------------------------------------------------------------------------------------

@dataclass
class Variant:
    """One training run: common.RunConfig's fields plus the S6 changes.

    optimizer 'sgd' or 'adagrad' (R0: AdaGrad driven by the cyclical schedule); with
    constant_lr set, `epochs` epochs at that lr, otherwise CyclicLR(eta_min, eta_max, n_s) for
    2 n_s cycles updates. augment: names from AUGMENTATIONS, applied in pixel space in order.
    """
    dims: list
    batch_norm: bool = True
    bn_position: str = "before"
    activation: str = "relu"
    negative_slope: float = 0.01
    alpha: float = 1.0
    dropout: float = 0.0
    init: str = "he"
    init_std: float | None = None
    lam: float = 0.005
    optimizer: str = "sgd"
    n_s: int = 2250
    cycles: int = 2
    eta_min: float = common.RECIPE["eta_min"]
    eta_max: float = common.RECIPE["eta_max"]
    constant_lr: float | None = None
    epochs: int | None = None
    batch_size: int = common.RECIPE["batch_size"]
    augment: list = field(default_factory=list)
    seed: int = 0
    bn_eps: float = common.RECIPE["bn_eps"]
    bn_momentum: float = common.RECIPE["bn_momentum"]
    measure_every: int | None = None
    label: str = ""
    tags: dict = field(default_factory=dict)   # the study's own bookkeeping (group, report...)

    def __post_init__(self):
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"Variant: unknown augmentations {unknown}; known: "
                             f"{sorted(AUGMENTATIONS)}")
        if self.optimizer not in ("sgd", "adagrad"):
            raise ValueError(f"Variant: optimizer must be 'sgd' or 'adagrad', got "
                             f"{self.optimizer!r}")
        if self.constant_lr is not None and not self.epochs:
            raise ValueError(f"Variant: constant_lr={self.constant_lr} needs epochs")

    def cost(self) -> float:
        """Rough relative compute (weights x updates), to start the longest runs first."""
        weights = sum(a * b for a, b in zip(self.dims[:-1], self.dims[1:]))
        updates = self.epochs * 450 if self.constant_lr is not None else 2 * self.n_s * self.cycles
        return weights * updates * self.batch_size * (1.5 if self.augment else 1.0)


def build_model(v: Variant) -> MLP:
    model = MLP(v.dims, batch_norm=v.batch_norm, bn_position=v.bn_position,
                activation=v.activation, dropout=v.dropout, init=v.init, init_std=v.init_std,
                seed=v.seed, negative_slope=v.negative_slope, alpha=v.alpha)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.eps, m.momentum = float(v.bn_eps), v.bn_momentum
    return model


def build_augment(names, norm: Normalize, seed: int):
    """Compose(the named augmentations, each with its own seed stream, then norm)."""
    seeds = np.random.SeedSequence([seed, 6]).spawn(len(names))
    return Compose([AUGMENTATIONS[n](np.random.default_rng(s)) for n, s in zip(names, seeds)]
                   + [norm])


def train_variant(v: Variant, data: PixelData, progress: bool = False, callbacks=()) -> dict:
    """Train v on data.train (measuring on train and val), then evaluate on data.test.

    Returns the same dict as common.train_run (label, config, data, updates, epochs, final,
    history, diverged, wall_time).
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    model = build_model(v)
    augment = None
    if v.augment:
        loader = DataLoader((data.train_pixels, data.train[1]), batch_size=v.batch_size,
                            shuffle=True, seed=v.seed)
        augment = build_augment(v.augment, data.norm, v.seed)
    else:
        loader = DataLoader(data.train, batch_size=v.batch_size, shuffle=True, seed=v.seed)
    kind = SGD if v.optimizer == "sgd" else Adagrad
    if v.constant_lr is not None:
        optimizer, scheduler = kind(model.parameters(), lr=v.constant_lr), None
        updates = v.epochs * len(loader)
    else:
        optimizer = kind(model.parameters(), lr=v.eta_min)
        scheduler = CyclicLR(optimizer, base_lr=v.eta_min, max_lr=v.eta_max,
                             step_size_up=v.n_s, mode="triangular")
        updates = 2 * v.n_s * v.cycles
    epochs = math.ceil(updates / len(loader))
    seen = {"steps": [], "metrics": {}}

    def record(step, metrics):
        seen["steps"].append(step)
        for k, val in metrics.items():
            seen["metrics"].setdefault(k, []).append(val)

    diverged = False
    try:
        history = fit(model, optimizer, loader, val_data=data.val, epochs=epochs,
                      scheduler=scheduler, l2=v.lam, augment=augment, max_updates=updates,
                      train_eval_data=data.train, callbacks=[record, *callbacks],
                      progress=progress, measure_every=v.measure_every).to_dict()
    except TrainingDiverged as exc:
        print(f"  {v.label}: {exc}", flush=True)
        diverged = True
        history = {"lr": [], "steps": seen["steps"],
                   "epochs": [s / len(loader) for s in seen["steps"]],
                   "metrics": seen["metrics"], "stopped_early": True,
                   "wall_time": time.perf_counter() - t0}
    final = {k: vals[-1] for k, vals in history["metrics"].items() if vals}
    for k, val in evaluate(model, *data.test, l2=v.lam).items():
        final[f"test_{k}"] = val
    run = {"label": v.label, "config": dataclasses.asdict(v),
           "data": {"folder": data.folder, "split": data.split, "sizes": data.sizes()},
           "updates": updates, "epochs": epochs, "final": final, "history": history,
           "diverged": diverged, "wall_time": time.perf_counter() - t0,
           "cpu_time": time.process_time() - cpu0}
    return run


# ---------------------------------------------------------------------------------------------
# Running many jobs
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def blas_threads(n: int):
    """Set the BLAS thread variables to n while the block runs (for processes started in it)."""
    old = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(n) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_worker: dict = {}


def _start_pool(workers, threads, initargs):
    """A pool of `spawn`ed workers with `threads` BLAS threads that ignore Ctrl-C from their
    start (an ignored signal stays ignored across exec): Ctrl-C reaches every process of the
    terminal's group, and only the parent should answer it, by stopping the pool. A Ctrl-C
    during the few milliseconds the workers take to start is ignored by the parent too."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with blas_threads(threads):
            return multiprocessing.get_context("spawn").Pool(
                workers, initializer=_init_worker, initargs=initargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(args, split, n_val, val_choice="last"):
    t0 = time.perf_counter()
    _worker["data"] = load_data(args, split, n_val, val_choice)
    _worker["load_time"] = time.perf_counter() - t0
    _worker["progress"] = False


def _call(job):
    index, func, item = job
    result = func(item, _worker["data"], _worker["progress"])
    result["worker"] = {"pid": os.getpid(), "blas_threads": os.environ.get(THREAD_VARS[0]),
                        "data_load_time": _worker["load_time"]}
    return index, result


def run_jobs(func, items, args, split="b", n_val=5000, workers=2, threads=1, progress=False,
             order=None, on_done=None, val_choice="last"):
    """[func(item, data, progress) for item in items], computed by `workers` processes.

    func must be a module-level function (it is pickled by name); data is load_data(args,
    split, n_val, val_choice), loaded once per worker. Workers are `spawn`ed with `threads`
    BLAS threads.
    order: optional key giving the start order (e.g. longest first); results keep items' order.
    on_done(i, result) is called in this process as each result arrives.
    With workers <= 1 everything runs here, with this process's BLAS threads.
    """
    items = list(items)
    jobs = [(i, func, item) for i, item in enumerate(items)]
    if order is not None:
        jobs.sort(key=lambda j: order(j[2]), reverse=True)
    results = [None] * len(items)
    if workers <= 1 or len(items) <= 1:
        t0 = time.perf_counter()
        data = load_data(args, split, n_val, val_choice)
        load_time = time.perf_counter() - t0
        for i, _, item in jobs:
            result = func(item, data, progress)
            result["worker"] = {"pid": os.getpid(),
                                "blas_threads": os.environ.get(THREAD_VARS[0]),
                                "data_load_time": load_time}
            results[i] = result
            if on_done:
                on_done(i, result)
        return results
    pool = _start_pool(min(workers, len(items)), threads, (args, split, n_val, val_choice))
    try:
        for i, result in pool.imap_unordered(_call, jobs):
            results[i] = result
            if on_done:
                on_done(i, result)
    except BaseException:  # Ctrl-C, SIGTERM, an error: stop the workers now, not after the queue
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()
    return results


def run_variants(variants, args, split="b", workers=2, threads=1, progress=False,
                 val_choice="last"):
    """Train every Variant (longest first when parallel), printing each result as it ends."""
    done = [0]

    def report(i, run):
        done[0] += 1
        print(f"[{done[0]}/{len(variants)}] {run['label']}: {common.accuracy_text(run['final'])} "
              f"({run['wall_time']:.0f} s)", flush=True)
    return run_jobs(train_variant, variants, args, split, workers=workers, threads=threads,
                    progress=progress and workers <= 1, order=Variant.cost, on_done=report,
                    val_choice=val_choice)


def add_parallel_args(p: argparse.ArgumentParser, workers: int = 2) -> None:
    p.add_argument("--workers", type=common.positive_int, default=workers,
                   help="parallel training processes (1: run here, one at a time)")
    p.add_argument("--threads", type=common.positive_int, default=1,
                   help="BLAS threads per worker process")


# ---------------------------------------------------------------------------------------------
# Speed measurement and total wall time
# ---------------------------------------------------------------------------------------------

def speed(args) -> dict:
    """Two S4 3-layer BN runs: one at a time in a 2-thread worker vs side by side, 1 thread each."""
    n_s = common.QUICK_N_S if args.quick else args.n_s
    runs = [Variant([3072, 50, 50, 10], n_s=n_s, seed=s, label=f"S4 3-layer BN, seed {s}")
            for s in (0, 1)]
    modes = {"one at a time, 2 BLAS threads": (1, 2), "side by side, 1 BLAS thread each": (2, 1)}
    out = {}
    for name, (workers, threads) in modes.items():
        t0 = time.perf_counter()
        pool = _start_pool(workers, threads, (args, "b", 5000))
        try:
            results = [r for _, r in pool.imap_unordered(
                _call, [(i, train_variant, v) for i, v in enumerate(runs)])]
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.close()
            pool.join()
        wall = time.perf_counter() - t0
        load = max(r["worker"]["data_load_time"] for r in results)
        train = [r["wall_time"] for r in results]
        out[name] = {"workers": workers, "threads": threads, "wall_time_s": wall,
                     "data_load_s": load, "train_s": train,
                     # both runs' training, without the data loading
                     "training_wall_s": sum(train) if workers == 1 else max(train),
                     "test_acc": [r["final"]["test_acc"] for r in results]}
        print(f"{name}: {wall:.0f} s for both runs, {out[name]['training_wall_s']:.0f} s of it "
              f"training (data loading {load:.0f} s per worker; runs "
              f"{', '.join(f'{t:.0f} s' for t in train)})", flush=True)
    names = list(modes)
    faster = min(names, key=lambda n: out[n]["training_wall_s"])
    out["faster"] = faster
    out["load_avg_at_end"] = os.getloadavg()
    return out


def total_wall_time(root=common.RESULTS_ROOT) -> dict:
    """{study name: wall_time_s} of every full-run results.json under root, and their sum."""
    times = {}
    for path in sorted(root.glob("*/results.json")):
        results = json.loads(path.read_text())
        if not results.get("quick") and results.get("wall_time_s") is not None:
            times[path.parent.name] = float(results["wall_time_s"])
    return {"studies": times, "total_s": sum(times.values())}


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser("parallel", __doc__.split("\n")[0])
    p.add_argument("--speed", action="store_true", help="measure the two ways of running")
    p.add_argument("--total", action="store_true",
                   help="sum the wall times of the published studies (experiments/results/)")
    p.add_argument("--n-s", type=common.positive_int, default=2250,
                   help="n_s of the two timed S4 runs (2 cycles each; S4's own is 2250)")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    out = {}
    if args.speed:
        folder = common.output_dir(args, "parallel")
        folder.mkdir(parents=True, exist_ok=True)
        out["speed"] = speed(args)
        out["command"] = common.command_line("parallel", list(sys.argv[1:] if argv is None
                                                             else argv), args.data)
        out["quick"] = bool(args.quick)
        write_text(folder / "speed.json", json.dumps(common._jsonable(out), indent=1) + "\n")
        print(f"faster: {out['speed']['faster']}\nresults: {folder / 'speed.json'}")
    if args.total:
        out["total"] = total_wall_time()
        for name, t in out["total"]["studies"].items():
            print(f"  {name}: {t:.0f} s")
        print(f"total: {out['total']['total_s']:.0f} s ({out['total']['total_s'] / 60:.1f} min)")
    if not (args.speed or args.total):
        p.error("give --speed and/or --total")
    return out


if __name__ == "__main__":
    common.run_cli(main)
