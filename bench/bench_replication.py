"""Replication: pgoutput changes/s delivered to pg_recvlogical and to a psycopg2 LogicalReplicationConnection
consumer, fakepm's walsender (own process) vs a real PostgreSQL publisher (wal_level=logical).

    .venv/bin/python bench/bench_replication.py [--quick]

Both sides hold the same N inserts into `t (id int4, payload text)` (100-byte payloads), in
transactions of 100, waiting in a slot before the consumer starts (fakepm: `pg.wal`
transactions emitted before the consumer connects; PostgreSQL: INSERT ... SELECT
generate_series statements, one transaction each). The time is from starting the consumer
to the last change received (pg_recvlogical: `-E end LSN`, process start to exit;
psycopg2: `start_replication` to the N-th Insert message). Before the first run each server gets one
untimed pg_recvlogical connection (create and drop a slot), so one-off costs of a fresh process (fakepm
imports its SQL parser on the first `set_config` pg_recvlogical sends) stay out of the throughput.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time

import psycopg2
import psycopg2.extras

from common import FakeServer, Stat, bench_main, real_server, table, verdict

PER_TX = 100
OPTS = {"proto_version": "1", "publication_names": "p"}


def recvlogical(dsn: str, slot: str, end_lsn: str, tmp: str) -> float:
    out = os.path.join(tmp, f"{slot}.out")
    cmd = ["pg_recvlogical", "-d", dsn, "--slot", slot, "--start", "-o", "proto_version=1",
           "-o", "publication_names=p", "-E", end_lsn, "-f", out]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed: {r.stderr}")
    return t


def warm_up(dsn: str) -> None:
    for action in ("--create-slot", "--drop-slot"):
        subprocess.run(["pg_recvlogical", "-d", dsn, "--slot", "warmup", "-P", "pgoutput", action], check=True,
                       capture_output=True, timeout=60)


def psycopg2_consume(dsn: str, slot: str, n: int) -> float:
    conn = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        t0 = time.perf_counter()
        cur.start_replication(slot_name=slot, decode=False, options=OPTS)
        inserts, deadline = 0, time.monotonic() + 300
        while inserts < n:
            msg = cur.read_message()
            if msg is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"psycopg2 consumer: {inserts} of {n} inserts after 300 s")
                select.select([cur], [], [], 1.0)
                continue
            if msg.payload[:1] == b"I":
                inserts += 1
        t = time.perf_counter() - t0
        cur.send_feedback(flush_lsn=msg.data_start)
        return t
    finally:
        conn.close()


def real_fill(real, n: int, slots: list[str], tmp: str) -> str:
    for slot in slots:
        real.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    script = "".join(f"INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series({a}, {min(n, a + PER_TX) - 1}) g;\n"
                     for a in range(0, n, PER_TX))
    path = os.path.join(tmp, "fill.sql")  # psql -c with many statements is one transaction: use -f
    with open(path, "w") as f:
        f.write(script)
    subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", real.dsn, "-f", path], check=True,
                   capture_output=True, timeout=300)
    return real.psql("SELECT pg_current_wal_lsn()")


def run(quick: bool) -> list[str]:
    n, reps = (2000, 1) if quick else (100_000, 2)
    res: dict = {}
    settings = {"wal_level": "logical", "max_wal_senders": "20", "max_replication_slots": "20"}
    with tempfile.TemporaryDirectory() as tmp, FakeServer() as fake, real_server(settings=settings) as real:
        real.psql("CREATE TABLE t (id int4 PRIMARY KEY, payload text); CREATE PUBLICATION p FOR TABLE t")
        rdsn = real.dsn + "?replication=database"
        fdsn = fake.dsn + "?replication=database"
        warm_up(fdsn)
        warm_up(rdsn)
        for rep in range(reps):
            slots = [f"rl{rep}", f"py{rep}"]
            end = fake.cmd(f"wal {n} {PER_TX} {' '.join(slots)}")["end_lsn"]
            res.setdefault(("pg_recvlogical", "fakepm"), []).append(n / recvlogical(fdsn, slots[0], end, tmp))
            res.setdefault(("psycopg2", "fakepm"), []).append(n / psycopg2_consume(fake.dsn, slots[1], n))
            real.psql("TRUNCATE t")
            end = real_fill(real, n, slots, tmp)
            res.setdefault(("pg_recvlogical", "PostgreSQL"), []).append(n / recvlogical(rdsn, slots[0], end, tmp))
            res.setdefault(("psycopg2", "PostgreSQL"), []).append(n / psycopg2_consume(real.dsn, slots[1], n))
    rows = []
    for consumer in ("pg_recvlogical", "psycopg2"):
        f, r = Stat(res[(consumer, "fakepm")]), Stat(res[(consumer, "PostgreSQL")])
        q = f.median / r.median
        rows.append([consumer, f.fmt(), r.fmt(), f"{q:.2f}x", verdict(q, 1.0)])
    return [
        "## 7. Logical replication (pgoutput, proto 1)",
        "",
        f"{n:,} inserts in transactions of {PER_TX}, {reps} runs.",
        "",
        *table(["consumer", "fakepm changes/s: median (min-max)", "PostgreSQL changes/s", "fakepm/PostgreSQL",
                "target ≥1x"], rows),
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
