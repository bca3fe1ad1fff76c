"""The multi-machine path: separate processes sharing one study on a real PostgreSQL server
(never sqlite), as workers on two machines would; heartbeats re-queue a dead one's trial. And
outages: a restart inside the retry window is waited out, a longer one ends the search with
one message, and the same command then resumes."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy.pool import NullPool

from tensorgrad.search import StorageSpec, grid_points, trial_records
from tests.experiments.conftest import run_module
from tests.search import objectives as obj
from tests.search.test_cli import start_module
from tests.search.test_faults import wait_for
from tests.search.test_search import ONE_THREAD, REPO, by_state, key, run_cli


def load(optuna, name, url):
    return optuna.load_study(study_name=name, storage=StorageSpec(url).sqlalchemy_url)


def test_two_machines_share_one_postgres_study(postgres_url, optuna):
    name = f"two-machines-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "tests.search.objectives", "--storage", postgres_url,
           "--study-name", name, "--objective", "barrier", "--sampler", "random",
           "--trials", "6"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    study = load(optuna, name, postgres_url)
    records = trial_records(study)
    assert len(records) == 6 and all(r["state"] == "COMPLETE" for r in records)
    pids = {int(r["worker"].split(":")[1]) for r in records}
    assert pids == {p.pid for p in procs}                  # both "machines" ran trials


def test_heartbeats_requeue_the_trial_of_a_dead_machine(postgres_url, optuna):
    name = f"dead-machine-{uuid.uuid4().hex[:8]}"
    args = ["--storage", postgres_url, "--study-name", name, "--objective", "killer",
            "--trials", "6", "--heartbeat", "1", "--grace", "3"]
    first = run_cli(*args, env={obj.EXIT_AFTER: "2"})
    assert first.returncode == obj.EXIT_CODE, first.stderr[-3000:]
    study = load(optuna, name, postgres_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]

    second = run_cli(*args)          # another machine: waits out the grace period, re-runs it
    assert second.returncode == 0, second.stderr[-3000:]
    records = trial_records(load(optuna, name, postgres_url))
    groups = by_state(records)
    done = {key(r["params"]) for r in groups["COMPLETE"]}
    assert len(groups["COMPLETE"]) == len(done) == 6        # 6 grid points, each once
    assert done <= {key(p) for p in grid_points(obj.SPACE)}
    (dead,) = groups["FAIL"]
    assert dead["number"] == 2 and records[dead["retried_as"]]["params"] == dead["params"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning",
                            "ignore:Heartbeat of storage:UserWarning")
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_requeued(postgres_url,
                                                                           optuna):
    name = f"no-heartbeat-{uuid.uuid4().hex[:8]}"
    storage = optuna.storages.RDBStorage(StorageSpec(postgres_url).sqlalchemy_url,
                                         heartbeat_interval=1, grace_period=3)
    orphan = optuna.create_study(study_name=name, storage=storage, direction="maximize").ask()
    assert orphan.number == 0               # RUNNING, and no heartbeat was ever recorded

    proc = run_cli("--storage", postgres_url, "--study-name", name, "--trials", "6",
                   "--heartbeat", "1", "--grace", "3", timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = trial_records(load(optuna, name, postgres_url))
    groups = by_state(records)
    assert len(groups["COMPLETE"]) == 6 and "RUNNING" not in groups
    (dead,) = groups["FAIL"]
    assert dead["number"] == 0 and records[dead["retried_as"]]["state"] == "COMPLETE"


# --- outages: a server of the module's own (postgres_server), stopped under a running search ---

@pytest.mark.parametrize("heartbeat, grace, down", [(10, 40, 0), (1, 3, 6)],
                         ids=["restart", "down-longer-than-the-heartbeat-grace"])
def test_a_database_outage_inside_the_retry_window_loses_no_trial(pg, optuna, tmp_path,
                                                                  heartbeat, grace, down):
    """A restart is waited out. An outage longer than the heartbeat grace period (6 s down,
    3 s grace) may also let a worker back first re-queue another's trial in flight: that
    worker goes on, and the trial is re-run."""
    name = f"restart-{uuid.uuid4().hex[:8]}"
    progress = tmp_path / "progress"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.search.objectives", "--storage", pg.url, "--study-name",
         name, "--objective", "steady", "--trials", "8", "--workers", "2",
         "--storage-retry-seconds", "60", "--heartbeat", str(heartbeat), "--grace", str(grace)],
        cwd=REPO, env={**os.environ, **ONE_THREAD, obj.PROGRESS: os.fspath(progress)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(obj.progress_events(progress, "done")) >= 2, proc)
        pg.stop("fast")                   # the open connections are ended
        time.sleep(down)
        pg.start()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "retrying for up to 60 s" in err and "reachable again" in err   # the outage was met
    assert "Traceback" not in err and "[W " not in err, err
    records = trial_records(load(optuna, name, pg.url))
    groups = by_state(records)
    assert len(groups["COMPLETE"]) == 8 and set(groups) <= {"COMPLETE", "FAIL"}
    assert len({key(r["params"]) for r in groups["COMPLETE"]}) == 8    # each grid point once
    for r in groups.get("FAIL", []):                  # taken over: re-queued and re-run
        assert r["retried_as"] is not None and r["params"] == records[r["retried_as"]]["params"]
    if down == 0:
        assert "FAIL" not in groups                   # none failed or lost


def test_a_database_outage_beyond_the_retry_window_ends_with_one_message_and_resumes(
        pg, optuna, tmp_path, tiny_cifar):
    name = f"outage-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "lam.json"
    spec.write_text(json.dumps({
        "space": {"lam": {"type": "loguniform", "low": 1e-4, "high": 1e-1}},
        "fixed": {"split": "a", "widths": "16", "cycles": 10}, "sampler": "random",
        "trials": 10}))
    head, _, tail = pg.url.partition("@")
    url = f"{head}:secret@{tail}"         # trust authentication ignores the password
    cmd = ["--space", spec, "--workers", "2", "--quick", "--data", tiny_cifar, "--out",
           tmp_path / "out", "--no-progress", "--pruner", "none", "--no-final", "--storage",
           url, "--study-name", name, "--heartbeat", "1", "--storage-retry-seconds", "3"]
    storage = optuna.storages.RDBStorage(      # the schema exists before the search starts
        StorageSpec(pg.url).sqlalchemy_url, engine_kwargs={"poolclass": NullPool})

    def completed():
        try:
            trials = optuna.load_study(study_name=name, storage=storage).trials
        except KeyError:                  # not created yet
            return {}
        return {t.number: (key(t.params), t.value) for t in trials
                if t.state.name == "COMPLETE"}

    proc = start_module("search", *cmd)
    try:
        wait_for(lambda: len(completed()) >= 1, proc)
        before = completed()
        pg.stop("fast")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 1, out[-3000:] + err[-3000:]
    assert "Traceback" not in err and "secret" not in err, err
    (message,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"postgresql://127.0.0.1:{pg.port}/tensorgrad_test" in message
    assert "Connection refused" in message and "unavailable for 3 s" in message
    assert "python -m experiments.search" in err          # the command that resumes
    assert len(err.splitlines()) < 12

    pg.start()
    again = run_module("search", *cmd)                     # the same command resumes
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    trials = json.loads((tmp_path / "out" / "results.json").read_text())["trials"]
    done = {t["number"]: (key(t["params"]), t["value"]) for t in trials
            if t["state"] == "COMPLETE"}
    assert len(done) == 10
    assert all(done[n] == v for n, v in before.items())   # nothing completed was lost
    assert all(t["retried_as"] is not None for t in trials if t["state"] == "FAIL")

