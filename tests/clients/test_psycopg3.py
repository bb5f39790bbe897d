"""psycopg 3 against fakepm over TCP: the core server's "done means" for this driver.

Server-side binding (extended protocol), ClientCursor (simple protocol), transactions and
savepoints, errors and recovery, pipeline mode, prepared statements, server-side cursors,
LISTEN/NOTIFY, cancel, Python handlers, the no-rule error, SET/SHOW and ParameterStatus.
"""

from __future__ import annotations

import threading
import time

import psycopg
import psycopg.errors
import pytest
from psycopg import sql as psql

from fakepm import NO_RULE_MATCHED, FakePostgres, PgError

USERS = "SELECT id, name FROM users WHERE id = $1"


@pytest.fixture
def conn(fakepm):
    with psycopg.connect(fakepm.dsn, connect_timeout=5) as c:
        yield c


def users_rule(pg, **kw):
    return pg.on(USERS, **kw).reply(columns={"id": "int4", "name": "text"}, rows=[[7, "ada"]])


# ---------------------------------------------------------------- parameters and matching
def test_server_side_binding_matches_rule_with_params(fakepm, conn):
    users_rule(fakepm, params=[7])
    assert conn.execute("SELECT id, name FROM users WHERE id = %s", [7]).fetchall() == [(7, "ada")]
    (entry,) = [q for q in fakepm.queries if "users" in q.sql]
    assert entry.protocol == "extended" and entry.params == [7]


def test_client_cursor_literal_matches_the_same_placeholder_rule(fakepm, conn):
    users_rule(fakepm, params=[7])
    cur = psycopg.ClientCursor(conn)
    cur.execute("SELECT id, name FROM users WHERE id = %s", [7])
    assert cur.fetchall() == [(7, "ada")]
    (entry,) = [q for q in fakepm.queries if "users" in q.sql]
    assert entry.protocol == "simple" and entry.params == [7]


def test_params_select_the_rule(fakepm, conn):
    fakepm.on(USERS, params=[1]).reply(columns={"id": "int4", "name": "text"}, rows=[[1, "one"]])
    fakepm.on(USERS, params=[2]).reply(columns={"id": "int4", "name": "text"}, rows=[[2, "two"]])
    assert conn.execute("SELECT id, name FROM users WHERE id = %s", [2]).fetchone() == (2, "two")
    assert conn.execute("SELECT id, name FROM users WHERE id = %s", [1]).fetchone() == (1, "one")


def test_parameterized_insert_matched_on_values(fakepm, conn):
    rule = fakepm.on("INSERT INTO items (name, price) VALUES ($1, $2)", params=["pen", 1.5], expect=1).reply()
    cur = conn.execute("INSERT INTO items (name, price) VALUES (%s, %s)", ["pen", 1.5])
    assert cur.rowcount == 1 and cur.statusmessage == "INSERT 0 1"
    conn.commit()
    assert rule.calls == 1


def test_typed_params_are_decoded(fakepm, conn):
    import datetime as dt
    import uuid
    from decimal import Decimal

    from psycopg.types.json import Jsonb

    seen = []

    @fakepm.handler("SELECT echo($1, $2, $3, $4, $5, $6, $7)", columns={"ok": "bool"})
    def echo(query):
        seen.append(query.params)
        return [[True]]

    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    u = uuid.uuid4()
    conn.execute("SELECT echo(%s, %s, %s, %s, %s, %s, %s)",
                 [41, 2**40, Decimal("1.25"), when, u, Jsonb({"a": 1}), [1, 2]]).fetchone()
    assert seen == [[41, 2**40, Decimal("1.25"), when, u, {"a": 1}, [1, 2]]]


# ---------------------------------------------------------------- transactions
def test_commit_and_rollback_follow_ready_for_query_status(fakepm, conn):
    users_rule(fakepm)
    conn.execute("SELECT id, name FROM users WHERE id = %s", [1])
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    conn.commit()
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    conn.execute("SELECT id, name FROM users WHERE id = %s", [1])
    conn.rollback()
    sent = [q.sql for q in fakepm.queries]
    assert sent.count("BEGIN") == 2 and "COMMIT" in sent and "ROLLBACK" in sent


