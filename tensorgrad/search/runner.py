"""run_search: one or two stages of trials, run by N worker processes over a shared storage.

Stage 1 searches `space` with the chosen sampler; an optional second stage (`Refine`, the
reports' coarse-to-fine) searches a space narrowed around stage 1's best, in a study of its
own named `<study_name>-fine`. Each stage is an Optuna study; running the same call again
continues it (finished trials are kept, trials of dead workers are re-queued), and workers on
other machines join by calling it with the same PostgreSQL storage and study name.

Interruptions: worker processes ignore Ctrl-C (it reaches the whole process group); the
process that started them handles it, asks them to stop with SIGTERM (each records its trial
in flight as interrupted), waits for them, and kills them at once on a second Ctrl-C.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from ..processes import start_workers
from .report import best_record, trial_records
from .space import Choice, check_space, grid_size, narrow, space_to_dict
from .storage import (
    Recovery,
    StorageError,
    StorageSpec,
    budget_used,
    import_optuna,
    open_storage,
)
from .worker import PRUNERS, SAMPLERS, StageSpec, run_worker

__all__ = ["Refine", "SearchResult", "run_search", "fine_space"]

@dataclass(frozen=True)
class Refine:
    """The second stage: `trials` trials (None with a grid: the whole grid) around the best of
    stage 1. Parameters in `fix` keep the best value, those in `space` get the range given
    there, and the others are narrowed `factor`-fold around the best (space.narrow)."""
    trials: int | None = None
    sampler: str | None = None
    factor: float = 10.0
    fix: tuple = ()
    space: dict = field(default_factory=dict)


def fine_space(space, best_params, refine: Refine) -> dict:
    """Stage 2's space from stage 1's space, its best parameters and a Refine."""
    unknown = (set(refine.fix) | set(refine.space)) - set(space)
    if unknown:
        raise ValueError(f"Refine: {sorted(unknown)} are not parameters of the search space "
                         f"{sorted(space)}")
    rest = {k: v for k, v in space.items() if k not in refine.space and k not in refine.fix}
    narrowed = narrow(rest, best_params, refine.factor) if rest else {}
    out = {}
    for name in space:
        if name in refine.fix:
            out[name] = Choice([best_params[name]])
        elif name in refine.space:
            out[name] = refine.space[name]
        else:
            out[name] = narrowed[name]
    return check_space(out)


@dataclass
class SearchResult:
    """All trials of all stages (report.trial_records rows), the best one, and the stages."""
    records: list
    best: dict | None
    stages: list
    wall_time: float


def run_search(objective, space, *, storage, study_name, trials=None, sampler="tpe",
               workers=1, pruner="median", pruner_options=None, sampler_options=None, seed=0,
               refine: Refine | None = None, objective_kwargs=None, verbose=True,
               poll=2.0, storage_retry_seconds=None) -> SearchResult:
    """Maximise objective(params, trial, **objective_kwargs) over space.

    storage: a journal file path, a postgresql:// URL, or a StorageSpec. trials: the total
    over all workers (and machines); a grid defaults to its size. workers > 1 starts that many
    processes ('spawn', one BLAS thread each); workers=1 runs in this process.
    storage_retry_seconds: how long an unreachable storage (database down, journal's file
    system gone) is retried, with backoff, before StorageUnavailable ends the search; default
    the StorageSpec's, STORAGE_RETRY_SECONDS = 60. Finished trials stay in the storage, and
    the same call made again resumes. A KeyboardInterrupt stops the workers (their trials in
    flight are re-queued by the next run) and is raised again.
    """
    check_space(space)
    spec = storage if isinstance(storage, StorageSpec) else StorageSpec(os.fspath(storage))
    if storage_retry_seconds is not None:
        spec = dataclasses.replace(spec, retry_seconds=storage_retry_seconds)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"run_search: workers must be a positive integer, got {workers!r}")
    if pruner not in PRUNERS:
        raise ValueError(f"run_search: pruner must be one of {PRUNERS}, got {pruner!r}")
    t0 = time.perf_counter()
    stage = _stage_spec(objective, space, spec, study_name, trials, sampler, pruner,
                        pruner_options, sampler_options, seed, objective_kwargs, verbose, 0)
    stages = [stage]
    study = _run_stage(stage, workers, poll)
    records = trial_records(study, stage=0)
    if refine is not None:
        best = best_record(records)
        if best is None:
            raise RuntimeError(f"run_search: stage 1 of {study_name!r} has no completed trial to "
                               f"refine around")
        fine = _stage_spec(objective, fine_space(space, best["params"], refine), spec,
                           f"{study_name}-fine", refine.trials, refine.sampler or sampler, pruner,
                           pruner_options, sampler_options, seed, objective_kwargs, verbose, 1)
        stages.append(fine)
        records += trial_records(_run_stage(fine, workers, poll), stage=1)
    info = [{"study_name": s.study_name, "sampler": s.sampler, "trials": s.trials,
             "space": space_to_dict(s.space)} for s in stages]
    return SearchResult(records, best_record(records), info, time.perf_counter() - t0)


def _stage_spec(objective, space, spec, study_name, trials, sampler, pruner, pruner_options,
                sampler_options, seed, objective_kwargs, verbose, index) -> StageSpec:
    if sampler not in SAMPLERS:
        raise ValueError(f"run_search: sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "grid":
        size = grid_size(space)
        trials = size if trials is None else trials
        if trials > size:
            raise ValueError(f"run_search: {study_name!r}: {trials} trials but the grid has only "
                             f"{size} points")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"run_search: {study_name!r}: trials must be a positive integer, got "
                         f"{trials!r}")
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"run_search: study_name must be a non-empty string, got {study_name!r}")
    return StageSpec(objective=objective, space=dict(space), study_name=study_name, storage=spec,
                     trials=trials, sampler=sampler, pruner=pruner,
                     pruner_options=dict(pruner_options or {}),
                     sampler_options=dict(sampler_options or {}),
                     objective_kwargs=dict(objective_kwargs or {}), seed=seed, stage=index,
                     verbose=verbose)


def _open_study(stage: StageSpec):
    """Create the stage's study, or load it and check it was made for the same search."""
    optuna = import_optuna()
    study = optuna.create_study(study_name=stage.study_name, storage=open_storage(stage.storage),
                                direction="maximize", load_if_exists=True)
    mine = {"space": space_to_dict(stage.space), "sampler": stage.sampler, "seed": stage.seed}
    stored = study.user_attrs.get("tensorgrad.search")
    if stored is None:
        study.set_user_attr("tensorgrad.search", mine)
    elif stored != mine:
        raise ValueError(
            f"study {stage.study_name!r} in {stage.storage.describe()} was made for another "
            f"search:\n  stored: {stored}\n  now:    {mine}\nchoose another study name (or "
            f"storage) or run the original command again")
    return study


