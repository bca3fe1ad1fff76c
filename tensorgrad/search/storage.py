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

A storage outage (the database down or restarting, the journal's file system gone) is waited
out: every call into the storage goes through a StorageRetry, which retries it with backoff for
up to `retry_seconds` and then raises StorageUnavailable, naming the storage and the cause.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import sys
import time
import warnings
import zlib
from dataclasses import dataclass

from ..deferred_signals import DeferredSignals

__all__ = ["StorageSpec", "import_optuna", "open_storage", "requeue", "requeued_numbers",
           "budget_used", "ClaimLock", "WorkerLock", "Recovery", "STORAGE_RETRY_SECONDS",
           "StorageRetry", "StorageError", "StorageUnavailable", "CorruptJournal"]

INSTALL_HINT = 'pip install -e ".[search]"  (Optuna 4 and psycopg2-binary)'
RDB_PREFIXES = ("postgresql://", "postgresql+psycopg2://")
STORAGE_RETRY_SECONDS = 60.0   # default: long enough for a database restart or a failover


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
    re-queued before it stays failed. retry_seconds: how long an unreachable storage is
    retried before the search stops (StorageRetry).
    """
    url: str
    heartbeat: int = 10
    grace: int = 40
    max_retry: int = 2
    retry_seconds: float = STORAGE_RETRY_SECONDS

    def __post_init__(self):
        url = os.fspath(self.url)
        object.__setattr__(self, "url", url)
        if "://" in url and not url.startswith(RDB_PREFIXES):
            raise ValueError(f"storage: expected a journal file path or a postgresql:// URL, got "
                             f"{url!r}")
        if self.heartbeat < 1 or self.grace <= self.heartbeat:
            raise ValueError(f"storage: needs heartbeat >= 1 and grace > heartbeat seconds, got "
                             f"heartbeat={self.heartbeat}, grace={self.grace}")
        if not self.retry_seconds >= 0:
            raise ValueError(f"storage: retry_seconds must be >= 0, got {self.retry_seconds!r}")

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

    @property
    def url_without_password(self) -> str:
        """url with its password (if any) shown as ***."""
        head, sep, tail = self.url.partition("://")
        login, at, host = tail.rpartition("@")
        if not (self.is_rdb and at and ":" in login):
            return self.url
        return f"{head}{sep}{login.partition(':')[0]}:***@{host}"


class StorageError(RuntimeError):
    """The search's storage cannot be used; the message names it and says why."""


class StorageUnavailable(StorageError):
    """The storage stayed unreachable for the whole retry window."""

    def __init__(self, where: str, cause: str, seconds: float):
        super().__init__(where, cause, seconds)
        self.where, self.cause, self.seconds = where, cause, seconds

    def __str__(self):
        return (f"search storage {self.where} unavailable for {self.seconds:g} s: {self.cause}; "
                f"its finished trials are kept, and the same search run again resumes")


class CorruptJournal(StorageError):
    """A line of a journal file is not a record: the file was damaged."""


def _outage_cause(exc, spec: StorageSpec) -> str | None:
    """What made the storage unreachable, if exc means that (a connection-level database
    error, or an error raised from or while handling one, such as Optuna's
    StorageInternalError; any OSError of a journal file), else None: other errors are not
    retried."""
    if not spec.is_rdb:
        return f"{exc}" if isinstance(exc, OSError) else None
    import sqlalchemy.exc
    seen = set()
    while exc is not None and id(exc) not in seen:   # what it was raised from, or during
        seen.add(id(exc))
        if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) or (
                isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated):
            return (str(exc.orig).strip() or repr(exc.orig)).splitlines()[0]
        exc = exc.__cause__ or exc.__context__
    return None