def test_nested_transaction_uses_savepoints(fakepm, conn):
    fakepm.on("INSERT INTO t VALUES ($1)").reply()
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (%s)", [1])
        with pytest.raises(psycopg.errors.UniqueViolation):
            with conn.transaction():
                fakepm.on("INSERT INTO t VALUES ($1)", params=[2]).error("23505", "duplicate key")
                conn.execute("INSERT INTO t VALUES (%s)", [2])
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (%s)", [3])
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    sent = [q.sql for q in fakepm.queries]
    assert sum(1 for q in sent if q.startswith('SAVEPOINT "_pg3_')) == 2
    assert sum(1 for q in sent if q.startswith('ROLLBACK TO "_pg3_')) == 1
    assert sent[-1] == "COMMIT"


def test_nested_begin_warns_25001(fakepm):
    notices = []
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        # a Diagnostic is only readable inside the handler
        c.add_notice_handler(lambda d: notices.append((d.sqlstate, d.severity, d.message_primary)))
        c.execute("BEGIN")
        c.execute("BEGIN")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        c.execute("COMMIT")
    assert notices == [
        ("25001", "WARNING", "there is already a transaction in progress")]


def test_failed_transaction_gives_25p02_until_rollback(fakepm, conn):
    fakepm.on("SELECT boom").error("22012", "division by zero")
    users_rule(fakepm)
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT boom")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("SELECT id, name FROM users WHERE id = %s", [1])
    conn.rollback()
    assert conn.execute("SELECT id, name FROM users WHERE id = %s", [1]).fetchone() == (7, "ada")


def test_read_only_serializable_transaction(fakepm, conn):
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    assert conn.execute("SHOW transaction_isolation").fetchone() == ("serializable",)
    conn.commit()
    assert any(q.sql.startswith("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY") for q in fakepm.queries)


# ---------------------------------------------------------------- errors, batches, empty query
def test_rule_error_then_recovery_in_autocommit(fakepm):
    fakepm.on("DELETE FROM users").error("42501", "permission denied for table users", hint="ask")
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            c.execute("DELETE FROM users")
        assert info.value.sqlstate == "42501"
        assert info.value.diag.message_primary == "permission denied for table users"
        assert info.value.diag.message_hint == "ask"
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_multi_statement_simple_query(conn):
    cur = conn.execute("SELECT 1; SELECT 'two' AS t")
    assert cur.fetchall() == [(1,)]
    assert cur.nextset()
    assert cur.fetchall() == [("two",)]
    assert not cur.nextset()


def test_error_in_multi_statement_stops_the_rest(fakepm):
    fakepm.on("SELECT bad").error("42601", "syntax error")
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("SELECT 1; SELECT bad; SELECT 3")
        assert not any(q.sql == "SELECT 3" for q in fakepm.queries)
        assert c.execute("SELECT 4").fetchone() == (4,)


def test_empty_query(conn):
    cur = conn.execute("")
    assert cur.pgresult.status == psycopg.pq.ExecStatus.EMPTY_QUERY


# ---------------------------------------------------------------- pipeline, executemany, prepared
def test_pipeline_mode(fakepm, conn):
    users_rule(fakepm)
    with conn.pipeline():
        c1 = conn.execute("SELECT id, name FROM users WHERE id = %s", [1])
        c2 = conn.execute("SELECT %s::int4 + 1", [41])
        c3 = conn.execute("SELECT id, name FROM users WHERE id = %s", [2])
    assert c1.fetchone() == (7, "ada") and c2.fetchone() == (42,) and c3.fetchone() == (7, "ada")
    conn.commit()


def test_pipeline_error_skips_to_sync(fakepm, conn):
    fakepm.on("SELECT boom").error("22012", "division by zero")
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.pipeline():
            conn.execute("SELECT 1")
            conn.execute("SELECT boom")
            conn.execute("SELECT 3")
    conn.rollback()
    assert not any(q.sql == "SELECT 3" for q in fakepm.queries)
    assert conn.execute("SELECT 5").fetchone() == (5,)


