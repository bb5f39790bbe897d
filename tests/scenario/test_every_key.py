"""Every scenario key, through real clients: `fakepm serve all_keys.yaml` (a subprocess) and the
pytest fixture with `@pytest.mark.fakepm(scenario=...)`."""

import asyncio
import datetime as dt
import os
import subprocess
import time
import urllib.parse

import asyncpg
import pg8000.native
import psycopg
import psycopg2
import psycopg2.extensions
import pytest

from serve import HERE, serve

ALL_KEYS = os.path.join(HERE, "all_keys.yaml")


@pytest.fixture(scope="module")
def dsn():
    with serve(ALL_KEYS) as d:
        yield d


def as_user(dsn, user, password=None, **params):
    u = urllib.parse.urlsplit(dsn)
    auth = user + (":" + password if password else "")
    query = urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit((u.scheme, f"{auth}@{u.hostname}:{u.port}", u.path, query, ""))


def test_server_section_version_database_parameters(dsn):
    assert dsn.startswith("postgresql://app@127.0.0.1:") and dsn.endswith("/keys")
    with psycopg.connect(dsn) as c:
        assert c.info.parameter_status("server_version") == "16.4"  # the file's, not the include's 9.6
        assert c.info.parameter_status("TimeZone") == "Europe/Paris"
        assert c.info.parameter_status("DateStyle") == "ISO, DMY"
        assert c.info.parameter_status("standard_conforming_strings") == "on"  # YAML `on` kept as written
        assert c.execute("SHOW lock_timeout").fetchone() == ("5s",)  # from the included file
        assert c.execute("SHOW server_version_num").fetchone() == ("160004",)
        assert c.execute("select version()").fetchone()[0].startswith("PostgreSQL 16.4 on ")
    with pytest.raises(psycopg.OperationalError, match='database "other" does not exist'):
        psycopg.connect(dsn.replace("/keys", "/other"))


@pytest.mark.parametrize("user,password", [("alice", "secret"), ("bob", "builder"), ("carol", "pass"),
                                           ("erin", "hunter2")])
def test_users_authenticate_with_their_method(dsn, user, password):
    with psycopg2.connect(as_user(dsn, user, password)) as c, c.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone() == (user,)
    with pytest.raises(psycopg2.OperationalError, match="authentication failed"):
        psycopg2.connect(as_user(dsn, user, "wrong"))
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(as_user(dsn, "mallory"))


def test_query_params_columns_rows_across_drivers(dsn):
    with psycopg.connect(dsn) as c:  # extended protocol, 1 bound
        assert c.execute("SELECT id, label FROM items WHERE id = %s", [1]).fetchall() == [(1, "one")]
        assert c.execute("SELECT id, label FROM items WHERE id = %s", [2]).fetchall() == []
    c2 = psycopg2.connect(dsn)  # simple protocol, literal 1
    cur = c2.cursor()
    cur.execute("select id, label from items where id = %s", (1,))
    assert cur.fetchall() == [(1, "one")] and cur.statusmessage == "SELECT 1"
    c2.close()

    async def go():
        conn = await asyncpg.connect(dsn)
        try:
            # $1 is typed int4 through the declared table items; $2 of flags through param_types
            assert [tuple(r) for r in await conn.fetch("SELECT id, label FROM items WHERE id = $1", 1)] == [(1, "one")]
            assert await conn.fetchval("SELECT flag FROM flags WHERE name = $1 AND size > $2", "x", 2**40) is True
        finally:
            await conn.close()

    asyncio.run(go())
    u = urllib.parse.urlsplit(dsn)
    n = pg8000.native.Connection(user="app", host=u.hostname, port=u.port, database="keys")
    assert n.run("SELECT id, label FROM items WHERE id = :i", i=1) == [[1, "one"]]
    n.close()


def test_regex_and_tag(dsn):
    with psycopg.connect(dsn) as c:
        cur = c.execute("insert into events (kind) values ('a'), ('b'), ('c')")
        assert cur.statusmessage == "INSERT 0 3" and cur.rowcount == 3


