"""COPY FROM STDIN and COPY TO STDOUT: fakepm (own process) vs a real PostgreSQL, in the same run.

    .venv/bin/python bench/bench_copy.py [--quick]

FROM STDIN: N rows of (int8, text, timestamptz) with psycopg 3 `cursor.copy()`, text and
binary, into fakepm's declared table `items` (every value decoded into Python and checked during
the COPY, kept column by column in `pg.copies`; the row tuples are made, and binary timestamps
converted, when a test first reads `.rows`: that read is timed separately and reported under the
table; freed after each run) and into PostgreSQL's UNLOGGED table (fsync off). The
payload is built once up front and written in 64 KiB chunks, so the client costs the same on
both sides; the time is from the COPY statement to its CommandComplete.
TO STDOUT: `COPY (SELECT ... generate_series ...) TO STDOUT`, text and binary; fakepm answers
the inner SELECT from a streamed rule (rows produced while sent). The client reads the blocks.
"""

from __future__ import annotations

import datetime as dt
import struct
import time

import psycopg

from common import ROWS_SQL, FakeServer, Stat, bench_main, real_server, table, verdict

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


def _fmt_opt(fmt: str) -> str:
    return " (FORMAT binary)" if fmt == "binary" else ""


def copy_in(dsn: str, fmt: str, data: bytes) -> tuple[float, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        view = memoryview(data)
        t0 = time.perf_counter()
        with cur.copy("COPY items (id, name, at) FROM STDIN" + _fmt_opt(fmt)) as cp:
            for i in range(0, len(data), CHUNK):
                cp.write(view[i:i + CHUNK])
        return time.perf_counter() - t0, cur.rowcount


def copy_out(dsn: str, fmt: str, n: int) -> tuple[float, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        size = 0
        t0 = time.perf_counter()
        with cur.copy(f"COPY ({ROWS_SQL.format(n=n)}) TO STDOUT" + _fmt_opt(fmt)) as cp:
            for block in cp:
                size += len(block)
        return time.perf_counter() - t0, size


def run(quick: bool) -> list[str]:
    n, reps = (5000, 1) if quick else (1_000_000, 2)
    data = {fmt: payload(n, fmt) for fmt in ("text", "binary")}
    res: dict = {}
    sizes: dict = {}
    reads: dict = {}  # format -> seconds to read pg.copies[-1].rows after a COPY FROM
    with FakeServer("--rows", str(n)) as fake, real_server() as real:
        real.psql("CREATE UNLOGGED TABLE items (id int8, name text, at timestamptz)")
        for _ in range(reps):
            for fmt in ("text", "binary"):
                for label, dsn in (("fakepm", fake.dsn), ("PostgreSQL", real.dsn)):
                    t, count = copy_in(dsn, fmt, data[fmt])
                    assert count == n, (label, fmt, count)
                    res.setdefault(("FROM STDIN", fmt, label), []).append(n / t)
                    sizes[("FROM STDIN", fmt)] = len(data[fmt])
                    if label == "fakepm":
                        read = fake.cmd("copy_rows")
                        assert read["rows"] == n, read
                        reads.setdefault(fmt, []).append(read["seconds"])
                fake.cmd("clear")  # free the million decoded rows
                real.psql("TRUNCATE items")
                for label, dsn in (("fakepm", fake.dsn), ("PostgreSQL", real.dsn)):
                    t, size = copy_out(dsn, fmt, n)
                    res.setdefault(("TO STDOUT", fmt, label), []).append(n / t)
                    sizes[("TO STDOUT", fmt, label)] = size
    rows = []
    for direction in ("FROM STDIN", "TO STDOUT"):
        for fmt in ("text", "binary"):
            f, r = Stat(res[(direction, fmt, "fakepm")]), Stat(res[(direction, fmt, "PostgreSQL")])
            size = sizes.get((direction, fmt)) or sizes[(direction, fmt, "PostgreSQL")]
            q = f.median / r.median
            rows.append([direction, fmt, f"{size / 1e6:.1f}", f.fmt(), f"{f.median * size / n / 1e6:.1f}", r.fmt(),
                         f"{r.median * size / n / 1e6:.1f}", f"{q:.2f}x", verdict(q, 0.5)])
    return [
        "## 6. COPY",
        "",
        f"{n:,} rows of (int8, text, timestamptz) with psycopg 3 `cursor.copy()`, {reps} runs. FROM STDIN: fakepm "
        "types every value into Python (declared table) and keeps the rows in `pg.copies`; PostgreSQL writes an "
        "UNLOGGED table with fsync off. TO STDOUT: fakepm streams a generated rule answer.",
        "",
        *table(["COPY", "format", "MB", "fakepm rows/s: median (min-max)", "fakepm MB/s", "PostgreSQL rows/s",
                "PostgreSQL MB/s", "fakepm/PostgreSQL", "target ≥0.5x"], rows),
        "",
        "FROM STDIN, reading the rows afterwards as a test does (`pg.copies[-1].rows`: tuples made, binary "
        "timestamps converted, once): " + ", ".join(f"{fmt} {Stat(v).median:.2f} s" for fmt, v in reads.items())
        + f" for {n:,} rows.",
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
