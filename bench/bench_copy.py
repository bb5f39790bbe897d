"""COPY FROM STDIN throughput: fakepm vs a real PostgreSQL, in the same run.

    .venv/bin/python bench/bench_copy.py [--rows 1000000] [--append bench/RESULTS.md]

Loads N rows of (int8, text, timestamptz) with psycopg 3 `cursor.copy()` in text and binary
format, into fakepm (table declared with `pg.table`, rows decoded into typed values and kept
in `pg.copies`) and into a throwaway real PostgreSQL (tests/realpg.py: fsync off, UNLOGGED
table). The COPY payload is built once up front and written in 64 KiB chunks, so the client
costs the same on both sides; the time measured is from the COPY statement to its
CommandComplete. Prints a table and, with --append, adds it to RESULTS.md with the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import struct
import subprocess
import sys
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

CHUNK = 64 * 1024
UTC = dt.timezone.utc


def payload(n: int, fmt: str) -> bytes:
    """The COPY data for n rows (int8, text, timestamptz), written directly in the COPY format."""
    base = dt.datetime(2024, 1, 1, tzinfo=UTC)
    if fmt == "text":
        return "".join(f"{i}\tname-{i}-ünïcode\t{base + dt.timedelta(seconds=i)}\n" for i in range(n)).encode()
    pg_epoch_us = int((base - dt.datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
    row = struct.Struct("!hiqi")
    parts = [b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8]
    for i in range(n):
        name = f"name-{i}-ünïcode".encode()
        parts.append(row.pack(3, 8, i, len(name)) + name + struct.pack("!iq", 8, pg_epoch_us + i * 1_000_000))
    parts.append(b"\xff\xff")
    return b"".join(parts)


def copy_once(dsn: str, table: str, fmt: str, data: bytes) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        sql = f"COPY {table} (id, name, at) FROM STDIN" + (" (FORMAT binary)" if fmt == "binary" else "")
        view = memoryview(data)
        t0 = time.perf_counter()
        with cur.copy(sql) as cp:
            for i in range(0, len(data), CHUNK):
                cp.write(view[i:i + CHUNK])
        elapsed = time.perf_counter() - t0
        return elapsed, cur.rowcount


_CHILD = """
import sys
from fakepm import FakePostgres
with FakePostgres() as pg:
    pg.table("items", {"id": "int8", "name": "text", "at": "timestamptz"})
    print(pg.dsn, flush=True)
    for line in sys.stdin:  # one line per finished COPY: check it, then free its rows
        rec = pg.copies[-1]
        print(rec.count, rec.error, flush=True)
        pg.journal.copies.clear()
"""


class ChildFake:
    """fakepm in its own process (no GIL shared with the client), driven over stdin/stdout."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.dsn = self.proc.stdout.readline().strip()

    def last_count(self) -> int:
        self.proc.stdin.write("next\n")
        self.proc.stdin.flush()
        count, _error = self.proc.stdout.readline().split(" ", 1)
        return int(count)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--append", metavar="RESULTS.md", help="append the results table to this file")
    args = ap.parse_args()

    from fakepm import FakePostgres
    from realpg import real_postgres

    results = []  # (format, server, MB, seconds)
    data = {fmt: payload(args.rows, fmt) for fmt in ("text", "binary")}
    child = ChildFake()
    try:
        with FakePostgres() as fake, real_postgres() as real:
            fake.table("items", {"id": "int8", "name": "text", "at": "timestamptz"})
            with psycopg.connect(real.dsn, autocommit=True) as c:
                c.execute("CREATE UNLOGGED TABLE items (id int8, name text, at timestamptz)")
            for fmt in ("text", "binary"):
                mb = len(data[fmt]) / 1e6
                with psycopg.connect(real.dsn, autocommit=True) as c:
                    c.execute("TRUNCATE items")
                t, n = copy_once(real.dsn, "items", fmt, data[fmt])
                assert n == args.rows
                results.append((fmt, "PostgreSQL 15", mb, t))
                for table, label in (("items", "fakepm in-process, typed"), ("raw_items", "fakepm in-process, untyped")):
                    t, n = copy_once(fake.dsn, table, fmt, data[fmt])
                    assert n == args.rows and fake.copies[-1].count == args.rows, (n, fake.copies[-1].error)
                    fake.journal.copies.clear()  # free the million rows before the next run
                    results.append((fmt, label, mb, t))
                t, n = copy_once(child.dsn, "items", fmt, data[fmt])
                assert n == args.rows and child.last_count() == args.rows
                results.append((fmt, "fakepm own process, typed", mb, t))
    finally:
        child.close()

    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:])
    lines = [
        f"### COPY FROM STDIN, {args.rows:,} rows (int8, text, timestamptz), psycopg 3 "
        f"({dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs)",
        "",
        f"Command: `{cmd}`",
        "",
        "| format | server | payload MB | seconds | MB/s | vs PostgreSQL |",
        "|---|---|---|---|---|---|",
    ]
    base = {fmt: t for fmt, label, _mb, t in results if label.startswith("PostgreSQL")}
    for fmt, label, mb, t in results:
        lines.append(f"| {fmt} | {label} | {mb:.1f} | {t:.2f} | {mb / t:.1f} | {base[fmt] / t:.2f}x |")
    lines.append("")
    lines.append("typed: table declared with `pg.table`, every value decoded into Python (int, str, aware datetime) "
                 "and kept in `pg.copies`; untyped: undeclared table, rows kept as text fields (text) or bytes "
                 "(binary). in-process: the server thread shares the GIL with the client (as in a test); own "
                 "process: fakepm in a child process. PostgreSQL writes an UNLOGGED table with fsync off. "
                 "vs PostgreSQL = PostgreSQL time / this time (> 1: faster than PostgreSQL).")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
