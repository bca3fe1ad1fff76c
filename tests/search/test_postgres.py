"""The multi-machine path: separate processes sharing one study on a real PostgreSQL server
(never sqlite), as workers on two machines would; heartbeats re-queue a dead one's trial."""
import os
import subprocess
import sys
import uuid

from tensorgrad.search import StorageSpec, grid_points, trial_records
from tests.search import objectives as obj
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
