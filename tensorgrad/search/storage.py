"""Where a search's trials live, and the locks and repairs that make it exact and resumable.

A study is stored either in an Optuna journal file (several worker processes on one machine)
or in PostgreSQL through Optuna's RDB storage (workers on several machines, with heartbeats).
Two rules keep the trial count exact and every grid point run once:
- a worker claims its next trial under a lock (an flock on `<journal>.claim`, or a PostgreSQL
  advisory lock), so "is the budget spent?" and "start a trial" happen as one step;
- a trial whose worker died is marked failed and its parameters re-queued (Optuna's WAITING
  state, with Optuna's `failed_trial` / `retry_history` bookkeeping): by heartbeats on
  PostgreSQL, and for a journal when no worker is alive, which every live worker proves by
  holding a shared flock on `<journal>.workers`.
"""
from __future__ import annotations

import fcntl
import logging
import os
import warnings
import zlib
from dataclasses import dataclass

__all__ = ["StorageSpec", "import_optuna", "open_storage", "requeue", "requeued_numbers",
           "budget_used", "ClaimLock", "WorkerLock", "recover"]

INSTALL_HINT = 'pip install -e ".[search]"  (Optuna 4 and psycopg2-binary)'
RDB_PREFIXES = ("postgresql://", "postgresql+psycopg2://")


def import_optuna():
    """Optuna, imported on first use (it is an optional extra), with its INFO logging off."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(f"tensorgrad.search needs Optuna, which is not installed: "
                          f"{INSTALL_HINT}") from exc
    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


@dataclass(frozen=True)
class StorageSpec:
    """A picklable description of the storage that worker processes open themselves.

    url: a journal file path, or postgresql://user:password@host:port/database.
    heartbeat / grace: seconds between heartbeats of a running trial, and the silence after
    which it counts as dead (PostgreSQL only). max_retry: how often a dead worker's trial is
    re-queued before it stays failed.
    """
    url: str
    heartbeat: int = 10
    grace: int = 40
    max_retry: int = 2

    def __post_init__(self):
        url = os.fspath(self.url)
        object.__setattr__(self, "url", url)
        if "://" in url and not url.startswith(RDB_PREFIXES):
            raise ValueError(f"storage: expected a journal file path or a postgresql:// URL, got "
                             f"{url!r}")
        if self.heartbeat < 1 or self.grace <= self.heartbeat:
            raise ValueError(f"storage: needs heartbeat >= 1 and grace > heartbeat seconds, got "
                             f"heartbeat={self.heartbeat}, grace={self.grace}")

    @property
    def is_rdb(self) -> bool:
        return self.url.startswith(RDB_PREFIXES)

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with its driver named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg
        3, while the search extra installs psycopg2."""
        if self.url.startswith("postgresql://"):
            return "postgresql+psycopg2://" + self.url[len("postgresql://"):]
        return self.url

    def describe(self) -> str:
        if not self.is_rdb:
            return f"journal file {self.url}"
        head, _, tail = self.url.partition("://")
        return f"{head}://{tail.rpartition('@')[2]}"  # no password in logs


def open_storage(spec: StorageSpec):
    """The Optuna storage of spec (journal file backend, or RDB storage with heartbeats)."""
    optuna = import_optuna()
    if spec.is_rdb:
        try:
            import psycopg2  # noqa: F401  (the driver SQLAlchemy uses for postgresql://)
        except ImportError as exc:
            raise ImportError(f"a postgresql:// storage needs psycopg2: {INSTALL_HINT}") from exc
        # Machines starting together on a fresh database would race to create Optuna's
        # tables: one at a time, under an advisory lock.
        with _AdvisoryLock(spec, "tensorgrad.search:schema"), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                spec.sqlalchemy_url, engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=spec.heartbeat, grace_period=spec.grace,
                heartbeat_stale_trial_callback=Requeue(spec.max_retry))
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    folder = os.path.dirname(os.path.abspath(spec.url))
    os.makedirs(folder, exist_ok=True)
    return JournalStorage(JournalFileBackend(spec.url))