def test_generate_with_faker_is_the_same_for_the_same_seed_in_every_driver(dsn):
    with psycopg.connect(dsn) as c:
        a = c.execute("SELECT id, email, created, ok FROM people").fetchall()
        again = c.execute("SELECT id, email, created, ok FROM people").fetchall()
    c2 = psycopg2.connect(dsn)
    cur = c2.cursor()
    cur.execute("SELECT id, email, created, ok FROM people")
    b = cur.fetchall()
    c2.close()
    assert len(a) == 25 and a == again
    assert [(r[0], r[1], r[2].timestamp(), r[3]) for r in a] == [(r[0], r[1], r[2].timestamp(), r[3]) for r in b]
    assert [r[0] for r in a] == list(range(1, 26))
    assert all("@" in r[1] and 1 <= r[3] <= 6 for r in a)
    # `now:` pins Faker's clock: "this year" is 2024 whatever today is
    assert {r[2].astimezone(dt.timezone.utc).year for r in a} == {2024}


def test_generated_rows_are_identical_across_server_processes(dsn):
    rows = []
    with serve(ALL_KEYS) as other:
        for d in (dsn, other):
            with psycopg.connect(d) as c:
                rows.append(c.execute("SELECT id, email, created, ok FROM people").fetchall())
    assert rows[0] == rows[1]


def test_error_with_detail_and_hint(dsn):
    c2 = psycopg2.connect(dsn)
    cur = c2.cursor()
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as info:
        cur.execute("DELETE FROM items")
    assert info.value.pgcode == "42501"
    assert info.value.diag.message_detail == "items are forever"
    assert info.value.diag.message_hint == "ask the DBA"
    c2.close()


def test_notices_and_notify(dsn):
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn, autocommit=True) as c:
        listener.execute("LISTEN maintenance")
        seen = []
        c.add_notice_handler(lambda d: seen.append((d.severity, d.sqlstate, d.message_primary)))
        c.execute("VACUUM items")
        assert seen == [("WARNING", "01000", "vacuum is pretend"), ("NOTICE", "00000", "just a notice")]
        got = []
        for n in listener.notifies(timeout=5, stop_after=2):
            got.append((n.channel, n.payload))
        assert got == [("maintenance", "vacuumed"), ("maintenance", "")]


def test_delay(dsn):
    with psycopg.connect(dsn) as c:
        t = time.monotonic()
        assert c.execute("SELECT pg_sleep(0.3)").fetchone() == (None,)
        assert time.monotonic() - t >= 0.29  # a lower bound only: the rule's delay is served


def test_user_database_application_name_filters_and_priority(dsn):
    def who(d, **kw):
        with psycopg.connect(d, **kw) as c:
            return c.execute("SELECT whoami()").fetchone()[0]

    assert who(dsn) == "somebody"
    assert who(as_user(dsn, "alice", "secret")) == "alice"
    assert who(dsn, application_name="reporting") == "the reporting app"
    assert who(as_user(dsn, "bob", "builder")) == "bob in keys"  # priority 5; the priority 100 rule wants another db
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT answer()").fetchone() == (10,)