def _state(study):
    optuna = import_optuna()
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    return trials, count


def _run_stage(stage: StageSpec, workers: int, poll: float):
    """Run the stage's trials to the end: repair, start workers, wait for other machines'."""
    optuna = import_optuna()
    S = optuna.trial.TrialState
    study = _open_study(stage)
    say = print if stage.verbose else (lambda *a, **k: None)
    say(f"{stage.study_name}: {stage.sampler} search, {stage.trials} trials, storage "
        f"{stage.storage.describe()}", flush=True)
    idle_rounds = 0
    recover = Recovery(study, stage.storage)
    while True:
        repaired = recover()
        if repaired:
            say(f"{stage.study_name}: trials {repaired} had lost their worker: marked failed, "
                f"parameters re-queued", flush=True)
        trials, count = _state(study)
        todo = count[S.WAITING] + max(0, stage.trials - budget_used(trials))
        finished_before = count[S.COMPLETE] + count[S.PRUNED] + count[S.FAIL]
        if todo:
            codes = _start_workers(stage, min(workers, todo))
            bad = [c for c in codes if c != 0]
            if bad:
                say(f"{stage.study_name}: {len(bad)} worker(s) ended abnormally (exit codes "
                    f"{bad}); their trials will be repaired and re-run", flush=True)
        # Trials still RUNNING belong to other processes (other machines): wait for them.
        while True:
            trials, count = _state(study)
            more = count[S.WAITING] or budget_used(trials) < stage.trials
            if more or not count[S.RUNNING]:
                break
            time.sleep(poll)
            recover()
        if not more:
            say(f"{stage.study_name}: done: {count[S.COMPLETE]} complete, {count[S.PRUNED]} "
                f"pruned, {count[S.FAIL]} failed", flush=True)
            return study
        finished = count[S.COMPLETE] + count[S.PRUNED] + count[S.FAIL]
        idle_rounds = 0 if finished > finished_before else idle_rounds + 1
        if idle_rounds >= 3:
            raise RuntimeError(f"{stage.study_name}: workers keep stopping without finishing "
                               f"any trial; see their output above")


def _stop_requested(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # one request is enough
    raise KeyboardInterrupt("stopped by SIGTERM")


def _worker_main(index, stage, outages):
    """A worker process (started by tensorgrad.processes: Ctrl-C ignored, one BLAS thread).
    SIGTERM, the request to stop from the process that started it, acts as a Ctrl-C here (the
    trial in flight is recorded as interrupted). An outage (or a damaged journal) is sent back
    through `outages` for the starting process to report, once."""
    signal.signal(signal.SIGTERM, _stop_requested)
    try:
        run_worker(stage, index)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGTERM)
    except StorageError as exc:
        outages.send(exc)
        sys.exit(1)


def _start_workers(stage: StageSpec, n: int) -> list[int]:
    """Run n workers to the end; one runs in this process, more run as 'spawn' processes
    (a fresh interpreter, so the one-thread BLAS setting holds from numpy's import on)."""
    if n == 1:
        run_worker(stage, 0)
        return [0]
    pipes = [multiprocessing.get_context("spawn").Pipe(duplex=False) for _ in range(n)]
    procs = []
    try:
        procs = start_workers(_worker_main, [(stage, send) for _, send in pipes],
                              seed=stage.seed, name=f"{stage.study_name}-worker")
        for p in procs:
            p.join()
    finally:
        _stop(procs, stage)
    outages = [receive.recv() for receive, _ in pipes if receive.poll()]
    if outages:
        raise outages[0]
    return [p.exitcode for p in procs]


def _stop(procs, stage: StageSpec):
    """Stop the workers still running (this process was interrupted, or failed): SIGTERM
    asks each to record its trial in flight as interrupted and end; they are waited for, and
    killed at once if this process is interrupted again."""
    running = [p for p in procs if p.is_alive()]
    for p in running:
        p.terminate()
    try:
        deadline = time.monotonic() + 1.0
        for p in running:
            p.join(max(0.0, deadline - time.monotonic()))
        if any(p.is_alive() for p in running):
            if stage.verbose:
                print(f"{stage.study_name}: waiting for the workers to record their trials "
                      f"(Ctrl-C again to stop them at once)", file=sys.stderr, flush=True)
            for p in running:
                p.join()
    finally:
        for p in running:
            if p.is_alive():
                p.kill()
                p.join()
