""""Client writes, CDC sees it": an ordinary psycopg connection writes, a logical consumer receives it."""

import select
import time

import pytest

from fakepm import FakePostgres
from fakepm.protocol import pgoutput as po

psycopg = pytest.importorskip("psycopg")
psycopg2 = pytest.importorskip("psycopg2")
import psycopg2.extras  # noqa: E402


def read(cur, n, timeout=5.0):
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msg = cur.read_message()
        if msg is None:
            select.select([cur], [], [], 0.1)
        else:
            got.append(po.decode_pgoutput(bytes(msg.payload)))
    return got


def test_client_writes_reach_the_logical_stream():
    with FakePostgres(version="15.4") as pg:
        pg.table("public.orders", {"id": "int4", "total": "numeric", "note": "text"}, key=["id"],
                 rows=[{"id": 1, "total": "9.99", "note": "seed"}])
        pg.wal.capture_writes()
        repl = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        try:
            cur = repl.cursor()
            cur.create_replication_slot("cdc", output_plugin="pgoutput")
            cur.start_replication(slot_name="cdc", decode=False,
                                  options={"proto_version": "1", "publication_names": "pub"})
            pg.wal.wait_for_stream(slot="cdc")
            with psycopg.connect(pg.dsn, autocommit=True) as app:
                assert app.execute("INSERT INTO orders (id, total) VALUES (%s, %s)", [2, 5]).rowcount == 1
                assert app.execute("UPDATE orders SET note = 'paid' WHERE id = 1").rowcount == 1
                with app.transaction():  # one transaction on the stream, emitted at COMMIT
                    assert app.execute("UPDATE orders SET id = 3 WHERE id = %s", [2]).rowcount == 1
                    assert app.execute("DELETE FROM orders WHERE id = 1").rowcount == 1
                    assert app.execute("DELETE FROM orders WHERE id = 42").rowcount == 0
                with pytest.raises(psycopg.errors.Error):
                    with app.transaction():
                        app.execute("INSERT INTO orders (id) VALUES (7)")
                        raise psycopg.errors.Error("the app rolls back")
            msgs = read(cur, 11)
            names = [type(x).__name__ for x in msgs]
            assert names == ["Begin", "Relation", "Insert", "Commit", "Begin", "Update", "Commit",
                             "Begin", "Update", "Delete", "Commit"]
            assert msgs[2].new == (po.TextValue(b"2"), po.TextValue(b"5"), None)
            assert msgs[5].new[2] == po.TextValue(b"paid") and msgs[5].key is None
            assert msgs[8].key[0] == po.TextValue(b"2") and msgs[8].new[0] == po.TextValue(b"3")  # key change: K
            assert msgs[9].key[0] == po.TextValue(b"1")
            assert read(cur, 1, timeout=0.5) == []  # the rolled-back insert never reaches the stream
        finally:
            repl.close()
        pg.verify()
