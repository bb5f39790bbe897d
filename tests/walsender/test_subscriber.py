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


@pytest.mark.parametrize("version", ["15.4", "14.10"])  # 14.x: old slot syntax, proto 2, no column-list queries
def test_subscriber_default_path_creates_slot_and_copies_tables(subscriber_db, version):
    real = subscriber_db
    with FakePostgres(version=version) as fake:
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
        creates = [q.sql for q in fake.queries if q.sql.startswith("CREATE_REPLICATION_SLOT")]
        if version.startswith("14"):
            assert all("_SNAPSHOT" in c for c in creates), creates
            assert "proto_version '2'" in [q.sql for q in fake.queries if "START_REPLICATION" in q.sql][0]
        else:
            assert all("(SNAPSHOT '" in c for c in creates), creates
        # DROP SUBSCRIPTION drops the slot on the fake (DROP_REPLICATION_SLOT sub2 WAIT)
        real.psql("DROP SUBSCRIPTION sub2")
        assert "sub2" not in fake.wal.slots
        fake.verify()


def _lsn(txn):
    from fakepm.protocol.replication import format_lsn

    return format_lsn(txn.end_lsn)


@pytest.fixture(scope="module")
def twophase_pg():
    """A subscriber that can hold prepared transactions (two_phase needs max_prepared_transactions > 0)."""
    from realpg import real_postgres, skip_unless_postgres

    skip_unless_postgres()
    with real_postgres(settings={"max_prepared_transactions": "10", "wal_receiver_timeout": "2s",
                                 "wal_retrieve_retry_interval": "200ms"}) as server:
        yield server


def test_subscriber_streaming_binary_two_phase(twophase_pg):
    real = twophase_pg
    real.psql(SCHEMA.strip())
    try:
        with FakePostgres(version="15.4") as fake:
            fake.wal.configure(wal_sender_timeout=30, keepalive_interval=1)
            declare(fake)
            fake.wal.create_slot("s3", two_phase=True)
            real.psql(f"CREATE SUBSCRIPTION sub3 CONNECTION '{fake.conninfo()}' PUBLICATION pub WITH "
                      "(create_slot = false, copy_data = false, slot_name = 's3', streaming = on, binary = true, "
                      "two_phase = true)")
            fake.wal.wait_for_stream(slot="s3", timeout=20)
            start = [e for e in fake.events if e["kind"] == "start_replication"][-1]
            assert start["options"]["streaming"] == "on" and start["options"]["two_phase"] == "on"
            with fake.wal.transaction(streaming=True, segment_size=4) as big:
                for i in range(10):
                    big.insert("public.items", {"id": 100 + i, "name": f"streamed {i}"})
                with big.subtransaction(abort=True):
                    big.insert("public.items", {"id": 999, "name": "rolled back to savepoint"})
                big.insert("public.items", {"id": 200, "name": "after savepoint"})
            with fake.wal.transaction(streaming=True, abort=True) as gone:
                gone.insert("public.items", {"id": 300, "name": "aborted"})
            with fake.wal.transaction(prepare="gid_pending") as p1:
                p1.insert("public.orders", {"id": 50, "total": "1"})
            with fake.wal.transaction(prepare="gid_rollback") as p2:
                p2.insert("public.orders", {"id": 51, "total": "2"})
            fake.wal.rollback_prepared("gid_rollback")
            wait_rows(real, "SELECT count(*), min(id), max(id) FROM items", "11|100|200")
            wait_rows(real, "SELECT count(*) FROM pg_prepared_xacts", "1")
            assert real.psql("SELECT count(*) FROM orders") == "0"  # prepared, not committed yet
            last = fake.wal.commit_prepared("gid_pending")
            wait_rows(real, "SELECT id, total FROM orders", "50|1")
            wait_rows(real, "SELECT count(*) FROM pg_prepared_xacts", "0")
            fake.wal.wait_for_apply(last, timeout=20, slot="s3")
            real.psql("ALTER SUBSCRIPTION sub3 DISABLE")
            fake.verify()
    finally:
        for sub in real.psql("SELECT subname FROM pg_subscription").split():
            real.psql(f"ALTER SUBSCRIPTION {sub} DISABLE")
            real.psql(f"ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)")
            real.psql(f"DROP SUBSCRIPTION {sub}")
        real.psql("DROP TABLE IF EXISTS public.orders, public.items")


def test_subscriber_default_path_with_changes_scripted_before_it_subscribes(subscriber_db):
    """Rows are the snapshot at the start of the scripted WAL; tablesync catches up through the stream."""
    real = subscriber_db
    with FakePostgres(version="15.4") as fake:
        fake.wal.configure(wal_sender_timeout=30, keepalive_interval=1)
        declare(fake, rows=True)
        last = emit_changes(fake)  # already in the WAL when the subscriber connects
        real.psql(f"CREATE SUBSCRIPTION sub4 CONNECTION '{fake.conninfo()}' PUBLICATION pub")
        wait_rows(real, "SELECT string_agg(srsubstate::text, '' ORDER BY srrelid) FROM pg_subscription_rel", "rr",
                  timeout=30)
        wait_rows(real, ORDERS, "3|8|NULL|toasted-|6008\n10|1.50|copied|NULL|\n20|5|moved|NULL|")
        wait_rows(real, "SELECT id, name FROM items ORDER BY id", "8|after truncate")
        fake.wal.wait_for_apply(last, timeout=20, slot="sub4")
        real.psql("ALTER SUBSCRIPTION sub4 DISABLE")
        fake.verify()


def test_subscriber_pings_are_answered_at_once(twophase_pg):
    """No keepalives of our own: the subscriber (wal_receiver_timeout=2s) pings with replyRequested at 1 s;
    each ping gets an immediate keepalive, so it never times out and never reconnects."""
    real = twophase_pg
    real.psql(SCHEMA.strip())
    try:
        with FakePostgres(version="15.4") as fake:
            fake.wal.configure(wal_sender_timeout=0, keepalive_interval=0)
            declare(fake)
            fake.wal.create_slot("s5")
            real.psql(f"CREATE SUBSCRIPTION sub5 CONNECTION '{fake.conninfo()}' PUBLICATION pub "
                      "WITH (create_slot = false, copy_data = false, slot_name = 's5')")
            fake.wal.wait_for_stream(slot="s5", timeout=20)
            time.sleep(4.5)  # two wal_receiver_timeouts
            pings = [e for e in fake.events if e["kind"] == "standby_status" and e["reply_requested"]]
            assert len(pings) >= 2
            assert len([e for e in fake.events if e["kind"] == "start_replication"]) == 1
            last = fake.wal.insert("public.items", {"id": 1, "name": "still there"})
            wait_rows(real, "SELECT name FROM items", "still there")
            fake.wal.wait_for_apply(last, timeout=10, slot="s5")
            real.psql("ALTER SUBSCRIPTION sub5 DISABLE")
    finally:
        for sub in real.psql("SELECT subname FROM pg_subscription").split():
            real.psql(f"ALTER SUBSCRIPTION {sub} DISABLE")
            real.psql(f"ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)")
            real.psql(f"DROP SUBSCRIPTION {sub}")
        real.psql("DROP TABLE IF EXISTS public.orders, public.items")
