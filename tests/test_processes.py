"""tensorgrad.processes: one-BLAS-thread workers that ignore Ctrl-C and reseed, and map_jobs."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.processes import (
    BLAS_VARIABLES,
    WorkerError,
    blas_threads,
    map_jobs,
    reseed,
    start_workers,
)

REPO = Path(__file__).resolve().parents[1]


def _report(item):
    """What a worker process looks like from inside: its BLAS setting, its SIGINT handler and
    its first draws from the global generators."""
    return {"item": item, "pid": os.getpid(), "blas": os.environ.get("OPENBLAS_NUM_THREADS"),
            "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
            "draw": float(np.random.random()), "py_draw": random.random()}


def _fail(item):
    if item == 2:
        raise ValueError(f"job {item} refuses")
    return item


def _write_pid(index, path):
    with open(path, "a") as f:
        f.write(f"{index} {os.environ['OMP_NUM_THREADS']} {np.random.random()}\n")


def _sleep_forever(index, path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(1)


def _running(pid):
    """Whether pid is a live process (a zombie, ended but not reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_worker_ends_when_the_process_that_started_it_is_killed(tmp_path):
    path = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from tensorgrad.processes import start_workers\n"
        "from tests.test_processes import _sleep_forever\n"
        f"start_workers(_sleep_forever, [({os.fspath(path)!r},)])\n"
        "time.sleep(600)\n")], cwd=REPO)
    try:
        for _ in range(600):   # wait for the worker (at most a minute)
            if path.exists() and path.read_text():
                break
            time.sleep(0.1)
        worker = int(path.read_text())
        assert _running(worker)
    finally:
        parent.kill()   # SIGKILL: the parent cannot stop its workers
        parent.wait()
    for _ in range(600):
        if not _running(worker):
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its parent by a minute")


def test_blas_threads_sets_and_restores_every_variable(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with blas_threads(1):
        assert all(os.environ[k] == "1" for k in BLAS_VARIABLES)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and "OMP_NUM_THREADS" not in os.environ
    with pytest.raises(ValueError, match="blas_threads: n must be a positive integer, got 0"):
        with blas_threads(0):
            pass


def test_reseed_depends_on_seed_and_index():
    state = tg.get_rng_state()

    def draws(seed, index):
        reseed(seed, index)
        return np.random.random(), random.random(), tg.randn(1).item()
    try:
        assert draws(0, 1) == draws(0, 1)
        assert len({draws(0, 0), draws(0, 1), draws(1, 0)}) == 3
    finally:
        tg.set_rng_state(state)


def test_map_jobs_in_workers_keeps_order_and_reports_as_results_arrive():
    seen = []
    out = map_jobs(_report, [3, 1, 2, 5], workers=2, seed=7, order=lambda x: x,
                   on_done=lambda i, r: seen.append(i))
    assert [r["item"] for r in out] == [3, 1, 2, 5] and sorted(seen) == [0, 1, 2, 3]
    assert os.getpid() not in {r["pid"] for r in out}   # not run here
    assert all(r["blas"] == "1" and r["sigint_ignored"] for r in out)
    # each worker's first draw comes from reseed(7, its index)
    firsts = {}
    for r in sorted(out, key=lambda r: r["item"], reverse=True):  # the start order
        firsts.setdefault(r["pid"], r["draw"])
    expected = set()
    for index in range(2):
        reseed(7, index)
        expected.add(float(np.random.random()))
    assert set(firsts.values()) <= expected


def test_map_jobs_in_process_runs_largest_first():
    seen = []
    out = map_jobs(lambda x: x * 10, [3, 1, 2], workers=1, order=lambda x: x,
                   on_done=lambda i, r: seen.append(r))
    assert out == [30, 10, 20] and seen == [30, 20, 10]


def test_a_failing_job_raises_its_own_exception_here():
    with pytest.raises(ValueError, match="job 2 refuses") as info:
        map_jobs(_fail, [1, 2, 3], workers=2)
    assert isinstance(info.value.__cause__, WorkerError)
    assert "Traceback" in str(info.value.__cause__)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="map_jobs: workers must be a positive integer, got 0"):
        map_jobs(_fail, [1], workers=0)
    with pytest.raises(ValueError, match="start_workers: seed must be an integer >= 0"):
        start_workers(_write_pid, [()], seed=-1)


def test_start_workers_passes_index_and_arguments(tmp_path):
    path = tmp_path / "seen.txt"
    procs = start_workers(_write_pid, [(path,), (path,)], seed=3, threads=2)
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    lines = sorted(path.read_text().split("\n")[:-1])
    reseed(3, 1)
    assert lines[0].startswith("0 2 ") and lines[1] == f"1 2 {np.random.random()}"