def test_tables_section_feeds_the_catalog(dsn):
    out = subprocess.run(["psql", dsn, "-X", "-At", "-c", r"\dt"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["public|items|table|postgres", "public|orders|table|postgres"]


def test_include_rules_come_after_and_still_answer(dsn):
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT 'included' AS source").fetchone() == ("included",)


def test_server_limits_max_message_size(dsn):
    with psycopg.connect(dsn) as c:  # max_message_size: 1MB -- a 2 MB query is refused, as PostgreSQL would
        with pytest.raises(psycopg.OperationalError, match="invalid message length"):
            c.execute("SELECT 1 /*" + "x" * 2_000_000 + "*/")


# ------------------------------------------------------------------ stateful keys: a fresh server each
@pytest.mark.fakepm(scenario="all_keys.yaml", verify=False)
def test_server_limits_authentication_timeout_and_copy_keep_bytes(fakepm):
    assert fakepm.config.authentication_timeout == 30.0 and fakepm.config.max_message_size == 1 << 20
    fakepm.table("nums", {"n": "int4"})
    with psycopg.connect(fakepm.url(user="app")) as c, c.cursor() as cur:
        with cur.copy("COPY nums FROM STDIN") as cp:
            for i in range(0, 3000, 100):
                cp.write("".join(f"{n}\n" for n in range(i, i + 100)))
    rec = fakepm.copies[-1]
    assert rec.count == 3000 and 0 < len(rec.rows) < 3000 and rec.dropped == 3000 - len(rec.rows)
    assert rec.first_row == (0,) and rec.last_row == (2999,)


@pytest.mark.fakepm(scenario="all_keys.yaml", verify=False)
def test_sequence_successive_answers_last_repeats(fakepm):
    with psycopg.connect(fakepm.url(user="app")) as c:
        assert c.execute("SELECT step FROM jobs WHERE id = %s", [1]).fetchone() == ("queued",)
        with pytest.raises(psycopg.errors.SerializationFailure, match="try again"):
            c.execute("SELECT step FROM jobs WHERE id = %s", [1])
        c.rollback()
        assert c.execute("SELECT step FROM jobs WHERE id = 1").fetchone() == ("done",)
        assert c.execute("SELECT step FROM jobs WHERE id = 1").fetchone() == ("done",)


@pytest.mark.fakepm(scenario="all_keys.yaml", verify=False)
def test_times_then_the_next_rule(fakepm):
    with psycopg.connect(fakepm.url(user="app"), autocommit=True) as c:
        for _ in range(2):
            assert c.execute("UPDATE items SET label = %s WHERE id = %s", ["x", 1]).statusmessage == "UPDATE 1"
        with pytest.raises(psycopg.errors.LockNotAvailable):
            c.execute("UPDATE items SET label = %s WHERE id = %s", ["x", 1])


@pytest.mark.fakepm(scenario="all_keys.yaml", verify=False)
def test_state_global_and_per_connection(fakepm):
    with psycopg.connect(fakepm.url(user="app")) as a, psycopg.connect(fakepm.url(user="app")) as b:
        assert a.execute("SELECT mode()").fetchone() == ("first",)
        assert b.execute("SELECT mode()").fetchone() == ("second",)  # global: b sees a's transition
        assert a.execute("SELECT mode()").fetchone() == ("first",)
        assert a.execute("SELECT session_mode()").fetchone() == ("cold",)
        assert a.execute("SELECT session_mode()").fetchone() == ("warm",)
        assert b.execute("SELECT session_mode()").fetchone() == ("cold",)  # per connection


@pytest.mark.fakepm(scenario="all_keys.yaml", verify=False)
def test_verify_lists_unmet_expectations_and_unmatched_queries(fakepm):
    with psycopg.connect(fakepm.url(user="app")) as c:
        c.execute("UPDATE items SET label = %s WHERE id = %s", ["x", 1])
        with pytest.raises(psycopg.Error, match="no rule matches"):
            c.execute("SELECT id, labels FROM items WHERE id = %s", [1])
    with pytest.raises(AssertionError) as info:
        fakepm.verify()
    text = str(info.value)
    lines = {n for n, line in enumerate(open(ALL_KEYS), 1) if line.startswith("  - query: UPDATE items")}
    first = min(lines)
    assert f"expected 2 call(s), got 1: query 'UPDATE items SET label = $1 WHERE id = $2' (all_keys.yaml:{first})" in text
    assert "expected at least one call, got none: query 'SELECT id FROM orders WHERE id = $1' (all_keys.yaml:" in text
    assert "no rule matched 'SELECT id, labels FROM items WHERE id = $1' params=[1]" in text
    assert "nearest:" in text and "items by id" in text


@pytest.mark.fakepm(scenario="all_keys.yaml")
def test_expectations_met_verify_passes_at_teardown(fakepm):
    with psycopg.connect(fakepm.url(user="app"), autocommit=True) as c:
        for _ in range(2):
            c.execute("UPDATE items SET label = %s WHERE id = %s", ["x", 1])
        c.execute("SELECT id FROM orders WHERE id = %s", [7])
