"""Large results: N rows of (int8, text, timestamptz) to psycopg 3 (text and binary) and asyncpg.

    .venv/bin/python bench/bench_results.py [--quick]

PostgreSQL makes the rows with generate_series; fakepm answers the same SQL from a rule
whose rows are a generator (streamed: produced while being sent, never all in memory).
rows/s and MB/s of DataRow payload as the client counts it (the sum of the value lengths
in text format; the same bytes count for both servers).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import psycopg

from common import ROWS_SQL, FakeServer, Stat, bench_main, real_server, table, verdict


def psycopg_fetch(dsn: str, sql: str, binary: bool) -> tuple[float, int]:
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor(binary=binary)
        t0 = time.perf_counter()
        cur.execute(sql)
        n = len(cur.fetchall())
        return time.perf_counter() - t0, n


def asyncpg_fetch(dsn: str, sql: str) -> tuple[float, int]:
    async def go():
        conn = await asyncpg.connect(dsn)
        try:
            t0 = time.perf_counter()
            rows = await conn.fetch(sql)
            return time.perf_counter() - t0, len(rows)
        finally:
            await conn.close()
    return asyncio.run(go())


CLIENTS = {
    "psycopg 3, text": lambda dsn, sql: psycopg_fetch(dsn, sql, False),
    "psycopg 3, binary": lambda dsn, sql: psycopg_fetch(dsn, sql, True),
    "asyncpg (binary)": asyncpg_fetch,
}


def run(quick: bool) -> list[str]:
    n, reps = (2000, 1) if quick else (100_000, 3)
    sql = ROWS_SQL.format(n=n)
    # text size of one row as sent in text format (same for both servers): id, name, timestamp
    with FakeServer("--rows", str(n)) as fake, real_server() as real:
        with psycopg.connect(real.dsn) as conn:
            mb = conn.execute(f"SELECT sum(length(id::text) + length(name) + length(at::text)) FROM ({sql}) AS s"
                              ).fetchone()[0] / 1e6
        res: dict = {}
        for _ in range(reps):
            for client, fn in CLIENTS.items():
                for label, dsn in (("fakepm", fake.dsn), ("PostgreSQL", real.dsn)):
                    t, got = fn(dsn, sql)
                    assert got == n, (label, client, got)
                    res.setdefault((client, label), []).append(n / t)
    rows = []
    for client in CLIENTS:
        f, r = Stat(res[(client, "fakepm")]), Stat(res[(client, "PostgreSQL")])
        q = f.median / r.median
        rows.append([client, f.fmt(), f"{f.median * mb / n:.1f}", r.fmt(), f"{r.median * mb / n:.1f}",
                     f"{q:.2f}x", verdict(q, 0.5)])
    return [
        "## 5. Large results",
        "",
        f"{n:,} rows of (int8, text, timestamptz), {mb:.1f} MB as text, fetched whole by the client "
        f"(`fetchall()` / `fetch()`, so the client's decoding is inside the time on both sides); {reps} runs.",
        "",
        *table(["client", "fakepm rows/s: median (min-max)", "fakepm MB/s", "PostgreSQL rows/s", "PostgreSQL MB/s",
                "fakepm/PostgreSQL", "target ≥0.5x"], rows),
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
