"""Connect + authenticate + first query + close, per driver (psycopg 3, asyncpg), trust and scram-sha-256.

    .venv/bin/python bench/bench_connect.py [--quick]

fakepm serves from its own process (bench/fakeserver.py); PostgreSQL is a throwaway
server with the same users (`postgres` trust, `bench` scram-sha-256). Each connection is
timed on its own; fakepm and PostgreSQL alternate in rounds so both see the same noise.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import psycopg

from common import SCRAM, FakeServer, Stat, bench_main, ratio, real_server, table, with_user


def psycopg_once(dsn: str) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1").fetchone()
    return time.perf_counter() - t0


def asyncpg_many(dsn: str, n: int) -> list[float]:
    async def go():
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            conn = await asyncpg.connect(dsn)
            await conn.fetchval("SELECT 1")
            await conn.close()
            out.append(time.perf_counter() - t0)
        return out
    return asyncio.run(go())


def run(quick: bool) -> list[str]:
    n, rounds = (5, 1) if quick else (100, 3)
    results = {}  # (driver, auth, server) -> [seconds]
    with FakeServer() as fake, real_server() as real:
        servers = {"fakepm": fake.dsn, "PostgreSQL": real.dsn}
        for _ in range(rounds):
            for driver in ("psycopg 3", "asyncpg"):
                for auth in ("trust", "scram-sha-256"):
                    for label, dsn in servers.items():
                        if auth != "trust":
                            dsn = with_user(dsn, *SCRAM)
                        if driver == "psycopg 3":
                            times = [psycopg_once(dsn) for _ in range(n)]
                        else:
                            times = asyncpg_many(dsn, n)
                        results.setdefault((driver, auth, label), []).extend(times)
    rows = []
    for driver in ("psycopg 3", "asyncpg"):
        for auth in ("trust", "scram-sha-256"):
            f = Stat([t * 1e3 for t in results[(driver, auth, "fakepm")]])
            r = Stat([t * 1e3 for t in results[(driver, auth, "PostgreSQL")]])
            rows.append([driver, auth, len(f.values), f.fmt("{:.2f}"), r.fmt("{:.2f}"),
                         ratio(r.median, f.median)])
    return [
        "## 2. Connect + authenticate + `SELECT 1` + close",
        "",
        *table(["driver", "auth", "connections each", "fakepm ms: median (min-max)", "PostgreSQL ms",
                "fakepm speed vs PostgreSQL"], rows),
        "Speed ratio = PostgreSQL median / fakepm median (>1: fakepm is faster). SCRAM costs 4096 "
        "PBKDF2 iterations on both sides of the connection (client and server).",
        "",
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