class StorageRetry:
    """Makes calls into one storage, retrying a call while the storage is unreachable.

    Retries start 0.1 s apart and double up to 5 s, for at most spec.retry_seconds
    (STORAGE_RETRY_SECONDS by default); then StorageUnavailable names the storage and the last
    cause. A line on stderr says when an outage starts and when it ends (once, however many
    threads meet it). After giving up once, later calls fail at once, so that clean-up code
    does not wait out a second window. A Ctrl-C during a call takes effect when the call
    returns (the waits between tries end at once), so that no write is left half done.
    """
    FIRST_DELAY, MAX_DELAY = 0.1, 5.0

    def __init__(self, spec: StorageSpec):
        self.spec = spec
        self.failure: StorageUnavailable | None = None
        self._announced = False   # the outage was told (once, whichever thread met it first)

    def __call__(self, call, *args, **kwargs):
        if self.failure is not None:
            raise self.failure
        start = None
        delay = self.FIRST_DELAY
        while True:
            try:
                with _interrupts_deferred():
                    result = call(*args, **kwargs)
            except Exception as exc:
                cause = _outage_cause(exc, self.spec)
                if cause is None:
                    raise
                now = time.monotonic()
                if start is None:
                    start = now
                    if not self._announced and self.spec.retry_seconds > 0:
                        self._announced = True
                        self._say(f"{cause}; retrying for up to {self.spec.retry_seconds:g} s")
                left = start + self.spec.retry_seconds - now
                if left <= 0:
                    self.failure = StorageUnavailable(self.spec.describe(), cause,
                                                      self.spec.retry_seconds)
                    raise self.failure from exc
                time.sleep(min(delay, left))
                delay = min(2 * delay, self.MAX_DELAY)
            else:
                if start is not None and self._announced:
                    self._announced = False
                    self._say(f"reachable again after {time.monotonic() - start:.1f} s")
                return result

    def _say(self, text):
        print(f"search storage {self.spec.describe()}: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _interrupts_deferred():
    """A Ctrl-C (SIGINT) or SIGTERM arriving inside is delivered as the block ends, so that a
    storage call (a journal write under Optuna's lock file, a transaction) is made whole; a
    second one is delivered at once (tensorgrad.deferred_signals)."""
    signals = DeferredSignals()
    try:
        with signals:
            yield
    finally:
        if signals.pending:
            signals.deliver()


def _connection_warnings(record) -> bool:
    """A logging filter: drops Optuna's warnings about a connection error it met (with the
    SQL, on ten lines), which StorageRetry reports in one."""
    text = record.getMessage()
    return not ("psycopg2.OperationalError" in text or "psycopg2.InterfaceError" in text)


class _RetryingStorage:
    """An Optuna storage whose every call goes through a StorageRetry. Each call of Optuna's
    RDB storage is one transaction, so a call that failed can be made again."""

    def __init__(self, storage, retrying: StorageRetry):
        self._storage, self._retrying = storage, retrying

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_storage", "_retrying"):
            raise AttributeError(name)
        attr = getattr(self._storage, name)
        return functools.partial(self._retrying, attr) if callable(attr) else attr

    def record_heartbeat(self, trial_id):
        """Heartbeats run in a thread of Optuna's: an outage there is left to the main thread
        to report (it meets it at its next call)."""
        with contextlib.suppress(StorageUnavailable):
            self._retrying(self._storage.record_heartbeat, trial_id)


@functools.cache
def _journal_file_class():
    """Optuna's JournalFileBackend (defined once Optuna is imported), with every read and
    append made through a StorageRetry, and naming the file and the line of a record it
    cannot read."""
    from optuna.storages.journal import JournalFileBackend

    class JournalFile(JournalFileBackend):
        def __init__(self, path, retrying: StorageRetry):
            self._retrying = retrying
            retrying(super().__init__, path)

        def read_logs(self, log_number_from):
            return iter(self._retrying(self._read, log_number_from))

        def _read(self, log_number_from):
            logs = []
            try:
                for log in super().read_logs(log_number_from):
                    if not isinstance(log, dict) or "op_code" not in log:
                        raise ValueError("not an operation")
                    logs.append(log)
            except ValueError as exc:   # JSONDecodeError, or Optuna's "Invalid log format."
                detail = f"{exc.msg} at character {exc.pos + 1}" if isinstance(
                    exc, json.JSONDecodeError) else str(exc)
                raise CorruptJournal(
                    f"journal file {self._file_path}: line {log_number_from + len(logs) + 1} is "
                    f"not a valid record ({detail}); the file is damaged: restore it from a "
                    f"copy, or start a new study") from None
            return logs

        def append_logs(self, logs):
            self._retrying(self._append, logs)

        def _append(self, logs):
            """Optuna's append under its lock, but a write that fails (a full disk) is cut
            off again: a retry must not leave half a record in front of the next one."""
            data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            data = memoryview(data.encode())
            self._lock.acquire()
            try:
                # No O_CREAT: a journal that vanished is an outage, not a new empty study.
                fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND)
                try:
                    end = os.lseek(fd, 0, os.SEEK_END)
                    try:
                        while data:
                            data = data[os.write(fd, data):]
                        os.fsync(fd)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, end)
                        raise
                finally:
                    os.close(fd)
            finally:
                self._lock.release()

    return JournalFile


def open_storage(spec: StorageSpec, retrying: StorageRetry | None = None):
    """The Optuna storage of spec (journal file backend, or RDB storage with heartbeats), all
    of whose calls go through `retrying` (by default a StorageRetry of its own)."""
    optuna = import_optuna()
    retrying = retrying or StorageRetry(spec)
    if spec.is_rdb:
        try:
            import psycopg2  # noqa: F401  (the driver SQLAlchemy uses for postgresql://)
        except ImportError as exc:
            raise ImportError(f"a postgresql:// storage needs psycopg2: {INSTALL_HINT}") from exc
        from optuna.storages._heartbeat import BaseHeartbeat
        optuna.storages.BaseStorage.register(_RetryingStorage)
        BaseHeartbeat.register(_RetryingStorage)
        logging.getLogger("optuna.storages._rdb.storage").addFilter(_connection_warnings)
        storage = retrying(_open_rdb, spec)
        return _RetryingStorage(optuna.storages.get_storage(storage), retrying)  # with cache
    from optuna.storages.journal import JournalStorage
    folder = os.path.dirname(os.path.abspath(spec.url))
    retrying(os.makedirs, folder, exist_ok=True)
    return JournalStorage(_journal_file_class()(spec.url, retrying))


