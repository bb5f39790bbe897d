"""Start-to-ready: `FakePostgres()` vs initdb + pg_ctl start (+ first connection), and pg_ctl start alone.

    .venv/bin/python bench/bench_startup.py [--quick]

fakepm: `with FakePostgres() as pg` entered (in the test's process: that is how tests use
it; ready on return means it accepts connections), and the same plus a first psycopg 3
connection and `SELECT 1`. PostgreSQL: what pytest-postgresql does (initdb, `pg_ctl start
-w`, first connection), and `pg_ctl start -w` of an existing data directory + first
connection. PostgreSQL runs with fsync off; as root it runs as an unprivileged user.

Cold start (what the first test of a pytest process pays): a fresh interpreter runs
`import fakepm`, `FakePostgres().start()`, a first `pg.on(...)` and a psycopg 3 connection
with a first query of that rule (`import psycopg` itself is left out: the test's own code
imports its driver), then a query spelled differently, which imports sqlglot for the SQL
shapes. Median of N fresh processes, with Python's bytecode cache warm (a normal install; the
cache lives in a temporary PYTHONPYCACHEPREFIX so the checkout stays clean) and with
PYTHONDONTWRITEBYTECODE=1 (the development sandbox's setting: with no src/fakepm/__pycache__,
every fakepm module is compiled from source in every process; installed packages keep their .pyc).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg

from common import Stat, bench_main, table, verdict

import realpg


def fake_enter() -> float:
    from fakepm import FakePostgres

    t0 = time.perf_counter()
    pg = FakePostgres().__enter__()
    t = time.perf_counter() - t0
    pg.__exit__(None, None, None)
    return t * 1e3


def fake_enter_connect() -> float:
    from fakepm import FakePostgres

    t0 = time.perf_counter()
    with FakePostgres() as pg, psycopg.connect(pg.dsn) as conn:
        conn.execute("SELECT 1").fetchone()
        t = time.perf_counter() - t0
    return t * 1e3


COLD_CHILD = r"""
import sys, time, json
clock = time.perf_counter
t0 = clock()
import fakepm
t1 = clock()
from fakepm import FakePostgres
pg = FakePostgres().start()
t2 = clock()
pg.on("SELECT name FROM users WHERE id = 1").reply(columns={"name": "text"}, rows=[["ada"]])
t3 = clock()
import psycopg  # the test's driver: not counted
t4 = clock()
with psycopg.connect(pg.dsn) as conn:
    rows = conn.execute("SELECT name FROM users WHERE id = 1").fetchall()
    t5 = clock()
    glot_before = "sqlglot" in sys.modules
    other = conn.execute("select name from users where id = 1 -- spelled differently").fetchall()
    t6 = clock()
pg.stop()
assert rows == other == [("ada",)], (rows, other)
ms = lambda a, b: (b - a) * 1e3
print(json.dumps({"import": ms(t0, t1), "start": ms(t1, t2), "on": ms(t2, t3), "query": ms(t4, t5),
                  "total": ms(t0, t3) + ms(t4, t5), "shaped": ms(t5, t6), "sqlglot_before": glot_before}))
