"""Logical replication through fakepm in backend mode: pg_recvlogical (the engine's own) and
psycopg2's LogicalReplicationConnection connect to fakepm with replication=database, create
their slots through it, and see the rows an app inserted through fakepm -- the engine's own
walsender and decoding (wal_level=logical on the managed engine), relayed."""

from __future__ import annotations

import secrets
import select
import signal
import subprocess
import time

import psycopg
import pytest
from backend_helpers import backend_server, client_env, engine_program, run, wait_until

from fakepm.protocol import pgoutput


@pytest.fixture(scope="module")
def pg():
    with backend_server(scenario=None) as pg:
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            assert c.execute("SHOW wal_level").fetchone()[0] == "logical"
            c.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2))")
            c.execute("CREATE PUBLICATION shop_pub FOR TABLE items")
        yield pg


@pytest.fixture
def slot(pg):
    """A slot name of our own (slots are the engine's, across all its databases); dropped after."""
    name = f"fakepm_test_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        def inactive() -> bool:
            row = c.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone()
            return row is None or not row[0]

        # the walsender ends a few ms after its client went away (as it does directly on the engine)
        assert wait_until(inactive, 10), f"slot {name} still active 10 s after its client closed"
        c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                  (name,))


def app_inserts(pg, first_id: int, n: int = 2) -> list[tuple]:
    """What the app does: one transaction of INSERTs through fakepm; the rows it wrote."""
    rows = [(first_id + i, f"item {first_id + i}", f"{first_id + i}.50") for i in range(n)]
    with psycopg.connect(pg.dsn) as c:
        with c.transaction():
            for r in rows:
                c.execute("INSERT INTO items (id, name, price) VALUES (%s, %s, %s)", r)
    return rows


def test_pg_recvlogical_sees_the_apps_rows(pg, slot, tmp_path):
    recvlogical = engine_program(pg, "pg_recvlogical")
    r = run([recvlogical, "-d", pg.dsn, "--slot", slot, "--create-slot", "--plugin", "test_decoding"])
    assert r.returncode == 0, r.stderr
    rows = app_inserts(pg, 100)
    out = tmp_path / "changes.txt"
    proc = subprocess.Popen([recvlogical, "-d", pg.dsn, "--slot", slot, "--start", "--no-loop", "-f", str(out),
                             "--fsync-interval", "0", "--status-interval", "1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=client_env())
    try:
        def received() -> str:
            return out.read_text() if out.exists() else ""

        assert wait_until(lambda: "COMMIT" in received() or proc.poll() is not None, 30), received()
        assert proc.poll() is None, proc.communicate(timeout=10)
        more = app_inserts(pg, 200, 1)  # while it streams: a change made after it started
        assert wait_until(lambda: received().count("COMMIT") >= 2, 30), received()
    finally:
        proc.send_signal(signal.SIGINT)  # pg_recvlogical's way to stop: flush and exit 0
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    lines = received().splitlines()
    changes = [line for line in lines if line.startswith("table ")]
    assert changes == [f"table public.items: INSERT: id[integer]:{i} name[text]:'{n}' price[numeric]:{p}"
                       for i, n, p in rows + more]
    assert [line.split()[0] for line in lines] == ["BEGIN", "table", "table", "COMMIT", "BEGIN", "table", "COMMIT"]
    sent = [q for q in pg.queries if "REPLICATION_SLOT" in q.sql or q.sql.startswith("START_REPLICATION")]
    assert [q.sql.split()[0] for q in sent] == ["CREATE_REPLICATION_SLOT", "START_REPLICATION"]
    assert {q.rule for q in sent} == {"engine"}


@pytest.mark.parametrize("proto_version", [1, 2, 3, 4])
def test_psycopg2_logical_replication_connection_sees_the_apps_rows(pg, slot, proto_version):
    pytest.importorskip("psycopg2")
    import psycopg2.extras

    major = int(pg.backend.engine.version.split(".")[0])
    newest = 1 if major < 14 else 2 if major == 14 else 3 if major == 15 else 4  # streaming, 2PC, parallel
    if proto_version > newest:
        pytest.skip(f"PostgreSQL {major} has no pgoutput protocol version {proto_version}")
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.create_replication_slot(slot, output_plugin="pgoutput")
        rows = app_inserts(pg, 1000 * proto_version, 3)
        cur.start_replication(slot_name=slot, decode=False,
                              options={"proto_version": str(proto_version), "publication_names": "shop_pub"})
        got = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = cur.read_message()
            if msg is None:
                select.select([cur], [], [], 0.5)
                continue
            got.append(pgoutput.decode_pgoutput(msg.payload))
            cur.send_feedback(flush_lsn=msg.data_start)
            if isinstance(got[-1], pgoutput.Commit):
                break
    finally:
        conn.close()
    assert [type(m).__name__ for m in got] == ["Begin", "Relation", "Insert", "Insert", "Insert", "Commit"]
    rel = got[1]
    assert (rel.namespace, rel.name) == ("public", "items")
    assert [(c.name, c.type_oid) for c in rel.columns] == [("id", 23), ("name", 25), ("price", 1700)]
    assert [tuple(v.data.decode() for v in m.new) for m in got[2:5]] == [(str(i), n, p) for i, n, p in rows]
    assert all(m.relid == rel.relid for m in got[2:5])
