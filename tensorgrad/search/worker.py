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

import functools
import logging
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
    StorageRetry,
    StorageSpec,
    StorageUnavailable,
    WorkerLock,
    budget_used,
    import_optuna,
    open_storage,
    requeue_interrupted,
    requeued_numbers,
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


def make_sampler(spec: StageSpec, worker_seed):
    """Optuna's sampler of spec: the grid order is the study's (spec.seed), so every worker
    walks the same shuffled grid; random and TPE draw from seeds of their own per worker,
    renewed for each trial (`per_trial_seed`). worker_seed: an int or a sequence of ints."""
    optuna = import_optuna()
    samplers = optuna.samplers
    if spec.sampler == "grid":
        return samplers.GridSampler(grid_values(spec.space), seed=spec.seed)
    if spec.sampler == "random":
        return per_trial_seed(lambda seed: samplers.RandomSampler(seed=seed), worker_seed)
    if spec.sampler == "tpe":  # constant_liar: running trials count as bad, so parallel
        def tpe(seed):         # workers do not all sample the same point
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return samplers.TPESampler(**{"seed": seed, "constant_liar": True,
                                              **spec.sampler_options})
        return per_trial_seed(tpe, worker_seed)
    raise ValueError(f"search: sampler must be one of {SAMPLERS}, got {spec.sampler!r}")


@functools.cache
def _per_trial_seed_class():
    """PerTrialSeed subclasses Optuna's BaseSampler, which is imported only when a search runs."""
    optuna = import_optuna()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    class PerTrialSeed(optuna.samplers.BaseSampler):
        """A sampler made afresh for each trial, seeded by (worker seed, the number of trials
        finished so far): the draws do not depend on how many processes the study took, so a
        study resumed after a kill samples what the uninterrupted one would have (with one
        worker: a lost trial is re-queued with its parameters, and the next is drawn from the
        same seed and the same finished trials)."""

        def __init__(self, make, seed):
            self._make, self._seed = make, np.atleast_1d(np.asarray(seed, dtype=np.uint64))
            self._inner = make(self._derived(0))

        def _derived(self, n):
            return int(np.random.SeedSequence([*self._seed.tolist(), n]).generate_state(1)[0])

        def before_trial(self, study, trial):
            n = sum(t.state in finished for t in study.get_trials(deepcopy=False))
            self._inner = self._make(self._derived(n))
            self._inner.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self._inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self._inner.after_trial(study, trial, state, values)

        def reseed_rng(self):
            self._inner.reseed_rng()

    return PerTrialSeed


def per_trial_seed(make, seed):
    """make(seed) -> a sampler, made afresh before each trial from (seed, trials finished)."""
    return _per_trial_seed_class()(make, seed)


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


class _QuietFailures(logging.Filter):
    """Drops Optuna's "Trial N failed ... because of <error>" warning (with a traceback), and
    its next line, for the errors reported elsewhere in one line: an interruption or an
    outage (by whoever started the search), a trial taken over (by the worker)."""

    def __init__(self, errors):
        super().__init__()
        self.errors, self.skip_next = errors, False

    def filter(self, record):
        if record.exc_info and issubclass(record.exc_info[0], self.errors):
            self.skip_next = True
            return False
        keep, self.skip_next = not self.skip_next, False
        return keep


def run_worker(spec: StageSpec, index: int = 0) -> int:
    """Run trials of spec's study until its budget is spent and its queue is empty.

    Returns the number of trials this worker ran. Each trial is claimed under the study's
    ClaimLock (released as soon as the trial has started), so the workers together run
    exactly spec.trials trials plus the retries of trials whose worker died. A storage outage
    is waited out for spec.storage.retry_seconds, then raises StorageUnavailable; a
    KeyboardInterrupt records the trial in flight as interrupted (re-queued by the next run).
    """
    optuna = import_optuna()
    state = optuna.trial.TrialState
    retrying = StorageRetry(spec.storage)
    finished_error = optuna.exceptions.UpdateFinishedTrialError   # the trial was taken over
    quiet = _QuietFailures((KeyboardInterrupt, StorageUnavailable, finished_error))
    optuna_log = logging.getLogger("optuna.study._optimize")   # where Optuna logs failures
    optuna_log.addFilter(quiet)
    alive = claim = None
    who = f"{socket.gethostname()}:{os.getpid()}"
    try:
        storage = open_storage(spec.storage, retrying)
        if not spec.storage.is_rdb:
            alive = WorkerLock(spec.storage)
            retrying(alive.acquire, shared=True)
        claim = ClaimLock(spec.storage, spec.study_name, retrying)
        study = optuna.load_study(study_name=spec.study_name, storage=storage,
                                  sampler=make_sampler(spec, (spec.seed, spec.stage, index)),
                                  pruner=make_pruner(spec.pruner, spec.pruner_options))

        current = {}   # the number of the trial being run

        def objective(optuna_trial):
            t0 = time.perf_counter()
            params = {}
            current["number"] = optuna_trial.number
            try:
                claim.release()  # the trial exists: others may claim theirs
                optuna_trial.set_user_attr("worker", who)
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
            except (StorageUnavailable, finished_error):   # nothing more can be recorded
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
                current["number"] = None
                try:
                    study.optimize(objective, n_trials=1, catch=(Exception,),
                                   gc_after_trial=False)
                except Exception:
                    # After an outage longer than the heartbeat grace period, another worker
                    # may have failed and re-queued this worker's trial (Optuna then raises
                    # as it records it): go on with the next.
                    if retrying.failure is not None or not _taken_over(study, current):
                        raise
                    if spec.verbose:
                        print(f"[{spec.study_name} w{index}] trial {current['number']}: another "
                              f"worker re-queued it while this one could not reach the "
                              f"storage; going on", flush=True)
                ran += 1
            finally:
                claim.release()
        return ran
    except Exception as exc:
        if retrying.failure is not None:   # the outage, not what Optuna made of it
            raise retrying.failure from None
        interrupt = _behind(exc, KeyboardInterrupt)
        if interrupt is not None:
            raise interrupt from None
        raise
    finally:
        optuna_log.removeFilter(quiet)
        if claim is not None:
            claim.close()
        if alive is not None:
            alive.release()


def _taken_over(study, current) -> bool:
    """Whether the trial this worker is running was failed and re-queued by another."""
    number = current.get("number")
    if number is None:
        return False
    trials = study.get_trials(deepcopy=False)
    return (trials[number].state == import_optuna().trial.TrialState.FAIL
            and number in requeued_numbers(trials))


def _behind(exc, kind):
    """The exception of type `kind` that exc is, or was raised while handling, if any: e.g.
    a KeyboardInterrupt arriving while Optuna records a trial comes out of its clean-up as
    an UnboundLocalError."""
    while exc is not None:
        if isinstance(exc, kind):
            return exc
        exc = exc.__context__
    return None


def _say(spec, index, number, state, text, params, t0):
    if spec.verbose:
        print(f"[{spec.study_name} w{index}] trial {number} {state}: {text}  ({_short(params)}; "
              f"{time.perf_counter() - t0:.1f} s)", flush=True)
