"""Round trips on one psycopg 3 connection: `SELECT 1` (simple protocol) and a one-parameter query
(extended, unnamed statement) and the same prepared (named statement, Bind/Execute only).

    .venv/bin/python bench/bench_roundtrip.py [--quick]
"""

from __future__ import annotations

import time

import psycopg

from common import FakeServer, Stat, bench_main, ratio, real_server, table

PARAM_QUERY = "SELECT name FROM users WHERE id = %s"  # = common.PARAM_SQL once psycopg converts it

KINDS = {
    "`SELECT 1`, simple": lambda conn: conn.execute("SELECT 1").fetchone(),
    "1 parameter, extended (unprepared)": lambda conn: conn.execute(PARAM_QUERY, [1], prepare=False).fetchone(),
    "1 parameter, prepared": lambda conn: conn.execute(PARAM_QUERY, [1], prepare=True).fetchone(),
}


def per_second(dsn: str, fn, n: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(20):  # warm: prepare, caches
            fn(conn)
        t0 = time.perf_counter()
        for _ in range(n):
            fn(conn)
        return n / (time.perf_counter() - t0)


def run(quick: bool) -> list[str]:
    n, rounds = (200, 1) if quick else (5000, 3)
    res: dict = {}
    with FakeServer() as fake, real_server() as real:
        for _ in range(rounds):
            for kind, fn in KINDS.items():
                for label, dsn in (("fakepm", fake.dsn), ("PostgreSQL", real.dsn)):
                    res.setdefault((kind, label), []).append(per_second(dsn, fn, n))
    rows = []
    for kind in KINDS:
        f, r = Stat(res[(kind, "fakepm")]), Stat(res[(kind, "PostgreSQL")])
        rows.append([kind, f.fmt(), f"{1e6 / f.median:.0f}", r.fmt(), f"{1e6 / r.median:.0f}", ratio(f.median, r.median)])
    return [
        "## 3. Round trips on one psycopg 3 connection",
        "",
        f"{n:,} round trips per run, {rounds} runs per cell.",
        "",
        *table(["query", "fakepm per s: median (min-max)", "fakepm µs", "PostgreSQL per s", "PostgreSQL µs",
                "fakepm/PostgreSQL"], rows),
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
