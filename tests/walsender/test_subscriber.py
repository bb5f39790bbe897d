"""A real PostgreSQL 15 subscriber applies the fake walsender's changes into its own tables."""

import time

import pytest

from fakepm import FakePostgres
from fakepm.walsender import UNCHANGED_TOAST

pytestmark = pytest.mark.realpg

BIG = "toasted-" + "x" * 6000

SCHEMA = """
CREATE TABLE public.orders (id int PRIMARY KEY, total numeric, note text, big text);
CREATE TABLE public.items (id int PRIMARY KEY, name text);
"""


def declare(fake, rows=False):
    fake.table("public.orders", {"id": "int4", "total": "numeric", "note": "text", "big": "text"}, key=["id"],
               rows=[{"id": 10, "total": "1.50", "note": "copied"}] if rows else ())
    fake.table("public.items", {"id": "int4", "name": "text"}, key=["id"],
               rows=[{"id": 1, "name": "copied item"}] if rows else ())
    fake.wal.publication("pub", ["public.orders", "public.items"])


def emit_changes(fake):
    """Inserts, NULLs, unchanged TOAST, key change, delete, truncate: returns the last transaction."""
    fake.wal.insert("public.orders", {"id": 1, "total": "9.99", "note": None})
    fake.wal.insert("public.orders", {"id": 2, "total": "5", "note": "two"})
    fake.wal.insert("public.orders", {"id": 3, "total": "7", "note": "three", "big": BIG})
    with fake.wal.transaction():
        fake.wal.update("public.orders", {"id": 3, "total": "8", "note": None, "big": UNCHANGED_TOAST})
        fake.wal.update("public.orders", {"id": 20, "total": "5", "note": "moved"}, old={"id": 2})
        fake.wal.delete("public.orders", {"id": 1})
        fake.wal.insert("public.items", {"id": 7, "name": "gone soon"})
    fake.wal.truncate(["public.items"], cascade=True, restart_identity=True)
    return fake.wal.insert("public.items", {"id": 8, "name": "after truncate"})


def wait_rows(real, sql, expected, timeout=20.0):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = real.psql(sql)
        if got == expected:
            return got
        time.sleep(0.2)
    raise AssertionError(f"subscriber has {got!r}, expected {expected!r}")


ORDERS = "SELECT id, total, coalesce(note, 'NULL'), coalesce(left(big, 8), 'NULL'), length(big) FROM orders ORDER BY id"


@pytest.fixture
def subscriber_db(real_pg):
    real_pg.psql("DROP TABLE IF EXISTS public.orders, public.items")
    real_pg.psql(SCHEMA.strip())
    yield real_pg
    for sub in real_pg.psql("SELECT subname FROM pg_subscription").split():
        real_pg.psql(f"ALTER SUBSCRIPTION {sub} DISABLE")
        real_pg.psql(f"ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)")
        real_pg.psql(f"DROP SUBSCRIPTION {sub}")
    real_pg.psql("DROP TABLE IF EXISTS public.orders, public.items")


def test_subscriber_applies_scripted_changes(subscriber_db):
    real = subscriber_db
    with FakePostgres(version="15.4") as fake:
        fake.wal.configure(wal_sender_timeout=30, keepalive_interval=1)
        declare(fake)
        fake.wal.create_slot("s1")
        real.psql(f"CREATE SUBSCRIPTION sub1 CONNECTION '{fake.conninfo()}' PUBLICATION pub "
                  "WITH (create_slot = false, copy_data = false, slot_name = 's1')")
        fake.wal.wait_for_stream(slot="s1", timeout=20)
        last = emit_changes(fake)
        wait_rows(real, ORDERS, "3|8|NULL|toasted-|6008\n20|5|moved|NULL|")
        wait_rows(real, "SELECT id, name FROM items ORDER BY id", "8|after truncate")
        status = fake.wal.wait_for_apply(last, timeout=20, slot="s1")
        assert status["application_name"] == "sub1"
        applied = [e for e in fake.events if e["kind"] == "standby_status" and e["apply"] >= last.end_lsn]
        assert applied and applied[0]["slot"] == "s1"
        assert fake.wal.slots["s1"].confirmed_flush <= last.end_lsn
        assert real.psql("SELECT received_lsn >= '%s' FROM pg_stat_subscription WHERE subname = 'sub1'"
                         % _lsn(last)) == "t"
        real.psql("ALTER SUBSCRIPTION sub1 DISABLE")
        fake.verify()


def test_subscriber_default_path_creates_slot_and_copies_tables(subscriber_db):
    real = subscriber_db
    with FakePostgres(version="15.4") as fake:
        fake.wal.configure(wal_sender_timeout=30, keepalive_interval=1)
        declare(fake, rows=True)
        real.psql(f"CREATE SUBSCRIPTION sub2 CONNECTION '{fake.conninfo()}' PUBLICATION pub")
        assert "sub2" in fake.wal.slots
        deadline = time.monotonic() + 30
        states = ""
        while time.monotonic() < deadline:
            states = real.psql("SELECT string_agg(srsubstate::text, '' ORDER BY srrelid) FROM pg_subscription_rel")
            if states == "rr":
                break
            time.sleep(0.2)
        assert states == "rr", f"tablesync did not finish: srsubstate={states!r}"
        # both tablesync slots were created and dropped again; only the subscription's slot remains
        assert sorted(fake.wal.slots) == ["sub2"]
        copies = [q.sql for q in fake.queries if q.sql.startswith("COPY")]
        assert sorted(copies) == ["COPY public.items (id, name) TO STDOUT",
                                  "COPY public.orders (id, total, note, big) TO STDOUT"]
        wait_rows(real, ORDERS, "10|1.50|copied|NULL|")
        last = emit_changes(fake)
        wait_rows(real, ORDERS, "3|8|NULL|toasted-|6008\n10|1.50|copied|NULL|\n20|5|moved|NULL|")
        wait_rows(real, "SELECT id, name FROM items ORDER BY id", "8|after truncate")
        fake.wal.wait_for_apply(last, timeout=20, slot="sub2")
        # DROP SUBSCRIPTION drops the slot on the fake (DROP_REPLICATION_SLOT sub2 WAIT)
        real.psql("DROP SUBSCRIPTION sub2")
        assert "sub2" not in fake.wal.slots
        fake.verify()


def _lsn(txn):
    from fakepm.protocol.replication import format_lsn

    return format_lsn(txn.end_lsn)