def requeue(study, trial, max_retry=None):
    """Put a failed trial's parameters back in the queue (a WAITING trial), as Optuna's
    RetryHeartbeatStaleTrialCallback does; returns False when retries are exhausted."""
    optuna = import_optuna()
    history = list(trial.system_attrs.get("retry_history", [])) + [trial.number]
    if max_retry is not None and len(history) > max_retry:
        return False
    system_attrs = {**trial.system_attrs, "failed_trial": history[0], "retry_history": history}
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params,
        distributions=trial.distributions, system_attrs=system_attrs,
        user_attrs={"retry_of": trial.number}))
    return True


class Requeue:
    """Heartbeat callback of the RDB storage: re-queue each trial found stale."""

    def __init__(self, max_retry):
        self.max_retry = max_retry

    def __call__(self, study, trial):
        requeue(study, trial, self.max_retry)


def requeued_numbers(trials) -> set:
    """Numbers of the failed trials that have a retry (they do not count against the budget)."""
    out = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def budget_used(trials) -> int:
    """Trials that count against --trials: all, except failed ones replaced by a retry."""
    return len(trials) - len(requeued_numbers(trials) & {t.number for t in trials})


class _FileLock:
    """An flock on a file beside the journal; released by the OS if the process dies."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self, shared=False, block=True) -> bool:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if block else fcntl.LOCK_NB)
        try:
            fcntl.flock(self.fd, flags)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False
        return True

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class WorkerLock(_FileLock):
    """Held shared by every live worker of a journal study (and exclusively, briefly, by the
    start-up repair, which therefore knows that no RUNNING trial has a live worker)."""

    def __init__(self, spec: StorageSpec):
        super().__init__(f"{spec.url}.workers")


class _AdvisoryLock:
    """A PostgreSQL session-level advisory lock on its own connection (any machine)."""

    def __init__(self, spec: StorageSpec, name: str):
        import sqlalchemy
        self._engine = sqlalchemy.create_engine(spec.sqlalchemy_url,
                                                poolclass=sqlalchemy.pool.NullPool)
        self._conn = None
        self._key = zlib.crc32(name.encode()) - 2 ** 31   # a signed 32-bit key

    def _sql(self, statement):
        import sqlalchemy
        if self._conn is None:
            self._conn = self._engine.connect()
        self._conn.execute(sqlalchemy.text(statement), {"k": self._key})
        self._conn.commit()

    def acquire(self):
        self._sql("SELECT pg_advisory_lock(:k)")

    def release(self):
        self._sql("SELECT pg_advisory_unlock(:k)")

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        try:
            self.release()
        finally:
            self.close()


class ClaimLock:
    """Serialises "check the budget, then start a trial" across all workers of one study."""

    def __init__(self, spec: StorageSpec, study_name: str):
        self.held = False
        self._lock = (_AdvisoryLock(spec, f"tensorgrad.search:{study_name}") if spec.is_rdb
                      else _FileLock(f"{spec.url}.claim"))

    def acquire(self):
        self._lock.acquire()
        self.held = True

    def release(self):
        if self.held:
            self.held = False
            self._lock.release()

    def close(self):
        self.release()
        if isinstance(self._lock, _AdvisoryLock):
            self._lock.close()


def requeue_interrupted(study, trials, max_retry) -> int:
    """Re-queue failed trials marked interrupted (Ctrl-C) that have no retry yet. Call it under
    the ClaimLock, so that two processes never re-queue the same trial."""
    optuna = import_optuna()
    done = requeued_numbers(trials)
    n = 0
    for t in trials:
        if (t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted")
                and t.number not in done):
            n += requeue(study, t, max_retry)
    return n


def recover(study, spec: StorageSpec) -> list[int]:
    """Mark failed, and re-queue, the trials whose worker is gone; returns their numbers.

    PostgreSQL: Optuna's heartbeat check (trials silent for longer than the grace period).
    Journal: the RUNNING trials, but only if no worker holds the WorkerLock (else nothing).
    """
    optuna = import_optuna()
    running = optuna.trial.TrialState.RUNNING
    if spec.is_rdb:
        before = {t.number for t in study.get_trials(deepcopy=False, states=(running,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fail_stale_trials is marked experimental
            optuna.storages.fail_stale_trials(study)
        failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
        return sorted(t.number for t in failed if t.number in before)
    lock = WorkerLock(spec)
    if not lock.acquire(block=False):
        return []
    try:
        stale = study.get_trials(deepcopy=True, states=(running,))
        for t in stale:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            requeue(study, study.trials[t.number], spec.max_retry)
        return [t.number for t in stale]
    finally:
        lock.release()

