"""One search worker: claim a trial, run the objective with pruning, record the outcome, repeat.

An objective is a module-level function (worker processes import it by name)

    def objective(params: dict, trial: SearchTrial, **kwargs) -> float:
        history = fit(..., callbacks=[trial.pruning_callback("val_acc")])
        return history.last("val_acc")

It returns the value to maximise. A trial the pruner stops ends PRUNED; an exception (a NaN
loss's TrainingDiverged, a bad configuration) ends it FAIL with the reason kept in its user
attribute "reason", and the worker goes on with the next trial.
"""
from __future__ import annotations

import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..train import StopTraining
from .space import grid_values, suggest
from .storage import (
    ClaimLock,
    StorageSpec,
    WorkerLock,
    budget_used,
    import_optuna,
    open_storage,
    requeue_interrupted,
)

__all__ = ["SearchTrial", "PruningCallback", "StageSpec", "run_worker", "make_sampler",
           "make_pruner", "SAMPLERS", "PRUNERS"]

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "halving", "none")


class PruningCallback:
    """A `fit` callback reporting `monitor` (e.g. 'val_acc') at each measurement to the trial;
    when the pruner says the trial is hopeless it ends training (StopTraining) and the worker
    then records the trial as PRUNED."""

    def __init__(self, optuna_trial, monitor="val_acc"):
        self.trial, self.monitor = optuna_trial, monitor
        self.pruned_at = None   # (step, value) once pruned

    def __call__(self, step, metrics):
        if self.monitor not in metrics:
            raise KeyError(f"PruningCallback: fit measured {sorted(metrics)}, not "
                           f"{self.monitor!r}; pass val_data to fit or choose another monitor")
        value = float(metrics[self.monitor])
        self.trial.report(value, step)
        if self.pruned_at is None and self.trial.should_prune():
            self.pruned_at = (step, value)
            raise StopTraining(f"trial {self.trial.number} pruned at update {step}")
        return False


class SearchTrial:
    """What an objective receives besides the parameters: the trial number, the pruning
    callback for fit, and user attributes stored with the trial (e.g. a test accuracy)."""

    def __init__(self, optuna_trial, params, stage=0):
        self.optuna_trial = optuna_trial
        self.number = optuna_trial.number
        self.params = dict(params)
        self.stage = stage
        self._callbacks = []

    def pruning_callback(self, monitor="val_acc") -> PruningCallback:
        cb = PruningCallback(self.optuna_trial, monitor)
        self._callbacks.append(cb)
        return cb

    @property
    def pruned_at(self):
        return next((cb.pruned_at for cb in self._callbacks if cb.pruned_at), None)

    def set_user_attr(self, key, value):
        self.optuna_trial.set_user_attr(key, value)


@dataclass(frozen=True)
class StageSpec:
    """Everything a worker needs to run trials of one study (picklable, for 'spawn')."""
    objective: Callable
    space: dict
    study_name: str
    storage: StorageSpec
    trials: int
    sampler: str = "tpe"
    pruner: str = "median"
    pruner_options: dict = field(default_factory=dict)
    sampler_options: dict = field(default_factory=dict)
    objective_kwargs: dict = field(default_factory=dict)
    seed: int = 0
    stage: int = 0
    verbose: bool = True


def make_sampler(spec: StageSpec, worker_seed: int):
    """Optuna's sampler of spec: the grid order is the study's (spec.seed), so every worker
    walks the same shuffled grid; random and TPE draw from a seed of their own per worker."""
    optuna = import_optuna()
    samplers = optuna.samplers
    if spec.sampler == "grid":
        return samplers.GridSampler(grid_values(spec.space), seed=spec.seed)
    if spec.sampler == "random":
        return samplers.RandomSampler(seed=worker_seed)
    if spec.sampler == "tpe":  # constant_liar: running trials count as bad, so parallel
        with warnings.catch_warnings():  # workers do not all sample the same point
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return samplers.TPESampler(**{"seed": worker_seed, "constant_liar": True,
                                          **spec.sampler_options})
    raise ValueError(f"search: sampler must be one of {SAMPLERS}, got {spec.sampler!r}")


