"""pg8000 against fakepm over TCP, native and DB-API.

pg8000 uses the extended protocol in three round trips (Parse+Describe+Sync, then
Bind/Execute+Sync): the unnamed statement must survive Sync, OID-0 parameters get inferred
types, and its DB-API autocommit=False mode decides BEGIN from the ReadyForQuery status.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pg8000.dbapi
import pg8000.native
import pytest

USERS = "SELECT id, name FROM users WHERE id = $1"


def native(pg, **kw):
    return pg8000.native.Connection("postgres", host=pg.host, port=pg.port, database="postgres", timeout=10, **kw)


def dbapi(pg):
    return pg8000.dbapi.connect("postgres", host=pg.host, port=pg.port, database="postgres", timeout=10)


def users_rule(pg, **kw):
    return pg.on(USERS, **kw).reply(columns={"id": "int4", "name": "text"}, rows=[[7, "ada"]])


def test_native_run_with_named_params(fakepm):
    users_rule(fakepm, params=[7])
    c = native(fakepm)
    try:
        assert c.run("SELECT id, name FROM users WHERE id = :id", id=7) == [[7, "ada"]]
        assert [col["name"] for col in c.columns] == ["id", "name"]
        assert c.run("SELECT 1") == [[1]]
    finally:
        c.close()
    assert [q.params for q in fakepm.queries if "users" in q.sql] == [[7]]


def test_native_prepared_statement(fakepm):
    users_rule(fakepm)
    c = native(fakepm)
    try:
        ps = c.prepare("SELECT id, name FROM users WHERE id = :id")
        assert [ps.run(id=i) for i in (1, 2)] == [[[7, "ada"]], [[7, "ada"]]]
        ps.close()
    finally:
        c.close()


def test_native_error_then_recovery(fakepm):
    fakepm.on("SELECT * FROM secret").error("42501", "permission denied for table secret")
    c = native(fakepm)
    try:
        with pytest.raises(pg8000.native.DatabaseError) as info:
            c.run("SELECT * FROM secret")
        err = info.value.args[0]
        assert err["C"] == "42501" and err["M"] == "permission denied for table secret"
        assert c.run("SELECT 2") == [[2]]
    finally:
        c.close()


def test_native_transaction_statements(fakepm):
    users_rule(fakepm)
    c = native(fakepm)
    try:
        c.run("BEGIN")
        c.run("BEGIN")
        notices = list(c.notices)
        c.run("SELECT id, name FROM users WHERE id = 1")
        c.run("SAVEPOINT sp")
        c.run("ROLLBACK TO SAVEPOINT sp")
        c.run("COMMIT")
    finally:
        c.close()
    assert [(n[b"S"], n[b"C"], n[b"M"]) for n in notices] == [
        (b"WARNING", b"25001", b"there is already a transaction in progress")]


def test_dbapi_insert_commit_rollback(fakepm):
    rule = fakepm.on("INSERT INTO items (name, qty) VALUES ($1, $2)", params=["pen", 3], expect=2).reply()
    c = dbapi(fakepm)
    try:
        cur = c.cursor()
        cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("pen", 3))
        assert cur.rowcount == 1
        c.commit()
        cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("pen", 3))
        c.rollback()
    finally:
        c.close()
    assert rule.calls == 2
    sent = [q.sql for q in fakepm.queries]
    assert sent == ["begin transaction", sent[1], "commit", "begin transaction", sent[1], "rollback"]


def test_dbapi_failed_transaction_then_recovery(fakepm):
    fakepm.on("SELECT boom").error("22012", "division by zero")
    users_rule(fakepm)
    c = dbapi(fakepm)
    try:
        cur = c.cursor()
        with pytest.raises(pg8000.dbapi.DatabaseError) as info:
            cur.execute("SELECT boom")
        assert info.value.args[0]["C"] == "22012"
        with pytest.raises(pg8000.dbapi.DatabaseError) as info:
            cur.execute("SELECT id, name FROM users WHERE id = %s", (1,))
        assert info.value.args[0]["C"] == "25P02"
        c.rollback()
        cur.execute("SELECT id, name FROM users WHERE id = %s", (1,))
        assert [list(r) for r in cur.fetchall()] == [[7, "ada"]]
    finally:
        c.close()


def test_dbapi_executemany(fakepm):
    # pg8000 sends parameters untyped (OID 0): param_types makes the server announce int4
    rule = fakepm.on("INSERT INTO t (a) VALUES ($1)", param_types=["int4"]).reply()
    c = dbapi(fakepm)
    try:
        c.cursor().executemany("INSERT INTO t (a) VALUES (%s)", [(1,), (2,), (3,)])
        c.commit()
    finally:
        c.close()
    assert rule.calls == 3 and [q.params for q in fakepm.queries if q.sql.startswith("INSERT")] == [[1], [2], [3]]


def test_listen_notify(fakepm):
    listener, sender = native(fakepm), native(fakepm)
    try:
        listener.run("LISTEN jobs")
        sender.run("NOTIFY jobs, 'one'")
        fakepm.notify("jobs", "two")
        time.sleep(0.2)  # let the notification reach the socket; pg8000 reads it with the next reply
        listener.run("SELECT 1")
        got = [(ch, payload) for _pid, ch, payload in listener.notifications]
        assert got == [("jobs", "one"), ("jobs", "two")]
    finally:
        listener.close()
        sender.close()


def test_self_notify(fakepm):
    c = native(fakepm)
    try:
        c.run("LISTEN me")
        c.run("NOTIFY me, 'hi'")
        assert [(ch, p) for _pid, ch, p in c.notifications] == [("me", "hi")]
    finally:
        c.close()


def test_cancel_of_a_delayed_query(fakepm):
    fakepm.on("SELECT slow()").reply(columns={"x": "int4"}, rows=[[1]], delay=5)
    c = native(fakepm)
    # pg8000 has no cancel API: send the CancelRequest (the BackendKeyData it kept) ourselves
    pid, key = struct.unpack("!ii", c._backend_key_data)

    def cancel():
        with socket.create_connection((fakepm.host, fakepm.port), timeout=5) as s:
            s.sendall(struct.pack("!iiii", 16, 80877102, pid, key))
            s.recv(1)  # the server closes the socket once it has the request

    timer = threading.Timer(0.2, cancel)
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(pg8000.native.DatabaseError) as info:
            c.run("SELECT slow()")
        assert time.monotonic() - started < 4
        assert info.value.args[0]["C"] == "57014"
        assert info.value.args[0]["M"] == "canceling statement due to user request"
        assert c.run("SELECT 1") == [[1]]
    finally:
        timer.join()
        c.close()


def test_unmatched_query(fakepm):
    c = native(fakepm)
    try:
        with pytest.raises(pg8000.native.DatabaseError) as info:
            c.run("SELECT * FROM nowhere WHERE id = :id", id="3")
        assert info.value.args[0]["C"] == "FP000"
    finally:
        c.close()
    assert [(q.sql, q.params) for q in fakepm.unmatched] == [("SELECT * FROM nowhere WHERE id = $1", ["3"])]
    fakepm.reset()


def test_set_show_parameter_status(fakepm):
    c = native(fakepm)
    try:
        c.run("SET application_name TO 'p8'")
        assert c.parameter_statuses.get("application_name") == "p8"
        assert c.run("SHOW application_name") == [["p8"]]
    finally:
        c.close()
