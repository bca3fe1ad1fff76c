"""Objectives for the search tests (module-level, so worker processes can import them), and a
command line that runs one search, so a test can start "machines" as separate processes:

    python -m tests.search.objectives --storage URL --study-name S --objective barrier ...
"""
import argparse
import json
import math
import os
import sys
import threading
import time

import numpy as np

from models.mlp import MLP
from tensorgrad.data import DataLoader
from tensorgrad.optim import SGD
from tensorgrad.search import Choice, Int, LogUniform, StorageSpec, run_search
from tensorgrad.train import fit

EXIT_AFTER = "TENSORGRAD_TEST_SEARCH_EXIT_AFTER"   # die hard when starting trial k+1
EXIT_CODE = 17
PROGRESS = "TENSORGRAD_TEST_SEARCH_PROGRESS"     # a file: "start|done|stuck <trial> <pid>" lines
SPACE = {"x": LogUniform(1e-4, 1.0, num=5), "k": Int(1, 4)}      # best: x = 0.01, k = 3
_started = 0


def quadratic(params, trial):
    """Maximum 0 at x = 0.01, k = 3 (a point of SPACE's grid)."""
    return -(math.log10(params["x"]) + 2) ** 2 - (params["k"] - 3) ** 2


def killer(params, trial):
    """quadratic, but the process exits at once (os._exit, no clean-up) when it starts its
    (k+1)-th trial, k from $TENSORGRAD_TEST_SEARCH_EXIT_AFTER: that trial stays RUNNING."""
    global _started
    limit = os.environ.get(EXIT_AFTER)
    if limit is not None and _started >= int(limit):
        os._exit(EXIT_CODE)
    _started += 1
    return quadratic(params, trial)


def barrier(params, trial, timeout=60.0):
    """quadratic, but each process's first trial waits until trials of two different workers
    have started, so that two processes certainly share the study."""
    global _started
    _started += 1
    trial.set_user_attr("blas_threads", os.environ.get("OPENBLAS_NUM_THREADS"))
    if _started == 1:
        study, t0 = trial.optuna_trial.study, time.monotonic()
        while len({t.user_attrs.get("worker") for t in study.get_trials(deepcopy=False)}
                  - {None}) < 2:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("barrier: no second worker joined the study")
            time.sleep(0.05)
    return quadratic(params, trial)


def picky(params, trial):
    """quadratic, except that k = 2 is a configuration the objective rejects."""
    if params["k"] == 2:
        raise ValueError("k = 2 is not a valid configuration")
    return quadratic(params, trial)


def _progress(event, trial):
    path = os.environ.get(PROGRESS)
    if path:
        with open(path, "a") as f:
            f.write(f"{event} {trial.number} {os.getpid()}\n")


def progress_events(path, event):
    """The (trial, pid) pairs of `event` lines in a progress file (none before it exists)."""
    try:
        with open(path) as f:
            lines = [line.split() for line in f]
    except FileNotFoundError:
        return []
    return [(int(n), int(pid)) for e, n, pid in lines if e == event]


def steady(params, trial, reports=20, pause=0.05):
    """quadratic, after `reports` values given to the pruner `pause` seconds apart: the
    storage is written to all along, so an outage meets a trial in flight."""
    _progress("start", trial)
    for step in range(reports):
        time.sleep(pause)
        trial.optuna_trial.report(float(step), step)
    _progress("done", trial)
    return quadratic(params, trial)


def stubborn(params, trial):
    """steady, but a KeyboardInterrupt (a Ctrl-C, or the SIGTERM its worker turns into one)
    makes it hang instead of ending: a clean-up that never finishes."""
    try:
        return steady(params, trial, reports=1000)
    except KeyboardInterrupt:
        _progress("stuck", trial)
        time.sleep(600)
        raise


_vanished = set()


def vanishing(params, trial, folder, back_after=None):
    """quadratic, but trial 3 moves `folder` (the journal's) away, as an unmounted network
    share would be, and moves it back `back_after` seconds later (None: never)."""
    if trial.number == 3 and folder not in _vanished:
        _vanished.add(folder)
        away = f"{folder}.away"
        os.rename(folder, away)
        if back_after is not None:
            threading.Timer(back_after, os.rename, (away, folder)).start()
    return quadratic(params, trial)


def _blobs():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 4)) * 3
    y = rng.integers(0, 3, 300)
    x = (centers[y] + rng.standard_normal((300, 4))).astype(np.float32)
    return (x[:200], y[:200]), (x[200:], y[200:])


def tiny_fit(params, trial):
    """A 2-layer MLP on three Gaussian blobs, 4 epochs of SGD at lr; val accuracy each epoch.
    lr 0 never learns (a hopeless trial); a huge lr makes the loss NaN (TrainingDiverged)."""
    train, val = _blobs()
    model = MLP([4, 16, 3], batch_norm=False, seed=0)
    history = fit(model, SGD(model.parameters(), lr=params["lr"]),
                  DataLoader(train, batch_size=20, seed=0), val_data=val, epochs=4,
                  callbacks=[trial.pruning_callback("val_acc")], progress=False)
    trial.set_user_attr("epochs_run", len(history.steps))
    return history.last("val_acc")


TINY_FIT_SPACE = {"lr": Choice([0.1, 0.3, 0.2, 0.0, 1e8])}
OBJECTIVES = {"quadratic": quadratic, "killer": killer, "barrier": barrier, "steady": steady,
              "stubborn": stubborn}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--storage", required=True)
    p.add_argument("--study-name", required=True)
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="quadratic")
    p.add_argument("--sampler", default="grid")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--heartbeat", type=int, default=10)
    p.add_argument("--grace", type=int, default=40)
    p.add_argument("--storage-retry-seconds", type=float, default=None)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    retry = {} if args.storage_retry_seconds is None else {
        "storage_retry_seconds": args.storage_retry_seconds}
    try:
        result = run_search(OBJECTIVES[args.objective], SPACE,
                            storage=StorageSpec(args.storage, heartbeat=args.heartbeat,
                                                grace=args.grace),
                            study_name=args.study_name, sampler=args.sampler,
                            trials=args.trials, workers=args.workers, pruner="none", poll=0.5,
                            verbose=args.verbose, **retry)
    except KeyboardInterrupt:
        sys.exit(130)
    print(json.dumps({"trials": len(result.records), "best": result.best["params"]}))


if __name__ == "__main__":
    main()