def _open_rdb(spec: StorageSpec):
    optuna = import_optuna()
    # Machines starting together on a fresh database would race to create Optuna's tables:
    # one at a time, under an advisory lock.
    with _AdvisoryLock(spec, "tensorgrad.search:schema"), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            spec.sqlalchemy_url, engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=spec.heartbeat, grace_period=spec.grace,
            heartbeat_stale_trial_callback=Requeue(spec.max_retry))


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
    """A PostgreSQL session-level advisory lock, held by a connection of its own (any
    machine): releasing it closes the connection, which ends the session and with it the
    lock, also when the server has gone away meanwhile."""

    def __init__(self, spec: StorageSpec, name: str):
        import sqlalchemy
        self._engine = sqlalchemy.create_engine(spec.sqlalchemy_url,
                                                poolclass=sqlalchemy.pool.NullPool)
        self._conn = None
        self._key = zlib.crc32(name.encode()) - 2 ** 31   # a signed 32-bit key

    def acquire(self):
        import sqlalchemy
        self.release()
        self._conn = self._engine.connect()
        try:
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
            self._conn.commit()
        except BaseException:
            self.release()
            raise

    def release(self):
        if self._conn is not None:
            with contextlib.suppress(Exception):   # a broken connection is closed all the same
                self._conn.close()
            self._conn = None

    def close(self):
        self.release()
        self._engine.dispose()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.close()


class ClaimLock:
    """Serialises "check the budget, then start a trial" across all workers of one study.
    Acquiring it waits out an outage (through `retrying`, by default a StorageRetry of its
    own)."""

    def __init__(self, spec: StorageSpec, study_name: str,
                 retrying: StorageRetry | None = None):
        self.held = False
        self._retrying = retrying or StorageRetry(spec)
        self._lock = (_AdvisoryLock(spec, f"tensorgrad.search:{study_name}") if spec.is_rdb
                      else _FileLock(f"{spec.url}.claim"))

    def acquire(self):
        self._retrying(self._lock.acquire)
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


class Recovery:
    """Marks failed, and re-queues, the trials whose worker is gone: call it now and then;
    each call returns the numbers of the trials it repaired.

    PostgreSQL: Optuna's heartbeat check (trials silent for longer than the grace period),
    and the RUNNING trials that never had a heartbeat (their worker stopped between creating
    them and its first heartbeat, as an outage easily makes it), once this object has seen
    them so for the grace period: Optuna's check never finds those.
    Journal: the RUNNING trials, but only if no worker holds the WorkerLock (else nothing).
    """

    def __init__(self, study, spec: StorageSpec):
        self.study, self.spec = study, spec
        self._retrying = StorageRetry(spec)
        self._heartless_since = {}   # trial number -> when first seen without a heartbeat

    def __call__(self) -> list[int]:
        return self._rdb() if self.spec.is_rdb else self._journal()

    def _rdb(self):
        optuna = import_optuna()
        running, failed = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL
        study = self.study
        before = {t.number for t in study.get_trials(deepcopy=False, states=(running,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fail_stale_trials is marked experimental
            optuna.storages.fail_stale_trials(study)
        repaired = [t.number for t in study.get_trials(deepcopy=False, states=(failed,))
                    if t.number in before]
        now = time.monotonic()
        heartless = self._retrying(self._heartless_trials)
        self._heartless_since = {n: self._heartless_since.get(n, now) for n in heartless}
        for t in study.get_trials(deepcopy=True, states=(running,)):
            if now - self._heartless_since.get(t.number, now) <= self.spec.grace:
                continue
            try:   # as fail_stale_trials does: of two machines failing it, one succeeds
                study._storage.set_trial_state_values(t._trial_id, state=failed)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            requeue(study, study.trials[t.number], self.spec.max_retry)
            repaired.append(t.number)
        return sorted(repaired)

    def _heartless_trials(self) -> set[int]:
        """Numbers of the study's RUNNING trials without a heartbeat (Optuna's tables)."""
        import sqlalchemy
        engine = sqlalchemy.create_engine(self.spec.sqlalchemy_url,
                                          poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sqlalchemy.text(
                    "SELECT t.number FROM trials t JOIN studies s ON s.study_id = t.study_id "
                    "WHERE s.study_name = :name AND t.state = 'RUNNING' AND NOT EXISTS "
                    "(SELECT 1 FROM trial_heartbeats h WHERE h.trial_id = t.trial_id)"),
                    {"name": self.study.study_name})
                return {row[0] for row in rows}
        finally:
            engine.dispose()

    def _journal(self):
        optuna = import_optuna()
        lock = WorkerLock(self.spec)
        if not self._retrying(lock.acquire, block=False):
            return []
        try:
            stale = self.study.get_trials(deepcopy=True,
                                          states=(optuna.trial.TrialState.RUNNING,))
            for t in stale:
                self.study.tell(t.number, state=optuna.trial.TrialState.FAIL,
                                skip_if_finished=True)
                requeue(self.study, self.study.trials[t.number], self.spec.max_retry)
            return [t.number for t in stale]
        finally:
            lock.release()
