"""Shared pieces of the benchmarks: fakepm in its own process, real PostgreSQL, statistics, report lines.

Every bench module measures fakepm and PostgreSQL in the same run, alternating the two, so
that the noise of a shared machine hits both sides alike; the ratio is the number to read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))  # realpg.py lives with the tests

from realpg import RealPG, real_postgres  # noqa: E402

# the three columns of the large-result and COPY benchmarks, with the SQL that makes them in PostgreSQL
ROWS_SQL = ("SELECT i::int8 AS id, 'name-' || i AS name, "
            "timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS at "
            "FROM generate_series(1, {n}) AS i")
HUNDRED_SQL = "SELECT i AS id, 'name-' || i AS name FROM generate_series(1, 100) AS i"
PARAM_SQL = "SELECT name FROM users WHERE id = $1"


class FakeServer:
    """fakepm serving in a child process (bench/fakeserver.py): no GIL shared with the client.

    `cmd(line)` sends one command on stdin and returns the child's one-line JSON answer."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fakeserver.py"), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"bench/fakeserver.py {' '.join(args)} exited with {self.proc.returncode}")
        info = json.loads(line)
        self.dsn, self.port, self.pid = info["dsn"], info["port"], self.proc.pid

    def cmd(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "FakeServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def real_server(**kw) -> Iterator[RealPG]:
    """A throwaway PostgreSQL 15 with the tables the benchmarks query."""
    with real_postgres(**kw) as pg:
        pg.psql("CREATE TABLE users (id int4 PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'ada')")
        # user `bench` logs in with SCRAM-SHA-256 (as fakeserver.py's); everyone else stays trust
        pg.psql("CREATE ROLE bench LOGIN SUPERUSER PASSWORD 'benchpw'")
        hba = os.path.join(pg.datadir, "pg_hba.conf")
        with open(hba) as f:
            rules = f.read()
        with open(hba, "w") as f:
            f.write("host all bench 127.0.0.1/32 scram-sha-256\n" + rules)
        pg.psql("SELECT pg_reload_conf()")
        yield pg


def with_user(dsn: str, user: str, password: str | None = None) -> str:
    """The same server's URL for another user (scram: `bench` / `benchpw` on both servers)."""
    rest = dsn.split("@", 1)[1]
    return f"postgresql://{user}{':' + password if password else ''}@{rest}"


SCRAM = ("bench", "benchpw")


def repeat(fn: Callable[[], float], n: int) -> list[float]:
    return [fn() for _ in range(n)]


class Stat:
    """Median and spread of repeated measurements (higher_is_better tells how ratios read)."""

    def __init__(self, values: list[float]):
        self.values = sorted(values)
        self.median = statistics.median(self.values)
        self.min, self.max = self.values[0], self.values[-1]

    def fmt(self, unit_fmt: str = "{:,.0f}") -> str:
        if len(self.values) == 1:
            return unit_fmt.format(self.median)
        return f"{unit_fmt.format(self.median)} ({unit_fmt.format(self.min)}-{unit_fmt.format(self.max)})"


def ratio(fake: float, real: float) -> str:
    return f"{fake / real:.2f}x" if real else "n/a"


def verdict(value: float, target: float) -> str:
    return "met" if value >= target else f"**missed** ({value / target:.0%} of target)"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_main(run: Callable[[bool], list[str]], doc: str) -> None:
    """Command line of a bench module: `--quick` for the smoke test; prints its Markdown section."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repetition (keeps the script from rotting)")
    args = ap.parse_args()
    print("\n".join(run(args.quick)), flush=True)
