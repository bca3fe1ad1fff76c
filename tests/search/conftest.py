"""Fixtures of the search tests: Optuna (required under CI=true) and real PostgreSQL servers.

postgres_url: the server of $TENSORGRAD_TEST_POSTGRES_URL (.ci/run starts one and sets it);
without it, a throw-away server started from Debian's binaries if they are installed.
postgres_server: always a throw-away server of the test module's own, which the outage tests
stop and restart. Under CI=true a server that cannot be reached or started fails the test;
elsewhere the test is skipped with the reason.
"""
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

URL_VAR = "TENSORGRAD_TEST_POSTGRES_URL"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(what, reason):
    """Fail under CI=true (everything must run there), else skip with the reason."""
    if IN_CI:
        pytest.fail(f"{what}: {reason} (CI=true: this test must run)")
    pytest.skip(f"{what}: {reason}")


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory):
    """A root folder holding cifar-10-batches-py/ with 20 images per file (real format)."""
    from tests.data.conftest import write_cifar
    root = tmp_path_factory.mktemp("tiny_cifar")
    write_cifar(root / "cifar-10-batches-py")
    return root


@pytest.fixture(scope="session")
def optuna():
    try:
        import optuna
    except ImportError:
        require("Optuna", 'not installed; pip install -e ".[search]"')
    return optuna


def _reachable(url):
    import sqlalchemy

    from tensorgrad.search import StorageSpec
    engine = sqlalchemy.create_engine(StorageSpec(url).sqlalchemy_url,
                                      poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        return None
    except Exception as exc:  # any driver or connection error: say what it was
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        engine.dispose()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A throw-away PostgreSQL cluster in `folder` on a free 127.0.0.1 port, from Debian's
    binaries (run as the postgres user when we are root: initdb refuses root). start() and
    stop() may be called again: the outage tests stop and restart it under a running search.
    """

    def __init__(self, folder):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bindir = os.path.dirname(bins[-1])
        self.as_user = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                raise RuntimeError("running as root and runuser is missing (initdb refuses "
                                   "root)")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(folder, "postgres")
        self.folder, self.port = folder, _free_port()
        self.data = os.path.join(folder, "data")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/tensorgrad_test"
        self._run(f"{self.bindir}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync")
        self.start()
        try:
            self._run(f"{self.bindir}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                      "postgres", "tensorgrad_test")
        except RuntimeError:
            self.stop()
            raise

    def _run(self, *cmd):
        proc = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {proc.stderr.strip()[-500:]}")

    def start(self):
        """Start the server and wait until it accepts connections."""
        self._run(f"{self.bindir}/pg_ctl", "-D", self.data, "-l",
                  os.path.join(self.folder, "log"), "-w", "-t", "60", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off", "start")

    def stop(self, mode="fast"):
        """Stop the server ('fast' ends the open connections, as a restart does; 'immediate'
        is a crash); nothing if it is not running."""
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-m", mode,
                        "-w", "stop"], capture_output=True, timeout=60)

    @property
    def running(self):
        proc = subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data,
                               "status"], capture_output=True, timeout=60)
        return proc.returncode == 0


@pytest.fixture(scope="session")
def postgres_url(optuna):
    """A postgresql:// URL of a live server (see the module docstring)."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        require("PostgreSQL test", 'psycopg2 is not installed; pip install -e ".[search]"')
    url = os.environ.get(URL_VAR)
    if url:
        problem = _reachable(url)
        if problem:
            require("PostgreSQL test", f"${URL_VAR} is set but the server cannot be reached: "
                                       f"{problem}")
        yield url
        return
    if IN_CI:
        pytest.fail(f"${URL_VAR} is not set: .ci/run starts a PostgreSQL server and exports it")
    with _own_server(f"PostgreSQL test (${URL_VAR} is not set)") as server:
        yield server.url


@contextlib.contextmanager
def _own_server(what):
    """A Server in a temporary folder, removed afterwards; if it cannot start, require()
    says why."""
    folder = tempfile.mkdtemp(prefix="tensorgrad-pg-")
    try:
        try:
            server = Server(folder)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            require(what, f"no PostgreSQL server could be started ({exc})")
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_server(optuna):
    """A PostgreSQL server of this module's own, which its tests may stop and restart (the
    shared one of $TENSORGRAD_TEST_POSTGRES_URL must stay up). Needs the server binaries:
    under CI=true (.ci/run installs them) their absence fails the tests, elsewhere it skips
    them."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        require("PostgreSQL outage test", 'psycopg2 is not installed; pip install -e ".[search]"')
    with _own_server("PostgreSQL outage test") as server:
        yield server


@pytest.fixture
def pg(postgres_server):
    """postgres_server, running when the test starts (an earlier test may have stopped it)."""
    if not postgres_server.running:
        postgres_server.start()
    return postgres_server