def test_executemany(fakepm, conn):
    rule = fakepm.on("INSERT INTO t (a, b) VALUES ($1, $2)").reply()
    cur = conn.cursor()
    cur.executemany("INSERT INTO t (a, b) VALUES (%s, %s)", [(i, f"v{i}") for i in range(5)])
    conn.commit()
    assert rule.calls == 5
    assert [q.params for q in fakepm.queries if q.sql.startswith("INSERT")] == [[i, f"v{i}"] for i in range(5)]


def test_executemany_returning(fakepm, conn):
    @fakepm.handler("INSERT INTO t (a) VALUES ($1) RETURNING id", columns={"id": "int8"})
    def insert(query):
        return [[query.params[0] * 10]]

    cur = conn.cursor()
    cur.executemany("INSERT INTO t (a) VALUES (%s) RETURNING id", [(1,), (2,), (3,)], returning=True)
    got = []
    while True:
        got.append(cur.fetchone()[0])
        if not cur.nextset():
            break
    assert got == [10, 20, 30]
    conn.commit()


def test_prepared_statements_after_threshold(fakepm):
    users_rule(fakepm)
    with psycopg.connect(fakepm.dsn, prepare_threshold=2, autocommit=True) as c:
        for i in range(5):
            assert c.execute("SELECT id, name FROM users WHERE id = %s", [i]).fetchone() == (7, "ada")
        c.execute("DEALLOCATE ALL")
        assert c.execute("SELECT id, name FROM users WHERE id = %s", [9]).fetchone() == (7, "ada")
    statements = {q.statement for q in fakepm.queries if "users" in q.sql}
    assert any(s and s.startswith("_pg3_") for s in statements)
    assert [q.params for q in fakepm.queries if "users" in q.sql] == [[i] for i in range(5)] + [[9]]


def test_prepare_true_and_binary(fakepm, conn):
    users_rule(fakepm)
    cur = conn.cursor(binary=True)
    assert cur.execute("SELECT id, name FROM users WHERE id = %s", [3], prepare=True).fetchone() == (7, "ada")
    assert cur.execute("SELECT id, name FROM users WHERE id = %s", [4], prepare=True).fetchone() == (7, "ada")


# ---------------------------------------------------------------- server-side cursors
ROWS = [[i, f"n{i}"] for i in range(1, 8)]


def rows_rule(pg):
    pg.on("SELECT id, name FROM big WHERE id > $1").reply(columns={"id": "int4", "name": "text"}, rows=ROWS)


def test_named_cursor(fakepm, conn):
    rows_rule(fakepm)
    with conn.cursor(name="srv_cur") as cur:
        cur.itersize = 3
        cur.execute("SELECT id, name FROM big WHERE id > %s", [0])
        assert cur.description[0].name == "id"
        assert cur.fetchmany(2) == [tuple(r) for r in ROWS[:2]]
        assert list(cur) == [tuple(r) for r in ROWS[2:]]
    conn.commit()
    assert any(q.sql.startswith('FETCH FORWARD') for q in fakepm.queries)


def test_binary_named_cursor(fakepm, conn):
    # FETCH through the extended protocol: the Bind's binary formats apply to the rows
    rows_rule(fakepm)
    with conn.cursor(name="bin_cur", binary=True) as cur:
        cur.execute("SELECT id, name FROM big WHERE id > %s", [0])
        assert cur.fetchmany(2) == [(1, "n1"), (2, "n2")]
        assert cur.fetchall() == [tuple(r) for r in ROWS[2:]]
    conn.commit()


