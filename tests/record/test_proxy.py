"""The pass-through proxy against a real PostgreSQL: hooks, auth methods, cancel, replication anonymized."""

from __future__ import annotations

import subprocess
import threading
import time

import psycopg
import pytest

from record_roles import upstream_url
from served import FAKEPM, Served
from fakepm.protocol.errors import PgError
from fakepm.protocol.pgoutput import Delete, Insert, PgoutputDecoder, TextValue, Update
from fakepm.proxy import Anonymize, Proxy, ProxyHooks, answer, pseudonym


@pytest.fixture(scope="module")
def customers(upstream_pg):
    upstream_pg.psql(
        "DROP PUBLICATION IF EXISTS pub_customers; DROP TABLE IF EXISTS customers; "
        "CREATE TABLE customers (id int PRIMARY KEY, email text, name text); "
        "INSERT INTO customers VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@example.com', 'Bob'); "
        "CREATE PUBLICATION pub_customers FOR TABLE customers")
    return upstream_pg


@pytest.mark.parametrize("role", ["rec_scram", "rec_md5", "rec_plain"])
def test_upstream_auth_methods(customers, role):
    with Proxy(upstream_url(customers, role)) as px:
        with psycopg.connect(px.dsn, connect_timeout=10) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
    assert px.errors == []


def test_wrong_upstream_password_is_reported_to_the_client(customers):
    url = f"postgresql://rec_scram:wrong@{customers.host}:{customers.port}/postgres"
    with Proxy(url) as px:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(px.dsn, connect_timeout=10)


def test_clients_authenticate_locally_with_scram(customers):
    with Proxy(upstream_url(customers), users={"app": {"password": "local-pw", "auth": "scram-sha-256"}}) as px:
        with psycopg.connect(px.url("app", "local-pw"), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(px.url("app", "nope"), connect_timeout=10)


class Rewrite(ProxyHooks):
    def __init__(self):
        self.seen = []

    def on_query(self, sql, conn):
        self.seen.append(sql)
        if sql.startswith("SELECT fakepm_local"):
            return answer({"answer": "int4"}, [[42]])
        if sql.startswith("DELETE"):
            return PgError("42501", "deletes are disabled by the proxy")
        return sql.replace("FROM clients", "FROM customers")


def test_hooks_rewrite_answer_locally_and_anonymize_rows(customers):
    hooks = Rewrite()
    with Proxy(upstream_url(customers), hooks=[hooks, Anonymize({"customers.email": pseudonym})]) as px:
        with psycopg.connect(px.dsn, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute("SELECT id, email, name FROM clients WHERE id = %s", [1]).fetchall()
            assert rows == [(1, pseudonym("ada@example.com"), "Ada")]
            binary = conn.cursor(binary=True).execute("SELECT email, name FROM customers ORDER BY id").fetchall()
            assert binary == [(pseudonym("ada@example.com"), "Ada"), (pseudonym("bob@example.com"), "Bob")]
            assert conn.execute("SELECT fakepm_local()", prepare=False).fetchone() == (42,)
            assert conn.execute("SELECT fakepm_local(%s)", [1]).fetchone() == (42,)  # extended protocol
            assert conn.cursor(binary=True).execute("SELECT fakepm_local(%s)", [1]).fetchone() == (42,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="disabled by the proxy"):
                conn.execute("DELETE FROM customers")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="disabled by the proxy"):
                conn.execute("DELETE FROM customers WHERE id = %s", [1])  # extended: skipped until Sync
            assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,)
            with conn.pipeline():  # local answers wait for the upstream replies sent before them
                cur1 = conn.execute("SELECT name FROM customers WHERE id = %s", [2])
                cur2 = conn.execute("SELECT fakepm_local(%s)", [3])
                cur3 = conn.execute("SELECT name FROM customers WHERE id = %s", [1])
            assert (cur1.fetchone(), cur2.fetchone(), cur3.fetchone()) == (("Bob",), (42,), ("Ada",))
    assert any("FROM clients" in s for s in hooks.seen)


def test_cancel_is_forwarded_with_the_upstream_key(customers):
    # `fakepm proxy` in a subprocess: libpq's PQcancel holds the GIL while it waits, so an
    # in-process proxy could never answer it
    px = Served("proxy", "--upstream", upstream_url(customers))
    try:
        with psycopg.connect(px.dsn, connect_timeout=10) as conn:
            timer = threading.Timer(0.5, conn.cancel)
            timer.start()
            try:
                with pytest.raises(psycopg.errors.QueryCanceled):
                    conn.execute("SELECT pg_sleep(20)")
            finally:
                timer.cancel()
            conn.rollback()
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        px.stop()


def test_replication_stream_is_anonymized(customers):
    import psycopg2
    import psycopg2.extras

    customers.psql("SELECT pg_create_logical_replication_slot('anon_slot', 'pgoutput')")
    try:
        hook = Anonymize({"public.customers.email": pseudonym})
        with Proxy(upstream_url(customers), hooks=[hook]) as px:
            customers.psql("ALTER TABLE customers REPLICA IDENTITY FULL; "  # old tuples carry every column
                           "INSERT INTO customers VALUES (3, 'cy@example.com', 'Cy'); "
                           "UPDATE customers SET email = 'ada@new.example' WHERE id = 1; "
                           "DELETE FROM customers WHERE id = 3")
            conn = psycopg2.connect(px.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection,
                                    connect_timeout=10)
            try:
                cur = conn.cursor()
                cur.start_replication(slot_name="anon_slot", decode=False,
                                      options={"proto_version": "1", "publication_names": "pub_customers"})
                decoder = PgoutputDecoder()
                changes = []
                deadline = time.monotonic() + 20
                while len(changes) < 3 and time.monotonic() < deadline:
                    msg = cur.read_message()
                    if msg is None:
                        time.sleep(0.05)
                        continue
                    decoded = decoder.decode(msg.payload)
                    if isinstance(decoded, (Insert, Update, Delete)):
                        changes.append(decoded)
                    msg.cursor.send_feedback(flush_lsn=msg.data_start)
            finally:
                conn.close()
        rel = next(iter(decoder.relations.values()))
        assert [c.name for c in rel.columns] == ["id", "email", "name"]
        def text(tup):
            return [v.data.decode() if isinstance(v, TextValue) else v for v in tup]

        insert, update, delete = changes
        assert text(insert.new) == ["3", pseudonym("cy@example.com"), "Cy"]
        assert text(update.old) == ["1", pseudonym("ada@example.com"), "Ada"]
        assert text(update.new) == ["1", pseudonym("ada@new.example"), "Ada"]
        assert text(delete.old) == ["3", pseudonym("cy@example.com"), "Cy"]
    finally:
        customers.psql("SELECT pg_drop_replication_slot('anon_slot')")


def test_cli_proxy_loads_a_plugin(customers, monkeypatch):
    import os

    monkeypatch.setenv("PYTHONPATH", os.path.dirname(__file__) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    px = Served("proxy", "--upstream", upstream_url(customers), "--plugin", "proxy_plugin_example:hooks")
    try:
        with psycopg.connect(px.dsn, connect_timeout=10) as conn:
            assert conn.execute("SELECT email FROM customers WHERE id = 2").fetchone() == (pseudonym("bob@example.com"),)
    finally:
        px.stop()
    bad = subprocess.run([*FAKEPM, "proxy", "--upstream", upstream_url(customers), "--plugin", "nosuchmodule:x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "cannot import 'nosuchmodule'" in bad.stderr
