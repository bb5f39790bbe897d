"""Start a throwaway real PostgreSQL server for tests that compare fakepm with the real thing.

Usage (in a test module)::

    import pytest
    from tests.realpg import real_postgres, skip_unless_postgres   # or `from realpg import ...`

    pytestmark = pytest.mark.realpg

    @pytest.fixture(scope="module")
    def pg():
        skip_unless_postgres()                 # pytest.skip() when no binaries are installed
        with real_postgres() as server:        # initdb + start; stopped and deleted on exit
            yield server

    def test_something(pg):
        host, port, user = pg                  # RealPG unpacks as (host, port, user)
        import psycopg
        with psycopg.connect(pg.dsn) as conn:
            ...

What it does:
- finds ``/usr/lib/postgresql/<newest>/bin/postgres`` (or ``$FAKEPM_PG_BINDIR``);
- runs ``initdb`` (trust auth, UTF8, C locale) in a fresh temp dir. PostgreSQL refuses to
  run as root, so when running as root the data dir is chowned to, and every server
  process is run as, an unprivileged user (``postgres`` if it exists, else ``nobody``);
- starts ``postgres -D dir -k dir -h 127.0.0.1 -p <free port>`` with fsync off (speed)
  and any extra ``settings`` you pass as ``-c name=value``;
- waits until ``pg_isready`` says yes (bounded: ``ready_timeout`` seconds);
- on exit stops it by PID (SIGINT = fast shutdown, SIGKILL after a bounded wait) and
  removes the temp dir.

The superuser is ``user`` (default ``postgres``); database ``postgres``; trust auth for
TCP on 127.0.0.1 and the Unix socket in the temp dir.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, NamedTuple

__all__ = ["RealPG", "find_bindir", "skip_unless_postgres", "real_postgres"]


class RealPG(NamedTuple):
    """A running server. Unpacks as ``host, port, user``; more facts are properties."""

    host: str
    port: int
    user: str
    datadir: str = ""
    bindir: str = ""
    dbname: str = "postgres"

    @property
    def dsn(self) -> str:
        """libpq URI (works with psycopg, psycopg2, asyncpg, psql)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def psql(self, sql: str, *args: str) -> str:
        """Run ``psql -XAtq -c sql`` against the server; return stdout (stripped of the final newline)."""
        psql = os.path.join(self.bindir, "psql")
        if not os.path.exists(psql):
            psql = shutil.which("psql") or "psql"
        out = subprocess.run(
            [psql, "-XAtq", "-h", self.host, "-p", str(self.port), "-U", self.user,
             "-d", self.dbname, "-v", "ON_ERROR_STOP=1", *args, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout
        return out[:-1] if out.endswith("\n") else out


def find_bindir() -> str | None:
    """Directory holding ``postgres``/``initdb``, or None when PostgreSQL is not installed."""
    env = os.environ.get("FAKEPM_PG_BINDIR")
    if env and os.path.exists(os.path.join(env, "postgres")):
        return env
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")

    def version(path: str) -> tuple[int, ...]:
        part = path.split("/")[-3]
        return tuple(int(x) for x in part.split(".") if x.isdigit())

    for path in sorted(found, key=version, reverse=True):
        bindir = os.path.dirname(path)
        if os.path.exists(os.path.join(bindir, "initdb")):
            return bindir
    return None


def skip_unless_postgres() -> str:
    """Return the bin dir, or ``pytest.skip`` the calling test when PostgreSQL is absent."""
    bindir = find_bindir()
    if bindir is None:
        import pytest

        pytest.skip("real PostgreSQL binaries not installed (/usr/lib/postgresql/*/bin/postgres)")
    return bindir


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    """The unprivileged account to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user (postgres/nobody) to run PostgreSQL as")


@contextmanager
def real_postgres(
    *,
    user: str = "postgres",
    settings: dict[str, str] | None = None,
    initdb_args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
    host: str = "127.0.0.1",
) -> Iterator[RealPG]:
    """Run a temporary PostgreSQL server; yield a :class:`RealPG`; stop it and clean up.

    ``settings`` become ``-c name=value`` options (e.g. ``{"wal_level": "logical"}``).
    Raises RuntimeError (with the server log) when it does not come up in time.
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found (set FAKEPM_PG_BINDIR)")
    runas = _run_as()
    tmp = tempfile.mkdtemp(prefix="fakepm-realpg-")
    datadir = os.path.join(tmp, "data")
    logfile = os.path.join(tmp, "server.log")
    if runas is not None:
        pw = pwd.getpwnam(runas)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.chmod(tmp, 0o700)
    proc: subprocess.Popen | None = None
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        subprocess.run(
            [os.path.join(bindir, "initdb"), "-D", datadir, "-U", user, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync", *initdb_args],
            check=True, capture_output=True, user=runas, env=env, cwd=tmp, timeout=300,
        )
        port = _free_port(host)
        opts = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                "logging_collector": "off"}
        opts.update(settings or {})
        cmd = [os.path.join(bindir, "postgres"), "-D", datadir, "-k", tmp, "-h", host, "-p", str(port)]
        for k, v in opts.items():
            cmd += ["-c", f"{k}={v}"]
        with open(logfile, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, user=runas,
                                    env=env, cwd=tmp, start_new_session=True)
        isready = os.path.join(bindir, "pg_isready")
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode}:\n{_tail(logfile)}")
            r = subprocess.run([isready, "-q", "-h", host, "-p", str(port), "-U", user, "-d", "postgres"],
                               capture_output=True, timeout=30)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after {ready_timeout}s:\n{_tail(logfile)}")
            time.sleep(0.05)
        yield RealPG(host, port, user, datadir, bindir)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, no checkpoint wait
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def _tail(path: str, n: int = 40) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"
