"""Worker processes for parallel training: N 'spawn'ed processes with one BLAS thread each.

Small networks gain nothing from a second BLAS thread, so two one-thread trainings side by side
finish sooner than two two-thread ones in turn. A worker ignores Ctrl-C, which reaches the whole
process group: the process that started it answers by stopping the workers. It reseeds numpy's
and Python's global generators from (seed, worker index), so that whatever draws from them
differs between workers and repeats between runs.

    procs = start_workers(target, [args0, args1], seed=0)   # target(index, *args) per process
    results = map_jobs(func, items, workers=2, seed=0)     # [func(item) for item in items]
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import random
import signal
import threading
import traceback

import numpy as np

from .generator import manual_seed

__all__ = ["BLAS_VARIABLES", "blas_threads", "sigint_ignored", "reseed", "start_workers",
           "map_jobs", "WorkerError"]

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


class WorkerError(RuntimeError):
    """A job failed in a worker process and its exception could not be sent back whole."""


@contextlib.contextmanager
def blas_threads(n: int):
    """The BLAS thread variables set to n while the block runs, for the processes started in it
    (a BLAS library reads them once, when numpy is imported)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"blas_threads: n must be a positive integer, got {n!r}")
    saved = {k: os.environ.get(k) for k in BLAS_VARIABLES}
    os.environ.update({k: str(n) for k in BLAS_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def sigint_ignored():
    """Processes started inside ignore SIGINT from their first instruction on (an ignored signal
    stays ignored across exec); this process's handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers (the worker sets its own)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def reseed(seed: int, index: int) -> None:
    """Seed numpy's legacy global generator, Python's `random` and tensorgrad's global generator
    (`tg.manual_seed`) from (seed, index)."""
    state = np.random.SeedSequence([seed, index]).generate_state(3)
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))
    manual_seed(int(state[2]))


def _orphaned(parent: int, poll: float) -> None:
    """End this process as soon as its parent is gone (killed with SIGKILL, say), so that no
    worker goes on with jobs nobody waits for, beside the workers of a re-run."""
    while os.getppid() == parent:
        threading.Event().wait(poll)
    os._exit(1)


def _worker_main(target, index, seed, args, parent=None):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        threading.Thread(target=_orphaned, args=(parent, 0.5), daemon=True).start()
    reseed(seed, index)
    target(index, *args)


def start_workers(target, args_per_worker, *, seed: int = 0, threads: int = 1,
                  name: str = "worker") -> list:
    """Start one 'spawn' process per entry of args_per_worker, running target(index, *args)
    with `threads` BLAS threads, SIGINT ignored and the global generators reseeded from
    (seed, index); a worker ends itself when this process is gone. target must be picklable
    (a module-level function). Returns the started multiprocessing.Process objects; the caller
    joins or stops them."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"start_workers: seed must be an integer >= 0, got {seed!r}")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(target, i, seed, tuple(args), os.getpid()),
                         name=f"{name}{i}") for i, args in enumerate(args_per_worker)]
    with blas_threads(threads), sigint_ignored():
        for p in procs:
            p.start()
    return procs


def _serve(index, func, tasks, results):
    """A map_jobs worker: run jobs from `tasks` until its None, each result (or the job's
    exception, whole if it pickles) onto `results`."""
    while (job := tasks.get()) is not None:
        i, item = job
        try:
            results.put(("done", i, func(item)))
        except Exception as exc:
            text = traceback.format_exc()
            try:
                pickle.dumps(exc)
            except Exception:
                exc = WorkerError(f"job {i} failed in worker {index}:\n{text}")
            results.put(("error", i, (exc, text)))


def _stop(procs):
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join()


def map_jobs(func, items, *, workers: int = 1, seed: int = 0, threads: int = 1, order=None,
             on_done=None, here: bool | None = None, poll: float = 0.5) -> list:
    """[func(item) for item in items], computed by `workers` processes (start_workers).

    func must be picklable (a module-level function), and so must items and results. order:
    an optional key; the jobs start largest first (e.g. the longest runs), and the results keep
    the items' order. on_done(i, result) is called here as each result arrives. here: run
    everything in this process, with its BLAS threads (default: with one worker or one item).
    A job's exception is raised here
    (with the worker's traceback as its cause); the other workers are then stopped, as they are
    on Ctrl-C.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"map_jobs: workers must be a positive integer, got {workers!r}")
    items = list(items)
    jobs = list(enumerate(items))
    if order is not None:
        jobs.sort(key=lambda job: order(job[1]), reverse=True)
    results = [None] * len(items)
    if here is None:
        here = workers == 1 or len(items) <= 1
    if here:
        for i, item in jobs:
            results[i] = func(item)
            if on_done is not None:
                on_done(i, results[i])
        return results
    ctx = multiprocessing.get_context("spawn")
    tasks, done = ctx.Queue(), ctx.Queue()
    n = min(workers, len(items))
    for job in jobs + [None] * n:
        tasks.put(job)
    procs = start_workers(_serve, [(func, tasks, done)] * n, seed=seed, threads=threads,
                          name="job-worker")
    pending = len(items)
    try:
        while pending:
            try:
                kind, i, value = done.get(timeout=poll)
            except queue.Empty:
                if any(p.is_alive() for p in procs):
                    continue
                try:  # the last results may still be in the pipe when the workers have ended
                    kind, i, value = done.get(timeout=poll)
                except queue.Empty:
                    raise WorkerError(
                        f"map_jobs: the workers ended (exit codes "
                        f"{[p.exitcode for p in procs]}) with {pending} job(s) unfinished"
                    ) from None
            if kind == "error":
                exc, text = value
                raise exc from WorkerError(f"in a worker process:\n{text}")
            results[i] = value
            pending -= 1
            if on_done is not None:
                on_done(i, value)
    finally:
        _stop(procs)
    return results
