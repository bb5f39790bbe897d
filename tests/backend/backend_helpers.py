"""Helpers for tests/backend/: running the engine's own client programs through fakepm and directly."""

from __future__ import annotations

import os
import subprocess
import time


from realpg import missing

HERE = os.path.dirname(os.path.abspath(__file__))
SHOP_TABLES = os.path.join(HERE, "shop_tables.yaml")  # two declared tables (one in schema inventory)


def no_engine_reason(version: str | None = None) -> str | None:
    """Why backend mode cannot run here (no server binaries for `version`, None = any), or None."""
    from fakepm.engine import EngineError, find_binaries

    try:
        find_binaries(version)
    except EngineError as e:
        return f"backend mode needs PostgreSQL server binaries: {e}"
    return None


def client_env(**extra: str) -> dict:
    """The environment for a client program: no PG* settings of the caller's (they would pick
    another server or user), no pager, a bounded connect."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PAGER="", PSQL_PAGER="", PGCONNECT_TIMEOUT="10", LC_ALL="C.UTF-8", TZ="UTC")
    env.update(extra)
    return env


def run(argv: list[str], *, timeout: float = 60, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else client_env(), **kw)


def engine_program(pg, program: str) -> str:
    """`program` (psql, pg_dump, pg_recvlogical ...) from the bin directory of pg's engine:
    the same major version as the server, as its describe queries and dumps expect."""
    path = os.path.join(pg.backend.engine.binaries.bindir, program)
    if not os.access(path, os.X_OK):
        missing(f"{program} is not in the engine's bin directory {os.path.dirname(path)}")
    return path


def direct_dsn(pg, user: str = "postgres") -> str:
    """A libpq URI for pg's own database on the engine, not through fakepm (a Unix socket)."""
    return str(pg.backend.engine.upstream_url(user, pg.backend.database))


def backend_server(spec: str = "postgres", scenario: str | None = SHOP_TABLES, **kw):
    """A FakePostgres in backend mode (not started); skips when `spec`'s binaries are missing."""
    from fakepm import FakePostgres

    version = spec.partition(":")[2] or None
    reason = no_engine_reason(version)
    if reason is not None:
        missing(reason)
    return FakePostgres(scenario, backend=spec, **kw)


def wait_until(cond, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def engine_rules(pg, since: int = 0) -> set:
    """Which parts answered the statements journaled after the first `since`."""
    return {q.rule for q in pg.queries[since:]}
