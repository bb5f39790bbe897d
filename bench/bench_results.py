"""Large results: N rows of (int8, text, timestamptz) to psycopg 3 (text and binary) and asyncpg.

    .venv/bin/python bench/bench_results.py [--quick]
    .venv/bin/python bench/bench_results.py --sansio [ROWS]   # session CPU only, no sockets

--sansio feeds a fakepm Session (sans-I/O, in this process) the query and drains its output
until ReadyForQuery, timing the process's CPU (best of 3): simple query (text), extended with
binary and text results, and COPY TO STDOUT text and binary. It measures the encoding paths
without the client, the kernel or the other processes of a shared machine; it is no
comparison with PostgreSQL (use the default mode for that).

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


def sansio(n: int) -> list[str]:
    from fakeserver import streamed_rows

    from fakepm.answers.builtin import Builtins
    from fakepm.answers.catalog import Catalog
    from fakepm.answers.responder import Responder
    from fakepm.answers.rules import Rule, RuleSet, reply_result
    from fakepm.protocol import messages as m
    from fakepm.session.config import ServerConfig
    from fakepm.session.connection import Session
    from fakepm.session.hub import Hub, Journal

    config, rules = ServerConfig(users=None), RuleSet()
    rules.add(Rule(query="SELECT big", answers=[reply_result({"id": "int8", "name": "text", "at": "timestamptz"},
                                                             streamed_rows(n), None)]))
    session = Session(Hub(Journal(), lambda: 0.0), config, Responder(rules, Builtins(config), Catalog()),
                      peer=("127.0.0.1", 50000))
    session.receive(m.StartupMessage(m.PROTOCOL_3_0, {"user": "postgres"}).encode())
    session.data_to_send()

    def drain(request: bytes) -> int:
        session.receive(request)
        size = 0
        while True:
            out = session.data_to_send()
            size += len(out)
            if out.endswith(b"Z\x00\x00\x00\x05I"):
                return size
            session.resume_output()  # the I/O loop does this once the socket took the output

    def extended(fmt: int) -> bytes:
        return (m.Parse("", "SELECT big", ()).encode() + m.Bind("", "", (), (), (fmt,)).encode()
                + m.Execute("", 0).encode() + m.Sync().encode())

    cases = {
        "simple query (text)": m.Query("SELECT big").encode(),
        "extended, binary results": extended(1),
        "extended, text results": extended(0),
        "COPY TO STDOUT text": m.Query("COPY (SELECT big) TO STDOUT").encode(),
        "COPY TO STDOUT binary": m.Query("COPY (SELECT big) TO STDOUT (FORMAT binary)").encode(),
    }
    rows = []
    for label, request in cases.items():
        best = min(_cpu(drain, request) for _ in range(3))
        rows.append([label, f"{n / best:,.0f}", f"{best / n * 1e6:.2f}"])
    return [f"Sans-I/O session CPU, {n:,} generated rows of (int8, text, timestamptz), best of 3:", "",
            *table(["path", "rows/s of CPU", "µs per row"], rows)]


def _cpu(fn, arg) -> float:
    t0 = time.process_time()
    fn(arg)
    return time.process_time() - t0


if __name__ == "__main__":
    import sys

    if "--sansio" in sys.argv:
        rest = [a for a in sys.argv[1:] if a != "--sansio"]
        print("\n".join(sansio(int(rest[0]) if rest else 100_000)))
    else:
        bench_main(run, __doc__)
