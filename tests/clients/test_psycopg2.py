"""psycopg2 against fakepm over TCP: client-side interpolation (simple protocol only),
transactions, set_session, errors, execute_batch, named cursors, LISTEN/NOTIFY, cancel."""

from __future__ import annotations

import select
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import pytest

USERS = "SELECT id, name FROM users WHERE id = $1"


@pytest.fixture
def conn(fakepm):
    c = psycopg2.connect(fakepm.dsn, connect_timeout=5)
    yield c
    c.close()


def users_rule(pg, **kw):
    return pg.on(USERS, **kw).reply(columns={"id": "int4", "name": "text"}, rows=[[7, "ada"]])


def test_interpolated_literal_matches_placeholder_rule(fakepm, conn):
    users_rule(fakepm, params=[7])
    cur = conn.cursor()
    cur.execute("SELECT id, name FROM users WHERE id = %s", (7,))
    assert cur.fetchall() == [(7, "ada")]
    (entry,) = [q for q in fakepm.queries if "users" in q.sql]
    assert entry.protocol == "simple" and entry.params == [7] and entry.sql == "SELECT id, name FROM users WHERE id = 7"


def test_parameterized_insert_matched_on_values_and_commit(fakepm, conn):
    import datetime as dt
    from decimal import Decimal

    rule = fakepm.on("INSERT INTO orders (item, qty, price, at) VALUES ($1, $2, $3, $4)",
                     params=["it's", 3, Decimal("9.99"), dt.date(2024, 5, 6)], expect=1).reply()
    cur = conn.cursor()
    cur.execute("INSERT INTO orders (item, qty, price, at) VALUES (%s, %s, %s, %s)",
                ("it's", 3, Decimal("9.99"), dt.date(2024, 5, 6)))
    assert cur.rowcount == 1
    assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
    conn.commit()
    assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert rule.calls == 1 and [q.sql for q in fakepm.queries][-1] == "COMMIT"


def test_rollback(fakepm, conn):
    users_rule(fakepm)
    conn.cursor().execute("SELECT id, name FROM users WHERE id = %s", (1,))
    conn.rollback()
    assert [q.sql for q in fakepm.queries] == ["BEGIN", "SELECT id, name FROM users WHERE id = 1", "ROLLBACK"]


def test_set_session_isolation_read_only(fakepm, conn):
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    cur = conn.cursor()
    cur.execute("SHOW transaction_isolation")
    assert cur.fetchone() == ("repeatable read",)
    conn.commit()
    assert fakepm.queries[0].sql == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def test_error_then_recovery(fakepm, conn):
    fakepm.on("SELECT * FROM locked").error("55P03", "could not obtain lock on relation \"locked\"")
    users_rule(fakepm)
    cur = conn.cursor()
    with pytest.raises(psycopg2.errors.LockNotAvailable) as info:
        cur.execute("SELECT * FROM locked")
    assert info.value.pgcode == "55P03"
    with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
        cur.execute("SELECT id, name FROM users WHERE id = 1")
    conn.rollback()
    cur.execute("SELECT id, name FROM users WHERE id = 1")
    assert cur.fetchone() == (7, "ada")


def test_execute_batch_sends_multi_statement_queries(fakepm, conn):
    rule = fakepm.on("UPDATE items SET qty = $1 WHERE id = $2").reply()
    cur = conn.cursor()
    psycopg2.extras.execute_batch(cur, "UPDATE items SET qty = %s WHERE id = %s", [(i * 10, i) for i in range(7)],
                                  page_size=3)
    conn.commit()
    assert rule.calls == 7
    assert [q.params for q in fakepm.queries if q.sql.startswith("UPDATE")] == [[i * 10, i] for i in range(7)]


def test_execute_values(fakepm, conn):
    fakepm.on("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)", params=[1, "x", 2, "y"]).reply()
    cur = conn.cursor()
    psycopg2.extras.execute_values(cur, "INSERT INTO t (a, b) VALUES %s", [(1, "x"), (2, "y")])
    assert cur.rowcount == 2
    conn.commit()


def test_multi_statement_returns_last_result(conn):
    cur = conn.cursor()
    cur.execute("SELECT 1; SELECT 'two'")
    assert cur.fetchall() == [("two",)]


def test_empty_query_is_an_error_in_psycopg2(conn):
    with pytest.raises(psycopg2.ProgrammingError, match="empty query"):
        conn.cursor().execute("")


def test_named_cursor(fakepm, conn):
    rows = [[i, f"n{i}"] for i in range(10)]
    fakepm.on("SELECT id, name FROM big").reply(columns={"id": "int4", "name": "text"}, rows=rows)
    cur = conn.cursor(name="srv")
    cur.itersize = 4
    cur.execute("SELECT id, name FROM big")
    assert cur.fetchone() == (0, "n0")
    assert cur.fetchmany(3) == [(1, "n1"), (2, "n2"), (3, "n3")]
    assert list(cur) == [tuple(r) for r in rows[4:]]
    cur.close()
    conn.commit()
    sent = [q.sql for q in fakepm.queries]
    assert 'DECLARE "srv" CURSOR WITHOUT HOLD FOR SELECT id, name FROM big' in sent
    assert 'FETCH FORWARD 4 FROM "srv"' in sent and 'CLOSE "srv"' in sent


def test_listen_notify_between_connections(fakepm):
    listener = psycopg2.connect(fakepm.dsn)
    sender = psycopg2.connect(fakepm.dsn)
    try:
        listener.autocommit = sender.autocommit = True
        listener.cursor().execute("LISTEN jobs")
        sender.cursor().execute("NOTIFY jobs, 'one'")
        fakepm.notify("jobs", "two")
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            if select.select([listener], [], [], 0.5)[0]:
                listener.poll()
                while listener.notifies:
                    n = listener.notifies.pop(0)
                    got.append((n.channel, n.payload))
        assert got == [("jobs", "one"), ("jobs", "two")]
    finally:
        listener.close()
        sender.close()


def test_cancel_of_a_delayed_query(served_dsn):
    # psycopg2's conn.cancel() holds the GIL in libpq: the fake must run in another process
    c = psycopg2.connect(served_dsn, connect_timeout=5)
    try:
        timer = threading.Timer(0.2, c.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg2.errors.QueryCanceled) as info:
            c.cursor().execute("SELECT pg_sleep(5)")
        timer.join()
        assert time.monotonic() - started < 4
        assert info.value.pgerror.startswith("ERROR:  canceling statement due to user request")
        c.rollback()
        cur = c.cursor()
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    finally:
        c.close()


def test_unmatched_query(fakepm, conn):
    with pytest.raises(psycopg2.Error) as info:
        conn.cursor().execute("SELECT nothing_here")
    assert info.value.pgcode == "FP000"
    conn.rollback()
    assert [q.sql for q in fakepm.unmatched] == ["SELECT nothing_here"]
    fakepm.reset()


def test_set_reports_parameter_status(conn):
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET application_name TO 'p2'")
    assert conn.get_parameter_status("application_name") == "p2"
    cur.execute("SHOW application_name")
    assert cur.fetchone() == ("p2",)