def test_scrollable_withhold_cursor(fakepm, conn):
    rows_rule(fakepm)
    cur = conn.cursor(name="scroll_cur", scrollable=True, withhold=True)
    cur.execute("SELECT id, name FROM big WHERE id > %s", [0])
    conn.commit()  # WITH HOLD: survives the commit
    assert cur.fetchone() == (1, "n1")
    cur.scroll(4, mode="absolute")
    assert cur.fetchone() == (5, "n5")
    cur.scroll(-3)
    assert cur.fetchone() == (3, "n3")
    cur.scroll(0, mode="absolute")
    assert cur.fetchall() == [tuple(r) for r in ROWS]
    cur.close()
    assert any(q.sql.startswith("MOVE ABSOLUTE") for q in fakepm.queries)
    assert any(q.sql.startswith('CLOSE "scroll_cur"') for q in fakepm.queries)


# ---------------------------------------------------------------- LISTEN / NOTIFY
def test_notify_between_two_connections_and_from_the_test(fakepm):
    with psycopg.connect(fakepm.dsn, autocommit=True) as listener, \
            psycopg.connect(fakepm.dsn, autocommit=True) as sender:
        listener.execute("LISTEN jobs")
        sender.execute("NOTIFY jobs, 'from sender'")
        sender.execute("SELECT pg_notify('jobs', 'via function')")
        assert fakepm.notify("jobs", "from the test") == 1
        got = []
        for n in listener.notifies(timeout=5, stop_after=3):
            got.append((n.channel, n.payload, n.pid))
        sender_pid = sender.info.backend_pid
        assert got == [("jobs", "from sender", sender_pid), ("jobs", "via function", sender_pid),
                       ("jobs", "from the test", 0)]


def test_notify_inside_transaction_is_sent_at_commit(fakepm):
    with psycopg.connect(fakepm.dsn, autocommit=True) as listener, psycopg.connect(fakepm.dsn) as sender:
        listener.execute("LISTEN jobs")
        sender.execute("NOTIFY jobs, 'one'")
        sender.execute("NOTIFY jobs, 'two'")
        assert list(listener.notifies(timeout=0.2)) == []
        sender.commit()
        assert [n.payload for n in listener.notifies(timeout=5, stop_after=2)] == ["one", "two"]


def test_self_notify_arrives_before_ready_for_query(fakepm):
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        got = []
        c.add_notify_handler(got.append)
        c.execute("LISTEN me")
        c.execute("NOTIFY me, 'hi'")
        # the handler already ran while psycopg read the NOTIFY's results
        assert [(n.channel, n.payload) for n in got] == [("me", "hi")]


# ---------------------------------------------------------------- cancel
# psycopg's blocking conn.cancel() holds the GIL while libpq waits for the server to close
# the cancel socket, so it cannot reach a FakePostgres running in the same process:
# in-process we use cancel_safe() (psycopg >= 3.2), and conn.cancel() against `fakepm serve`.
def _cancel_soon(cancel):
    timer = threading.Timer(0.2, cancel)
    timer.start()
    return timer


@pytest.mark.parametrize("how", ["rule-delay", "pg_sleep"])
def test_cancel_of_a_delayed_query(fakepm, how):
    fakepm.on("SELECT slow()").reply(columns={"x": "int4"}, rows=[[1]], delay=5)
    sql = "SELECT slow()" if how == "rule-delay" else "SELECT pg_sleep(5)"
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        timer = _cancel_soon(c.cancel_safe)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            c.execute(sql)
        timer.join()
        assert time.monotonic() - started < 4, "the cancel did not end the delay"
        assert info.value.sqlstate == "57014"
        assert info.value.diag.message_primary == "canceling statement due to user request"
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_blocking_cancel_against_fakepm_serve(served_dsn):
    with psycopg.connect(served_dsn, autocommit=True, connect_timeout=5) as c:
        timer = _cancel_soon(c.cancel)
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(5)")
        timer.join()
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_cancel_with_wrong_key_does_nothing(fakepm):
    import socket
    import struct

    fakepm.on("SELECT slow()").reply(columns={"x": "int4"}, rows=[[1]], delay=0.3)
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        pid = c.info.backend_pid
        with socket.create_connection((fakepm.host, fakepm.port), timeout=5) as s:
            s.sendall(struct.pack("!iiii", 16, 80877102, pid, 12345))
        assert c.execute("SELECT slow()").fetchone() == (1,)


