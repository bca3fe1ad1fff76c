"""Fixtures of the search tests: Optuna (required under CI=true) and a real PostgreSQL server.

The server comes from $TENSORGRAD_TEST_POSTGRES_URL (.ci/run starts one and sets it); without
it, a throw-away server is started from Debian's binaries if they are installed. Under CI=true
an unreachable server fails the test; elsewhere the test is skipped with the reason.
"""
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


def _start_server(folder):
    """initdb + pg_ctl start in folder (as the postgres user when we are root); returns
    (url, stop function) or raises RuntimeError saying why not."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not bins:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    bindir = os.path.dirname(bins[-1])
    as_user = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise RuntimeError("running as root and runuser is missing (initdb refuses root)")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    port, data, log = _free_port(), os.path.join(folder, "data"), os.path.join(folder, "log")

    def run(*cmd):
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {proc.stderr.strip()[-500:]}")

    run(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    run(f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
        f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off", "start")

    def stop():
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w",
                        "stop"], capture_output=True, timeout=60)
    try:
        run(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "tensorgrad_test")
    except RuntimeError:
        stop()
        raise
    return f"postgresql://postgres@127.0.0.1:{port}/tensorgrad_test", stop


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
    folder = tempfile.mkdtemp(prefix="tensorgrad-pg-")
    try:
        try:
            url, stop = _start_server(folder)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"PostgreSQL test: ${URL_VAR} is not set and no local server could be "
                        f"started ({exc})")
        try:
            yield url
        finally:
            stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
