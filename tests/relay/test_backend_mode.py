"""Backend mode with real drivers: rules and faults in front of a real PostgreSQL.

Each test gets its own FakePostgres on the process's managed engine (tests/relay/conftest.py);
what the engine answers must look exactly as if the client were connected to it, and what
fakepm answers itself must leave the engine in the state a real error would.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")

from fakepm import FakePostgres  # noqa: E402
from fakepm.protocol.errors import PgError  # noqa: E402


@pytest.fixture
def pg(engine):
    with FakePostgres(backend=engine) as server:
        yield server


def _direct(pg):
    """A libpq connection string to the same engine database, bypassing fakepm."""
    url = pg.backend.engine.upstream_url("postgres", pg.backend.database)
    return f"host={url.host} port={url.port} user=postgres dbname={pg.backend.database}"


def test_engine_answers_and_the_journal_says_so(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        c.execute("INSERT INTO t VALUES (%s, %s)", [1, "x"])
        assert c.execute("SELECT v FROM t WHERE id = %s", [1]).fetchone() == ("x",)
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM nosuch")
        assert c.info.parameter_status("server_version").split(".")[0].isdigit()
    entries = [q for q in pg.queries if q.sql.startswith(("INSERT", "SELECT"))]
    assert [(q.sql, q.params, q.rule, q.tag) for q in entries[:2]] == [
        ("INSERT INTO t VALUES ($1, $2)", [1, "x"], "engine", "INSERT 0 1"),
        ("SELECT v FROM t WHERE id = $1", [1], "engine", "SELECT 1"),
    ]
    assert entries[2].error.startswith("42P01 ") and entries[2].rule == "engine"
    assert pg.unmatched == []  # an engine answer is not "unmatched"
    pg.verify()
    with psycopg.connect(_direct(pg)) as d:  # the same engine database, directly
        assert d.execute("SELECT id, v FROM t").fetchall() == [(1, "x")]


def test_client_sees_the_engines_backend_identity(pg):
    with psycopg.connect(pg.dsn) as c:
        pid = c.info.backend_pid
        assert c.execute("SELECT pg_backend_pid(), current_user").fetchone() == (pid, "postgres")
        with psycopg.connect(pg.dsn, autocommit=True) as other:
            assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT 1")


def test_a_rule_overrides_one_query_inside_a_real_transaction(pg):
    pg.on("SELECT balance FROM accounts WHERE id = $1").reply(columns={"balance": "int4"}, rows=[[100]])
    with psycopg.connect(pg.dsn) as c:
        c.execute("CREATE TABLE t (id int)")
        c.commit()
        with c.transaction():
            c.execute("INSERT INTO t VALUES (1)")
            assert c.execute("SELECT balance FROM accounts WHERE id = %s", [7]).fetchone() == (100,)
            assert c.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            c.execute("INSERT INTO t VALUES (2)")
        assert c.execute("SELECT count(*) FROM t").fetchone() == (2,)
    rules = [q.rule for q in pg.queries if "accounts" in q.sql]
    assert len(rules) == 1 and rules[0].startswith("query ")


def test_a_rule_error_fails_the_engines_transaction_too(pg):
    pg.on("SELECT fail").error("22012", "division by zero")
    with psycopg.connect(pg.dsn) as c:
        c.execute("CREATE TABLE t (id int)")
        c.commit()
        c.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT fail")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):  # said by the engine itself
            c.execute("SELECT 1")
        c.rollback()
        assert c.execute("SELECT count(*) FROM t").fetchone() == (0,)
        # the extended protocol (a bound parameter) does the same
        c.execute("INSERT INTO t VALUES (%s)", [2])
        pg.on("SELECT fail2 WHERE 1 = $1").error("40001", "could not serialize access")
        with pytest.raises(psycopg.errors.SerializationFailure):
            c.execute("SELECT fail2 WHERE 1 = %s", [1])
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT %s::int", [1])
        c.rollback()
        assert c.execute("SELECT count(*) FROM t").fetchone() == (0,)


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_40001_on_the_second_commit(pg, driver):
    pg.fault(error="40001", query="COMMIT", nth=2)
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int)")
    outcomes = []
    if driver == "psycopg":
        with psycopg.connect(pg.dsn) as c:
            for i in range(3):
                c.execute("INSERT INTO t VALUES (%s)", [i])
                try:
                    c.commit()
                    outcomes.append("ok")
                except psycopg.errors.SerializationFailure as e:
                    outcomes.append(e.sqlstate)
                assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    else:
        async def run():
            conn = await asyncpg.connect(pg.dsn)
            for i in range(3):
                try:
                    async with conn.transaction():
                        await conn.execute("INSERT INTO t VALUES ($1)", i)
                    outcomes.append("ok")
                except asyncpg.SerializationError as e:
                    outcomes.append(e.sqlstate)
            await conn.close()

        asyncio.run(run())
    assert outcomes == ["ok", "40001", "ok"]
    with psycopg.connect(_direct(pg)) as d:  # the failed COMMIT rolled the engine's transaction back
        assert d.execute("SELECT id FROM t ORDER BY id").fetchall() == [(0,), (2,)]


def test_params_decide_between_rule_and_engine(pg):
    pg.on("SELECT v FROM t WHERE id = $1", params=[1]).reply(columns={"v": "text"}, rows=[["scripted"]])
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int, v text)")
        c.execute("INSERT INTO t VALUES (1, 'real1'), (2, 'real2')")
        for prepare in (False, True, True):
            assert c.execute("SELECT v FROM t WHERE id = %s", [1], prepare=prepare).fetchone() == ("scripted",)
            assert c.execute("SELECT v FROM t WHERE id = %s", [2], prepare=prepare).fetchone() == ("real2",)
    labels = [q.rule for q in pg.queries if q.sql.startswith("SELECT v")]
    assert labels[1::2] == ["engine"] * 3 and all(lb != "engine" for lb in labels[0::2])


def test_pipeline_mixes_rule_and_engine_answers_in_order(pg):
    pg.on("SELECT 'from the rule'").reply(columns={"x": "text"}, rows=[["rule"]])
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        with c.pipeline():
            cur1 = c.execute("SELECT %s::int", [1])
            cur2 = c.execute("SELECT 'from the rule'")
            cur3 = c.execute("SELECT %s::text || 'x'", ["a"])
            cur4 = c.execute("SELECT 'from the rule'")
        assert [cur.fetchone() for cur in (cur1, cur2, cur3, cur4)] == [(1,), ("rule",), ("ax",), ("rule",)]


def test_asyncpg_prepared_copy_and_cancel(pg):
    async def run():
        conn = await asyncpg.connect(pg.dsn)
        await conn.execute("CREATE TABLE a (id int PRIMARY KEY, v text, at timestamptz DEFAULT now())")
        await conn.executemany("INSERT INTO a (id, v) VALUES ($1, $2)", [(i, f"v{i}") for i in range(50)])
        st = await conn.prepare("SELECT v FROM a WHERE id = $1")
        assert [a.type.name for a in st.get_attributes()] == ["text"]
        assert await st.fetchval(7) == "v7"
        await conn.copy_records_to_table("a", records=[(100, "c1"), (101, "c2")], columns=["id", "v"])
        buf = io.BytesIO()
        assert await conn.copy_from_query("SELECT id, v FROM a WHERE id >= 100 ORDER BY id", output=buf) == "COPY 2"
        assert buf.getvalue() == b"100\tc1\n101\tc2\n"
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await conn.fetchval("SELECT pg_sleep(10)", timeout=0.3)  # asyncpg sends a CancelRequest
        assert time.monotonic() - t0 < 5
        assert await conn.fetchval("SELECT count(*) FROM a") == 52
        await conn.close()

    asyncio.run(run())
    copies = pg.copies
    assert [(c.direction, c.table, c.count, c.rows) for c in copies] == [("in", "a", 2, None), ("out", None, 2, None)]


def test_copy_and_notifications_with_psycopg(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE big (id int, v text)")
        with c.cursor().copy("COPY big FROM STDIN") as cp:
            for i in range(20000):
                cp.write_row((i, f"row {i}"))
        assert c.execute("SELECT count(*), sum(id) FROM big").fetchone() == (20000, sum(range(20000)))
        out = bytearray()
        with c.cursor().copy("COPY (SELECT * FROM big ORDER BY id) TO STDOUT") as cp:
            for chunk in cp:
                out += chunk
        assert out.count(b"\n") == 20000 and out.startswith(b"0\trow 0\n")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with c.cursor().copy("COPY big FROM STDIN") as cp:
                cp.write(b"x\ty\n")
        c.execute("LISTEN ch")
        with psycopg.connect(pg.dsn, autocommit=True) as other:
            other.execute("NOTIFY ch, 'hello'")
        gen = c.notifies(timeout=5, stop_after=1)
        assert [(n.channel, n.payload) for n in gen] == [("ch", "hello")]
    assert [(r.direction, r.count, r.error is not None) for r in pg.copies] == [
        ("in", 20000, False), ("out", 20000, False), ("in", 0, True)]


def test_declared_tables_and_users_are_in_the_engine(engine):
    pg = FakePostgres(backend=engine, users={"alice": "secret"})
    pg.table("public.products", {"id": "int4", "name": "text", "price": "numeric(10,2)"}, key=["id"],
             rows=[[1, "Widget", "9.99"], [2, "Gadget", "19.50"]])
    with pg:
        with psycopg.connect(pg.url(user="alice", password="secret")) as c:
            assert c.execute("SELECT current_user").fetchone() == ("alice",)
            rows = c.execute("SELECT id, name, price::text FROM products ORDER BY id").fetchall()
            assert rows == [(1, "Widget", "9.99"), (2, "Gadget", "19.50")]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(pg.url(user="alice", password="wrong"))  # fakepm checks the password


def test_another_database_is_the_engines(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE DATABASE fakepm_test_other")
    try:
        with psycopg.connect(pg.url(database="fakepm_test_other")) as c:
            assert c.execute("SELECT current_database()").fetchone() == ("fakepm_test_other",)
        with pytest.raises(psycopg.OperationalError, match="does not exist"):
            psycopg.connect(pg.url(database="fakepm_no_such_database"))
    finally:
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.execute("DROP DATABASE fakepm_test_other WITH (FORCE)")


def test_handler_runs_beside_the_engine_and_expectations_hold(pg):
    seen = []

    @pg.handler("SELECT slow($1)", columns={"x": "int4"}, expect=2)
    def slow(query):
        seen.append(query.params[0])
        return [[query.params[0] * 2]]

    with psycopg.connect(pg.dsn) as c:
        assert c.execute("SELECT slow(%s)", [3]).fetchone() == (6,)
        assert c.execute("SELECT %s::int", [5]).fetchone() == (5,)
    with pytest.raises(AssertionError, match="expected 2 call"):
        pg.verify()
    assert seen == [3]


def test_fault_closes_the_connection_and_the_engine_rolls_back(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int)")
    pg.fault(close=True, query="SELECT 'boom'")
    c = psycopg.connect(pg.dsn)
    c.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(psycopg.OperationalError):
        c.execute("SELECT 'boom'")
    c.close()
    deadline = time.monotonic() + 5
    with psycopg.connect(_direct(pg)) as d:
        while d.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_stop_drops_the_database(engine):
    with FakePostgres(backend=engine) as pg:
        name = pg.backend.database
        with psycopg.connect(pg.dsn) as c:
            c.execute("SELECT 1")
    url = engine.upstream_url("postgres", "postgres")
    deadline = time.monotonic() + 10
    with psycopg.connect(f"host={url.host} port={url.port} user=postgres dbname=postgres") as d:
        while d.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name]).fetchone()[0]:
            assert time.monotonic() < deadline, f"database {name} still exists"
            time.sleep(0.05)


def test_engine_refusal_reaches_the_client(pg):
    with pytest.raises(psycopg.OperationalError, match='role "nobody_here" does not exist'):
        psycopg.connect(pg.url(user="nobody_here"))
    assert not threading.current_thread().daemon  # the server thread is unharmed: a new client works
    with psycopg.connect(pg.dsn) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_pgerror_from_the_engine_keeps_every_field(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE u (id int PRIMARY KEY)")
        c.execute("INSERT INTO u VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation) as ei:
            c.execute("INSERT INTO u VALUES (1)")
    diag = ei.value.diag
    assert (diag.constraint_name, diag.table_name, diag.schema_name) == ("u_pkey", "u", "public")
    assert diag.message_detail == "Key (id)=(1) already exists."
    assert isinstance(PgError, type)


psycopg2 = pytest.importorskip("psycopg2")


def _logical_stream(pg, slot, n_messages, timeout=10.0):
    import psycopg2.extras

    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = conn.cursor()
    cur.start_replication(slot_name=slot, decode=False, options={"proto_version": "1", "publication_names": "p"})
    got, error = [], None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(got) < n_messages:
            msg = cur.read_message()
            if msg is None:
                time.sleep(0.02)
                continue
            got.append(bytes(msg.payload[:1]).decode())
            msg.cursor.send_feedback(flush_lsn=msg.data_start)
    except psycopg2.Error as e:
        error = e
    finally:
        conn.close()
    return got, error


def _publish(pg, slot):
    """A table, a publication and a slot (slots are cluster-wide: each test names its own)."""
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE r (id int PRIMARY KEY, v text)")
        c.execute("CREATE PUBLICATION p FOR TABLE r")
        c.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [slot])
        c.execute("INSERT INTO r VALUES (1, 'a'), (2, 'b')")
        c.execute("INSERT INTO r VALUES (3, 'c')")


def test_logical_replication_of_what_clients_wrote_through_fakepm(pg):
    _publish(pg, "relay_plain")
    got, error = _logical_stream(pg, "relay_plain", 8)
    assert error is None
    assert got == ["B", "R", "I", "I", "C", "B", "I", "C"]  # Begin, Relation, Insert x2, Commit, ...
    assert pg.copies[-1].direction == "both"


def test_replication_stream_faults_apply_to_the_engines_stream(pg):
    pg.fault(fatal="57P01", at="replication", after_rows=3)
    _publish(pg, "relay_fault")
    got, error = _logical_stream(pg, "relay_fault", 8)
    assert got == ["B", "R", "I"]
    assert isinstance(error, psycopg2.errors.AdminShutdown)


def test_the_declared_dsn_user_owns_the_database_and_can_migrate(engine):
    with FakePostgres(backend=engine, users={"app": "pw"}) as pg:
        assert pg.user == "app"
        with psycopg.connect(pg.url(password="pw"), autocommit=True) as c:
            c.execute("CREATE TABLE made_by_app (id int)")  # public schema: owned by the database owner
            assert c.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_app'").fetchone() == ("app",)
            assert c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)


def test_notifications_from_rules_and_pg_notify_reach_engine_listeners(pg):
    pg.on("SELECT 'order placed'").reply(columns={"x": "text"}, rows=[["ok"]], notify=[("orders", "42")])
    with psycopg.connect(pg.dsn, autocommit=True) as listener, psycopg.connect(pg.dsn) as app:
        listener.execute("LISTEN orders")
        assert app.execute("SELECT 'order placed'").fetchone() == ("ok",)
        app.commit()  # delivered at the commit of the app's transaction, as NOTIFY is
        pg.notify("orders", "from the test")
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=5, stop_after=2)]
    assert got == [("orders", "42"), ("orders", "from the test")]


def test_tls_clients_in_backend_mode(engine):
    with FakePostgres(backend=engine, tls=True, users={"app": {"password": "pw", "auth": "scram-sha-256"}}) as pg:
        with psycopg.connect(pg.url(password="pw")) as c:
            assert c.info.pgconn.ssl_in_use
            assert c.execute("SELECT current_user, 6 * 7").fetchone() == ("app", 42)


def test_journaling_an_engine_statement_does_not_decode_its_parameters():
    """The relay keeps the Bind it saw; parameters are decoded only when a test reads them."""
    from fakepm.protocol import messages as m
    from fakepm.proxy.backend import EngineEntry
    from fakepm.session.hub import Journal

    bind = m.Bind("", "s1", (0,), (b"42",), ()).encode()[5:]
    e = EngineEntry("SELECT $1::int", [], "extended", 1, 1, "u", "d", "engine", True, None, None, "s1", 0.0)
    e._source = (bind, (23,))
    journal = Journal()
    journal.record(e)
    assert e._source is not None and e.params_size == len(bind)
    assert journal.queries[-1].params == [42] and e._source is None


def test_recording_in_backend_mode_replays_in_pure_mode(engine, tmp_path):
    """The recorder is a hook on the one relay: record a managed engine's answers, replay them
    without any PostgreSQL."""
    from fakepm.proxy import Recorder

    out = tmp_path / "recorded.yaml"
    rec = Recorder(out)
    with FakePostgres(backend=engine, hooks=[rec]) as pg:
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            c.execute("INSERT INTO t VALUES (1, 'ada'), (2, 'bob')")
            live = c.execute("SELECT id, name FROM t WHERE id = %s", [2]).fetchall()
    rec.save()
    with FakePostgres(scenario=out) as replay:  # no PostgreSQL: the recording is the engine
        assert type(replay.backend.engine).__name__ == "ReplayEngine"
        with psycopg.connect(replay.dsn, autocommit=True) as c:
            assert c.execute("SELECT id, name FROM t WHERE id = %s", [2]).fetchall() == live == [(2, "bob")]


def test_protocol_32_clients_get_the_engines_long_cancel_key(engine):
    """libpq 18 asking for 3.2 through backend mode on a PostgreSQL 18 engine: the engine's own
    BackendKeyData (a 32-byte key) reaches the client, and cancel with it works."""
    if not str(engine.version).startswith(("18", "19", "2")):
        pytest.skip(f"the engine is PostgreSQL {engine.version}: 3.2 needs 18+")
    if psycopg.pq.version() < 180000:
        pytest.skip("libpq older than 18 cannot ask for protocol 3.2")
    with FakePostgres(backend=engine) as pg:
        with psycopg.connect(pg.dsn + "?max_protocol_version=3.2", autocommit=True) as c:
            assert c.pgconn.protocol_version == 3 and c.info.pgconn.full_protocol_version == 30002
            pid = c.info.backend_pid
            assert c.execute("SELECT pg_backend_pid()").fetchone() == (pid,)
            keys = pg._call(lambda: [s.secret for s in pg.hub.sessions.values()])
            assert [len(k) for k in keys] == [32]  # the engine's own key, as PostgreSQL 18 makes it
            t0 = time.monotonic()
            threading.Timer(0.3, c.cancel_safe).start()
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT pg_sleep(10)")
            assert time.monotonic() - t0 < 5
