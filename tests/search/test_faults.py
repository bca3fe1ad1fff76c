"""Storage faults of a search on a journal file: a damaged line, the file gone for a while or
for good, and a second Ctrl-C while the workers clean up. (PostgreSQL outages: test_postgres.)"""
import os
import signal
import subprocess
import sys
import time

import pytest

from tensorgrad.search import grid_points, storage
from tests.search import objectives as obj
from tests.search.test_search import ONE_THREAD, REPO, by_state, key, search


def test_a_corrupt_journal_line_is_reported_with_the_file_and_the_line_number(tmp_path,
                                                                              optuna):
    search(tmp_path, obj.quadratic)
    journal = tmp_path / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) > 20
    lines[9] = b'{"op_code": 5, "worker_id": \n'                  # line 10: cut short
    journal.write_bytes(b"".join(lines))
    with pytest.raises(RuntimeError) as err:
        search(tmp_path, obj.quadratic)
    assert isinstance(err.value, storage.CorruptJournal)
    assert f"journal file {journal}: line 10 is not a valid record" in str(err.value)


def test_a_journal_gone_for_less_than_the_retry_window_is_waited_for(tmp_path, optuna, capfd):
    folder = tmp_path / "runs"
    result = search(folder, obj.vanishing, storage_retry_seconds=30,
                           objective_kwargs={"folder": os.fspath(folder), "back_after": 0.5})
    assert len(result.records) == 20 and all(r["state"] == "COMPLETE" for r in result.records)
    assert sorted(key(r["params"]) for r in result.records) == \
        sorted(key(p) for p in grid_points(obj.SPACE))
    err = capfd.readouterr().err
    assert f"journal file {folder / 'study.journal'}" in err      # the outage was met...
    assert "No such file or directory" in err and "retrying for up to 30 s" in err
    assert "reachable again" in err                                # ...and waited out


def test_a_journal_gone_for_good_ends_with_one_message_and_the_same_call_resumes(tmp_path,
                                                                                  optuna):
    folder = tmp_path / "runs"
    journal = folder / "study.journal"
    with pytest.raises(RuntimeError) as err:
        search(folder, obj.vanishing, storage_retry_seconds=1,
                      objective_kwargs={"folder": os.fspath(folder)})
    assert isinstance(err.value, storage.StorageUnavailable)
    message = str(err.value)
    assert f"journal file {journal}" in message and "No such file or directory" in message
    assert "unavailable for 1 s" in message
    os.rename(f"{folder}.away", folder)                      # the share is back
    study = optuna.load_study(study_name="s",
                              storage=storage.open_storage(storage.StorageSpec(journal)))
    before = {t.number: (key(t.params), t.value) for t in study.trials
              if t.state.name == "COMPLETE"}
    assert len(before) == 3                                   # trials 0-2; 3 was in flight

    again = search(folder, obj.quadratic)
    groups = by_state(again.records)
    assert sorted(key(r["params"]) for r in groups["COMPLETE"]) == \
        sorted(key(p) for p in grid_points(obj.SPACE))        # every grid point once
    for r in groups["COMPLETE"]:
        if r["number"] in before:                             # kept, not re-run
            assert before[r["number"]] == (key(r["params"]), r["value"])
    (lost,) = groups["FAIL"]                                  # only the trial in flight
    assert lost["number"] == 3 and again.records[lost["retried_as"]]["state"] == "COMPLETE"


def test_a_second_ctrl_c_stops_workers_stuck_in_their_clean_up_at_once(tmp_path, optuna):
    progress = tmp_path / "progress"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.search.objectives", "--storage",
         tmp_path / "study.journal", "--study-name", "stuck", "--objective", "stubborn",
         "--workers", "2", "--verbose"],
        cwd=REPO, env={**os.environ, **ONE_THREAD, obj.PROGRESS: os.fspath(progress)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: len({pid for _, pid in obj.progress_events(progress, "start")}) == 2,
                 proc)
        os.killpg(proc.pid, signal.SIGINT)          # Ctrl-C: the workers get stuck...
        wait_for(lambda: len(obj.progress_events(progress, "stuck")) == 2, proc)
        os.killpg(proc.pid, signal.SIGINT)          # ...and a second Ctrl-C ends them
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    study = optuna.load_study(study_name="stuck", storage=storage.open_storage(
        storage.StorageSpec(tmp_path / "study.journal")))
    assert not live_workers(study)
    assert [t.state.name for t in study.trials] == ["RUNNING"] * 2   # re-queued next time


def live_workers(study):
    """The processes that ran trials of study and are still alive. The search waits for its
    worker processes before it exits, so none may be left once it has ended."""
    alive = []
    for worker in {t.user_attrs.get("worker") for t in study.trials} - {None}:
        pid = int(worker.split(":")[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def wait_for(condition, proc=None, timeout=120.0, every=0.05):
    """Poll until condition() holds; fail if `proc` ends first, or after `timeout` seconds (a
    hang guard only)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (exit code {proc.returncode}) before "
                        f"{condition.__qualname__}:\n{out[-2000:]}\n{err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {timeout} s for {condition.__qualname__}")
        time.sleep(every)