# ---------------------------------------------------------------- Python handlers
def test_handler_receives_decoded_params_and_connection_facts(fakepm):
    seen = []

    @fakepm.handler("SELECT balance FROM accounts WHERE id = $1", columns={"balance": "numeric"})
    def balance(query):
        seen.append(query)
        return [[100 * query.params[0]]]

    with psycopg.connect(fakepm.dsn, application_name="billing") as c:
        assert c.execute("SELECT balance FROM accounts WHERE id = %s", [3]).fetchone()[0] == 300
        pid = c.info.backend_pid
    (q,) = seen
    assert q.params == [3] and q.protocol == "extended" and q.transaction_status == "T"
    assert (q.connection.user, q.connection.database, q.connection.pid) == ("postgres", "postgres", pid)
    assert q.connection.application_name == "billing"


def test_handler_raising_pgerror(fakepm, conn):
    @fakepm.handler("UPDATE accounts SET balance = $1")
    def update(query):
        raise PgError("40001", "could not serialize access due to concurrent update")

    with pytest.raises(psycopg.errors.SerializationFailure):
        conn.execute("UPDATE accounts SET balance = %s", [1])
    conn.rollback()


def test_handler_raising_unexpected_exception_gives_xx000_and_fails_verify():
    with FakePostgres() as pg:
        @pg.handler("SELECT oops")
        def oops(query):
            raise KeyError("missing")

        with psycopg.connect(pg.dsn, autocommit=True) as c:
            with pytest.raises(psycopg.errors.InternalError_) as info:
                c.execute("SELECT oops")
            assert info.value.sqlstate == "XX000"
            assert c.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(AssertionError) as failed:
            pg.verify()
    assert "KeyError" in str(failed.value) and "Traceback" in str(failed.value)


def test_blocking_handler_does_not_stall_other_connections(fakepm):
    release = threading.Event()

    @fakepm.handler("SELECT wait_for_test()", columns={"v": "text"})
    def wait(query):
        release.wait(10)
        return [["released"]]

    box = []

    def blocked():
        with psycopg.connect(fakepm.dsn, autocommit=True) as c:
            box.append(c.execute("SELECT wait_for_test()").fetchone())

    t = threading.Thread(target=blocked)
    t.start()
    try:
        with psycopg.connect(fakepm.dsn, autocommit=True) as other:
            assert other.execute("SELECT 2").fetchone() == (2,)  # served while the handler blocks
        assert box == []
    finally:
        release.set()
        t.join(10)
    assert box == [("released",)]


# ---------------------------------------------------------------- no rule, expectations, reset
def test_unmatched_query_gives_fp000_with_nearest_rules_and_fails_verify():
    with FakePostgres() as pg:
        users_rule(pg)
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            with pytest.raises(psycopg.Error) as info:
                c.execute("SELECT id, name FROM userz WHERE id = %s", [1])
            assert c.execute("SELECT 1").fetchone() == (1,)
        err = info.value
        assert err.sqlstate == NO_RULE_MATCHED == "FP000"
        assert "no rule matches" in err.diag.message_primary
        assert "users" in err.diag.message_hint  # the nearest rule is named
        assert [q.sql for q in pg.unmatched] == ["SELECT id, name FROM userz WHERE id = $1"]
        with pytest.raises(AssertionError, match="userz"):
            pg.verify()


def test_expect_and_times(fakepm, conn):
    once = fakepm.on("SELECT v FROM cfg", times=1).reply(columns={"v": "text"}, rows=[["first"]])
    fakepm.on("SELECT v FROM cfg").reply(columns={"v": "text"}, rows=[["later"]])
    fakepm.on("SELECT never_called", expect=1).reply()
    assert conn.execute("SELECT v FROM cfg").fetchone() == ("first",)
    assert conn.execute("SELECT v FROM cfg").fetchone() == ("later",)
    assert once.calls == 1
    with pytest.raises(AssertionError, match="expected 1 call"):
        fakepm.verify()
    fakepm.reset()  # the unmet expectation was the point: keep teardown's verify() quiet


