"""In-process FakePostgres vs FakePostgres(subprocess=True): what the child process costs.

    python bench/subprocess_mode.py [--rounds N] [--write]

Measures, for each mode, medians (min-max) of: start (constructor + start() until ready),
stop, a test's setup calls (pg.on(...).reply(...)), a round trip (psycopg 3 `SELECT 1`-like
statement answered by a static rule, extended protocol), a handler's round trip (a Python
handler answering), and reading the journal (pg.queries with 100 entries). `--write` appends
the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import psycopg

from fakepm import FakePostgres


def med(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[0], xs[-1]


def fmt(t, unit="ms"):
    m, lo, hi = t
    k = 1000 if unit == "ms" else 1e6
    return f"{m * k:.3g} ({lo * k:.3g}-{hi * k:.3g}) {unit}"


def measure(subprocess_mode: bool, rounds: int) -> dict:
    starts, stops, ons, rts, hrts, reads = [], [], [], [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        pg = FakePostgres(subprocess=subprocess_mode).start()
        starts.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(10):
            pg.on(f"SELECT {i} AS x").reply(columns={"x": "int4"}, rows=[[i]])
        ons.append((time.perf_counter() - t) / 10)
        pg.on("SELECT x FROM t WHERE id = $1").reply(columns={"x": "int4"}, rows=[[1]])

        @pg.handler("SELECT y FROM t WHERE id = $1", columns={"y": "int4"})
        def h(q):
            return [[q.params[0]]]

        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            for _ in range(50):  # warm
                conn.execute("SELECT x FROM t WHERE id = %s", [1]).fetchone()
            n = 500
            t = time.perf_counter()
            for _ in range(n):
                conn.execute("SELECT x FROM t WHERE id = %s", [1]).fetchone()
            rts.append((time.perf_counter() - t) / n)
            n = 100
            t = time.perf_counter()
            for i in range(n):
                conn.execute("SELECT y FROM t WHERE id = %s", [i]).fetchone()
            hrts.append((time.perf_counter() - t) / n)
        t = time.perf_counter()
        q = pg.queries
        reads.append(time.perf_counter() - t)
        assert len(q) >= 100
        t = time.perf_counter()
        pg.stop()
        stops.append(time.perf_counter() - t)
    return {"start": med(starts), "stop": med(stops), "on": med(ons), "rt": med(rts), "handler": med(hrts),
            "queries": med(reads)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    inproc = measure(False, args.rounds)
    child = measure(True, args.rounds)
    rows = [("start (until ready)", "start", "ms"), ("stop", "stop", "ms"), ("pg.on(...).reply(...)", "on", "us"),
            ("round trip: a static rule (psycopg 3, extended)", "rt", "us"),
            ("round trip: a Python handler", "handler", "us"), ("pg.queries (~650 entries)", "queries", "ms")]
    lines = [f"| what | in-process | subprocess=True | ratio |", "|---|---|---|---|"]
    for label, key, unit in rows:
        ratio = child[key][0] / inproc[key][0] if inproc[key][0] else float("nan")
        lines.append(f"| {label} | {fmt(inproc[key], unit)} | {fmt(child[key], unit)} | {ratio:.2g}x |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        head = (f"\n## In-process vs subprocess=True (issue 14)\n\n`python bench/subprocess_mode.py --rounds "
                f"{args.rounds} --write` at {rev}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
                f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, psycopg "
                f"{psycopg.__version__}. Medians (min-max) of {args.rounds} rounds; each round starts a server, "
                f"adds 10 rules, runs 500 static round trips and 100 handler round trips on one connection, reads "
                f"the journal and stops.\n\n")
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(head + table + "\n")


if __name__ == "__main__":
    sys.exit(main())