def make_pruner(name: str, options=None):
    """MedianPruner ('median'), SuccessiveHalvingPruner ('halving') or none."""
    pruners = import_optuna().pruners
    options = dict(options or {})
    if name == "median":
        return pruners.MedianPruner(**{"n_startup_trials": 5, **options})
    if name == "halving":
        return pruners.SuccessiveHalvingPruner(**options)
    if name == "none":
        return pruners.NopPruner()
    raise ValueError(f"search: pruner must be one of {PRUNERS}, got {name!r}")


def _short(params) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def run_worker(spec: StageSpec, index: int = 0) -> int:
    """Run trials of spec's study until its budget is spent and its queue is empty.

    Returns the number of trials this worker ran. Each trial is claimed under the study's
    ClaimLock (released as soon as the trial has started), so the workers together run
    exactly spec.trials trials plus the retries of trials whose worker died.
    """
    optuna = import_optuna()
    state = optuna.trial.TrialState
    storage = open_storage(spec.storage)
    alive = None
    if not spec.storage.is_rdb:
        alive = WorkerLock(spec.storage)
        alive.acquire(shared=True)
    claim = ClaimLock(spec.storage, spec.study_name)
    who = f"{socket.gethostname()}:{os.getpid()}"
    try:
        n_existing = len(optuna.load_study(study_name=spec.study_name, storage=storage).trials)
        worker_seed = int(np.random.SeedSequence(
            [spec.seed, spec.stage, index, n_existing]).generate_state(1)[0])
        study = optuna.load_study(study_name=spec.study_name, storage=storage,
                                  sampler=make_sampler(spec, worker_seed),
                                  pruner=make_pruner(spec.pruner, spec.pruner_options))

        def objective(optuna_trial):
            claim.release()  # the trial exists: others may claim theirs
            t0 = time.perf_counter()
            optuna_trial.set_user_attr("worker", who)
            params = {}
            try:
                params = suggest(optuna_trial, spec.space)
                trial = SearchTrial(optuna_trial, params, spec.stage)
                value = spec.objective(params, trial, **spec.objective_kwargs)
                if trial.pruned_at is not None:
                    step, last = trial.pruned_at
                    reason = f"pruned at update {step} (monitored value {last:.4g})"
                    optuna_trial.set_user_attr("reason", reason)
                    _say(spec, index, optuna_trial.number, "PRUNED", reason, params, t0)
                    raise optuna.TrialPruned(reason)
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError(f"the objective returned {value}")
            except optuna.TrialPruned:
                raise
            except KeyboardInterrupt:
                optuna_trial.set_user_attr("reason", "interrupted (KeyboardInterrupt)")
                optuna_trial.set_user_attr("interrupted", True)
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                optuna_trial.set_user_attr("reason", reason)
                _say(spec, index, optuna_trial.number, "FAIL", reason, params, t0)
                raise
            _say(spec, index, optuna_trial.number, "COMPLETE", f"value {value:.4f}", params, t0)
            return value

        ran = 0
        while True:
            claim.acquire()
            try:
                trials = study.get_trials(deepcopy=False)
                if requeue_interrupted(study, trials, spec.storage.max_retry):
                    trials = study.get_trials(deepcopy=False)
                waiting = any(t.state == state.WAITING for t in trials)
                if not waiting and budget_used(trials) >= spec.trials:
                    break
                study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
                ran += 1
            finally:
                claim.release()
        return ran
    finally:
        claim.close()
        if alive is not None:
            alive.release()


def _say(spec, index, number, state, text, params, t0):
    if spec.verbose:
        print(f"[{spec.study_name} w{index}] trial {number} {state}: {text}  ({_short(params)}; "
              f"{time.perf_counter() - t0:.1f} s)", flush=True)