"""


def cold_start(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", COLD_CHILD], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_rows(quick: bool) -> list[list]:
    n = 3 if quick else 21
    cache = tempfile.mkdtemp(prefix="fakepm-bench-pyc-")
    try:
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
        cached = dict(base, PYTHONPYCACHEPREFIX=cache)
        uncached = dict(base, PYTHONDONTWRITEBYTECODE="1")
        cold_start(cached)  # fills the bytecode cache
        runs: dict[str, list[dict]] = {"cached": [], "uncached": []}
        for _ in range(n):  # alternate, so that machine noise hits both alike
            runs["cached"].append(cold_start(cached))
            runs["uncached"].append(cold_start(uncached))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    ms = "{:,.1f}"
    rows = []
    for label, key in (("bytecode cached", "cached"), ("PYTHONDONTWRITEBYTECODE=1", "uncached")):
        r = runs[key]
        col = {k: Stat([x[k] for x in r]) for k in ("import", "start", "on", "query", "total", "shaped")}
        glot = sum(x["sqlglot_before"] for x in r)
        rows.append([f"fakepm cold start, {label}", len(r), col["import"].fmt(ms), col["start"].fmt(ms),
                     col["on"].fmt(ms), col["query"].fmt(ms), col["total"].fmt(ms), col["shaped"].fmt(ms),
                     f"{glot}/{len(r)}"])
    return rows


class RealCluster:
    """A data directory we initdb/start/stop ourselves (pg_ctl, as pytest-postgresql does)."""

    def __init__(self):
        self.bindir = realpg.find_bindir()
        self.runas = realpg._run_as()
        self.tmp = tempfile.mkdtemp(prefix="fakepm-bench-")
        if self.runas:
            import pwd

            pw = pwd.getpwnam(self.runas)
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.tmp, "data")
        self.port = realpg._free_port("127.0.0.1")
        self.env = dict(os.environ, LC_ALL="C", LANG="C")

    def _run(self, *cmd: str) -> None:
        subprocess.run([os.path.join(self.bindir, cmd[0]), *cmd[1:]], check=True, capture_output=True,
                       user=self.runas, env=self.env, cwd=self.tmp, timeout=120)

    def initdb(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")

    def start_and_connect(self) -> None:
        opts = f"-c fsync=off -c synchronous_commit=off -k {self.tmp} -h 127.0.0.1 -p {self.port}"
        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.tmp, "log"), "-w", "start")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres") as conn:
            conn.execute("SELECT 1").fetchone()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def real_fresh() -> float:
    c = RealCluster()
    try:
        t0 = time.perf_counter()
        c.initdb()
        c.start_and_connect()
        t = time.perf_counter() - t0
        c.stop()
        return t * 1e3
    finally:
        c.remove()


def run(quick: bool) -> list[str]:
    fake_enter_connect()  # warm imports: a test suite pays them once
    n_fake, n_fresh, n_restart = (5, 1, 1) if quick else (50, 3, 5)
    enter = Stat([fake_enter() for _ in range(n_fake)])
    enter_conn = Stat([fake_enter_connect() for _ in range(n_fake)])
    fresh = Stat([real_fresh() for _ in range(n_fresh)])
    c = RealCluster()
    try:
        c.initdb()
        restart = []
        for _ in range(n_restart):
            t0 = time.perf_counter()
            c.start_and_connect()
            restart.append((time.perf_counter() - t0) * 1e3)
            c.stop()
    finally:
        c.remove()
    restart = Stat(restart)
    ms = "{:,.2f}"
    rows = [
        ["fakepm: `FakePostgres()` entered (accepting connections)", len(enter.values), enter.fmt(ms), "", ""],
        ["fakepm: entered + psycopg connect + `SELECT 1`", len(enter_conn.values), enter_conn.fmt(ms), "", ""],
        ["PostgreSQL: initdb + pg_ctl start -w + connect + `SELECT 1`", len(fresh.values),
         fresh.fmt(ms), f"{fresh.median / enter.median:,.0f}x",
         f"{fresh.median / enter_conn.median:,.0f}x"],
        ["PostgreSQL: pg_ctl start -w (existing data dir) + connect + `SELECT 1`", len(restart.values),
         restart.fmt(ms), f"{restart.median / enter.median:,.0f}x",
         f"{restart.median / enter_conn.median:,.0f}x"],
    ]
    speedup = fresh.median / enter_conn.median
    cold = cold_rows(quick)
    return [
        "## 1. Start-to-ready",
        "",
        *table(["what", "runs", "ms: median (min-max)", "fakepm entered is faster by", "fakepm entered+connect is faster by"],
               rows),
        f"Targets: ≥100x faster than initdb+start (entered+first connection vs initdb+start+first connection: "
        f"{speedup:,.0f}x, {verdict(speedup, 100)}); <10 ms median (entered: {enter.median:.2f} ms, "
        f"{'met' if enter.median < 10 else '**missed**'}).",
        "",
        "Cold start in a fresh process (ms: median (min-max)); \"total\" = import + start + pg.on + "
        "connect and first query of that rule (`import psycopg` not counted):",
        "",
        *table(["what", "runs", "import fakepm", "start()", "first pg.on", "connect + first query", "total",
                "first differently spelled query (sqlglot)", "sqlglot loaded before it"], cold),
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
