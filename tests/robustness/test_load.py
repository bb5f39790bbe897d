"""200 concurrent connections at once -- queries (asyncpg), COPY OUT and COPY IN (psycopg),
a logical replication stream (psycopg2) -- with faults on some, for a bounded time:
no deadlock, no internal error, every connection and thread gone after stop, journal complete."""

import asyncio
import os
import select
import threading
import time

import asyncpg
import psycopg
import psycopg2
import psycopg2.extras

from fakepm import FakePostgres

DURATION = 2.5
N_QUERY = 180
N_COPY = 16  # half COPY OUT, half COPY IN
N_FLAKY = 3  # connections to the flaky rule (faults)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_200_connections_queries_copy_replication_and_faults():
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    pg = FakePostgres(version="15.4", max_connections=400)
    pg.table("public.t_def", {"id": "int4", "a": "text"}, key=["id"])
    pg.table("sink", {"a": "int4", "b": "text"})
    pg.on("SELECT id, name FROM items WHERE id = $1", param_types=["int4"]).reply(
        columns={"id": "int4", "name": "text"}, rows=[[1, "one"]])
    pg.on("COPY big TO STDOUT").reply(columns={"a": "int4", "b": "text"}, rows=[[i, "x" * 20] for i in range(2000)])
    pg.on("SELECT flaky").reply(columns={"f": "int4"}, rows=[[1]] * 50,
                                fault=[{"reset": True, "every": 3},
                                       {"fatal": "57P01", "after_rows": 10, "probability": 0.2, "seed": 2},
                                       {"slice": [3, 7], "probability": 0.3, "seed": 3}])
    pg.fault(delay=0.002, every=50)
    counts = {"query": 0, "copy_out": 0, "copy_in": 0, "flaky_ok": 0, "flaky_err": 0, "repl": 0}
    lock = threading.Lock()
    # the clock starts once every worker is connected and streaming (slow machines connect slowly);
    # until then the loops run, and each loop runs at least once
    stop = {"at": time.monotonic() + 60}
    errors: list = []

    def going(done_once: bool) -> bool:
        return not done_once or time.monotonic() < stop["at"]

    def bump(key, n=1):
        with lock:
            counts[key] += n

    async def query_client():
        conn = await asyncpg.connect(pg.dsn, timeout=10)
        try:
            done = False
            while going(done):
                row = await conn.fetchrow("SELECT id, name FROM items WHERE id = $1", 1, timeout=10)
                assert tuple(row) == (1, "one")
                bump("query")
                done = True
        finally:
            await conn.close(timeout=5)

    async def flaky_client():
        done = False
        while going(done):
            done = True
            try:
                conn = await asyncpg.connect(pg.dsn, timeout=10)
                try:
                    await conn.fetch("SELECT flaky", timeout=10)
                    bump("flaky_ok")
                finally:
                    conn.terminate()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
                bump("flaky_err")

    async def all_queries():
        await asyncio.gather(*[query_client() for _ in range(N_QUERY)], *[flaky_client() for _ in range(N_FLAKY)])

    def copy_client(direction):
        try:
            with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=10) as conn:
                done = False
                while going(done):
                    done = True
                    cur = conn.cursor()
                    if direction == "out":
                        with cur.copy("COPY big TO STDOUT") as cp:
                            n = sum(1 for _ in cp.rows())
                        assert n == 2000
                        bump("copy_out")
                    else:
                        with cur.copy("COPY sink FROM STDIN") as cp:
                            for i in range(500):
                                cp.write_row([i, "v"])
                        bump("copy_in")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"copy {direction}: {e!r}")

    def replication_client():
        try:
            conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
            try:
                cur = conn.cursor()
                cur.create_replication_slot("load", output_plugin="pgoutput")
                cur.start_replication(slot_name="load", decode=False,
                                      options={"proto_version": "1", "publication_names": "p"})
                hard_stop = time.monotonic() + 60
                while time.monotonic() < hard_stop and (counts["repl"] == 0 or time.monotonic() < stop["at"] + 0.5):
                    msg = cur.read_message()
                    if msg is None:
                        select.select([cur], [], [], 0.1)
                        continue
                    bump("repl")
                    cur.send_feedback(flush_lsn=msg.data_start)
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001
            errors.append(f"replication: {e!r}")

    with pg:
        workers = [threading.Thread(target=copy_client, args=("out" if i % 2 else "in",)) for i in range(N_COPY)]
        workers.append(threading.Thread(target=replication_client))
        for t in workers:
            t.start()
        pg.wal.wait_for_stream(slot="load", timeout=10)
        stop["at"] = time.monotonic() + DURATION

        def produce():
            i = 0
            while i < 5 or time.monotonic() < stop["at"]:
                pg.wal.insert("public.t_def", {"id": i, "a": "x"})
                i += 1
                time.sleep(0.01)

        producer = threading.Thread(target=produce)
        producer.start()
        asyncio.run(asyncio.wait_for(all_queries(), DURATION + 30))
        for t in workers + [producer]:
            t.join(30)
            assert not t.is_alive(), "a client thread is stuck (deadlock?)"
        assert not errors, errors
        assert not [e for e in pg.events if e["kind"] == "internal_error"]
        assert not pg._loop.errors
        journaled = sum(1 for q in pg.queries if q.sql.startswith("SELECT id, name FROM items"))
        assert journaled == counts["query"]  # the journal is complete
        assert counts["copy_out"] and counts["copy_in"] and counts["repl"] and counts["flaky_err"], counts
    # after stop: no connection left, no thread left, no socket left
    assert not pg.hub.sessions
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set(threading.enumerate()) - threads_before:
        time.sleep(0.05)
    assert not [t.name for t in set(threading.enumerate()) - threads_before]
    assert _fds() <= fds_before