def test_reset_forgets_rules_and_journal(fakepm, conn):
    users_rule(fakepm)
    conn.execute("SELECT id, name FROM users WHERE id = %s", [1])
    conn.commit()
    fakepm.reset()
    assert fakepm.queries == [] and fakepm.rules.rules == ()
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT id, name FROM users WHERE id = %s", [1])
    assert info.value.sqlstate == "FP000"
    conn.rollback()
    fakepm.reset()  # the unmatched query above must not fail teardown


# ---------------------------------------------------------------- SET / SHOW
def test_set_reports_parameter_status_and_show_returns_it(conn):
    conn.autocommit = True
    conn.execute("SET application_name = 'my app'")
    assert conn.info.parameter_status("application_name") == "my app"
    conn.execute("SET TIME ZONE 'Europe/Paris'")
    assert conn.info.parameter_status("TimeZone") == "Europe/Paris"
    assert conn.execute("SHOW application_name").fetchone() == ("my app",)
    assert conn.execute("SHOW TimeZone").fetchone() == ("Europe/Paris",)
    conn.execute(psql.SQL("SET search_path TO {}").format(psql.Identifier("s1")))
    assert conn.execute("SHOW search_path").fetchone() == ("s1",)
    conn.execute('SET search_path TO "My Schema", public')
    assert conn.execute("SHOW search_path").fetchone() == ('"My Schema", public',)
    conn.execute("RESET application_name")
    assert conn.info.parameter_status("application_name") == ""


def test_connect_probes_need_no_rule(fakepm):
    with psycopg.connect(fakepm.dsn) as c:
        from psycopg.types import TypeInfo

        assert TypeInfo.fetch(c, "hstore") is None
        assert c.execute("SELECT current_database(), current_user").fetchone() == ("postgres", "postgres")
        assert c.execute("SELECT pg_catalog.version()").fetchone()[0].startswith("PostgreSQL ")


def test_settings_follow_the_transaction(fakepm):
    # as PostgreSQL 15: ROLLBACK undoes SET, COMMIT undoes SET LOCAL, both report ParameterStatus
    with psycopg.connect(fakepm.dsn, autocommit=True) as c:
        c.execute("BEGIN")
        c.execute("SET application_name = 'rolled back'")
        assert c.info.parameter_status("application_name") == "rolled back"
        c.execute("ROLLBACK")
        assert c.info.parameter_status("application_name") == ""
        c.execute("BEGIN")
        c.execute("SET LOCAL application_name = 'local'")
        c.execute("SET work_mem = '64MB'")
        c.execute("COMMIT AND CHAIN")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert c.info.parameter_status("application_name") == ""
        assert c.execute("SHOW work_mem").fetchone() == ("64MB",)
        c.execute("COMMIT")
        with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
            c.execute("COMMIT AND CHAIN")


def test_async_connection(fakepm):
    import asyncio

    users_rule(fakepm)
    fakepm.on("SELECT slow()").reply(columns={"x": "int4"}, rows=[[1]], delay=5)

    async def main():
        async with await psycopg.AsyncConnection.connect(fakepm.dsn, autocommit=True) as c:
            cur = await c.execute("SELECT id, name FROM users WHERE id = %s", [1])
            assert await cur.fetchone() == (7, "ada")
            await c.execute("LISTEN jobs")
            fakepm.notify("jobs", "async")
            gen = c.notifies(timeout=5, stop_after=1)
            assert [n.payload async for n in gen] == ["async"]
            task = asyncio.ensure_future(c.execute("SELECT slow()"))
            await asyncio.sleep(0.2)
            await c.cancel_safe()
            with pytest.raises(psycopg.errors.QueryCanceled):
                await task
            assert await (await c.execute("SELECT 1")).fetchone() == (1,)

    asyncio.run(asyncio.wait_for(main(), 20))
