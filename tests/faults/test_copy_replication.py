"""Faults inside COPY (psycopg 3, psycopg2) and inside a logical replication stream (psycopg2)."""

import io
import select
import time

import psycopg
import psycopg2
import psycopg2.extras
import pytest

from fakepm import FakePostgres


@pytest.fixture
def pg():
    with FakePostgres(version="15.4") as server:
        yield server
        assert not [e for e in server.events if e["kind"] == "internal_error"]


def test_disconnect_after_the_500th_row_of_a_copy_out(pg):
    pg.on("COPY big TO STDOUT").reply(columns={"a": "int4"}, rows=[[i] for i in range(1000)],
                                      fault={"close": True, "after_rows": 500})
    got = []
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.OperationalError, match="server closed the connection unexpectedly"):
            with conn.cursor().copy("COPY big TO STDOUT") as cp:
                got.extend(cp.rows())
    assert len(got) == 500
    buf = io.StringIO()
    conn2 = psycopg2.connect(pg.dsn)
    try:
        # psycopg2 reports the lost connection in COPY OUT as a DatabaseError without a message
        with pytest.raises(psycopg2.DatabaseError, match="error with status PGRES_COPY_OUT and no message"):
            conn2.cursor().copy_expert("COPY big TO STDOUT", buf)
    finally:
        conn2.close()
    assert buf.getvalue().count("\n") == 500


def test_copy_out_cut_asyncpg(pg):
    import asyncio

    import asyncpg

    pg.on("COPY (SELECT a FROM src) TO STDOUT").reply(columns={"a": "int4"}, rows=[[i] for i in range(1000)],
                                                      fault={"close": True, "after_rows": 500})
    buf = io.BytesIO()

    async def go():
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.copy_from_query("SELECT a FROM src", output=buf, timeout=5)
        finally:
            conn.terminate()

    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        asyncio.run(go())
    assert buf.getvalue().count(b"\n") == 500


def test_error_after_n_rows_of_a_copy_in(pg):
    pg.table("t", {"a": "int4"})
    pg.on("COPY t FROM STDIN").reply(columns={"a": "int4"},
                                     fault={"error": {"code": "22P02", "message": "bad row"}, "at": "copy_in",
                                            "after_rows": 3})
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation, match="bad row"):
            with conn.cursor().copy("COPY t FROM STDIN") as cp:
                for i in range(10):
                    cp.write_row([i])
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection goes on
    assert any(e["kind"] == "fault" and e["point"] == "copy" for e in pg.events)


@pytest.mark.parametrize("plan,cls,text", [
    ({"close": True}, psycopg2.DatabaseError, "PGRES_COPY_BOTH"),
    ({"fatal": "57P01"}, psycopg2.errors.AdminShutdown, "terminating connection due to administrator command"),
    ({"error": "XX000"}, psycopg2.errors.InternalError, "fakepm fault XX000"),
])
def test_replication_stream_fault_after_n_messages(pg, plan, cls, text):
    pg.table("public.t_def", {"id": "int4", "a": "text"}, key=["id"])
    pg.fault({**plan, "at": "replication", "after_rows": 3})
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.create_replication_slot("s1", output_plugin="pgoutput")
        cur.start_replication(slot_name="s1", decode=False, options={"proto_version": "1", "publication_names": "p"})
        pg.wal.wait_for_stream(slot="s1")
        for i in range(5):
            pg.wal.insert("public.t_def", {"id": i, "a": "x"})
        got = []
        deadline = time.monotonic() + 5
        with pytest.raises(cls) as info:
            while time.monotonic() < deadline:
                msg = cur.read_message()
                if msg is None:
                    select.select([cur], [], [], 0.2)
                    continue
                got.append(bytes(msg.payload[:1]))
        assert text in str(info.value)
        assert len(got) >= 3  # the fault fires at the first batch boundary after 3 messages
    finally:
        conn.close()
