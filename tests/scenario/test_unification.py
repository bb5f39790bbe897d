"""Literals and placeholders unify across the simple and extended protocols, for every driver."""

import asyncio
import os
import subprocess
import urllib.parse
from decimal import Decimal

import asyncpg
import pg8000.dbapi
import pg8000.native
import psycopg
import psycopg2
import pytest

from serve import HERE, serve


@pytest.fixture(scope="module")
def dsn():
    with serve(os.path.join(HERE, "unify.yaml")) as d:
        yield d


def journal_params(pg, fragment):
    return [(q.protocol, q.params) for q in pg.queries if fragment in q.sql]


def test_psql_simple_query_literal(dsn):
    out = subprocess.run(["psql", dsn, "-X", "-At", "-c", "select name from users where id = 5 and active = true;",
                          "-c", "SELECT price FROM items WHERE label = 'it''s'"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["ada", "9.90"]


def test_psycopg2_interpolates_literals(dsn):
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("SELECT name FROM users WHERE id = %s AND active = %s", (5, True))
        assert cur.fetchall() == [("ada",)]
        cur.execute("SELECT price FROM items WHERE label = %s", ("it's",))
        assert cur.fetchall() == [(Decimal("9.90"),)]
        # the near-miss hint names the rule and the difference
        with pytest.raises(psycopg2.Error, match=r"params differ: rule wants \[5, True\], query has \[6, True\]"):
            cur.execute("SELECT name FROM users WHERE id = %s AND active = %s", (6, True))


def test_psycopg3_binds_parameters(dsn):
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT name FROM users WHERE id = %s AND active = %s", [5, True]).fetchall() == [("ada",)]
        assert c.execute("SELECT name FROM users WHERE id = %s", [7]).fetchall() == [("grace",)]
        assert c.execute("SELECT name FROM users WHERE id = %s", [7], prepare=True).fetchall() == [("grace",)]
        # client-side binding (psycopg.ClientCursor) sends literals over the simple protocol
        cur = psycopg.ClientCursor(c)
        cur.execute("SELECT name FROM users WHERE id = %s AND active = %s", [5, True])
        assert cur.fetchall() == [("ada",)]


def test_asyncpg_and_pg8000(dsn):
    async def go():
        conn = await asyncpg.connect(dsn)
        try:
            a = await conn.fetchval("SELECT name FROM users WHERE id = $1 AND active = $2", 5, True)
            b = await conn.fetchval("SELECT name FROM users WHERE id = 7")
            return a, b
        finally:
            await conn.close()

    assert asyncio.run(go()) == ("ada", "grace")
    u = urllib.parse.urlsplit(dsn)
    c = pg8000.dbapi.connect(user=u.username, host=u.hostname, port=u.port, database=u.path[1:])
    cur = c.cursor()
    cur.execute("SELECT name FROM users WHERE id = %s AND active = %s", (5, True))
    assert cur.fetchall() == (["ada"],) or cur.fetchall() == [["ada"]]
    c.close()


@pytest.mark.fakepm(scenario="unify.yaml")
def test_params_seen_the_same_in_both_protocols(fakepm):
    with psycopg.connect(fakepm.dsn) as c:
        c.execute("SELECT name FROM users WHERE id = %s AND active = %s", [5, True])
        psycopg.ClientCursor(c).execute("SELECT name FROM users WHERE id = %s AND active = %s", [5, True])
    assert journal_params(fakepm, "FROM users WHERE id") == [("extended", [5, True]), ("simple", [5, True])]


@pytest.mark.fakepm(scenario="unify.yaml")
def test_insert_and_update_returning_derive_their_tags(fakepm):
    with psycopg.connect(fakepm.dsn) as c:
        cur = c.execute("INSERT INTO notes (body) VALUES (%s) RETURNING id", ["x"])
        assert (cur.statusmessage, cur.fetchall()) == ("INSERT 0 2", [(11,), (12,)])
        cur = c.execute("UPDATE notes SET body = %s RETURNING id", ["y"])
        assert (cur.statusmessage, cur.rowcount) == ("UPDATE 3", 3)
    with psycopg2.connect(fakepm.dsn) as c2, c2.cursor() as cur:
        cur.execute("INSERT INTO notes (body) VALUES (%s) RETURNING id", ("x",))
        assert cur.statusmessage == "INSERT 0 2"


def test_casts_are_part_of_the_match_and_an_exact_rule_wins():
    """`select $1::int2` is not answered by the rule for `select $1::int` (its answer is typed int4), and
    `select '0001-01-01'::timestamp` gets its own rule even when a looser `select $1` rule comes first."""
    from fakepm import FakePostgres

    with FakePostgres() as pg:
        pg.on("select $1::int").reply(columns=[("int4", "int4")], rows=[[1]])
        pg.on("select $1::int2").reply(columns=[("int2", "int2")], rows=[[2]])
        pg.on("select $1").reply(columns=[("any", "text")], rows=[["loose"]])
        pg.on("select '0001-01-01'::timestamp").reply(columns=[("ts", "timestamp")], rows=[["0001-01-01 00:00:00"]])
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            cur = c.execute("select %s::int2", [0])
            assert (cur.description[0].type_code, cur.fetchall()) == (21, [(2,)])
            cur = c.execute("select %s::int", [0])
            assert (cur.description[0].type_code, cur.fetchall()) == (23, [(1,)])
            cur = psycopg.ClientCursor(c).execute("select '0001-01-01'::timestamp")
            assert cur.description[0].type_code == 1114
            assert str(cur.fetchall()[0][0]) == "0001-01-01 00:00:00"
            assert c.execute("select %s", ["x"]).fetchall() == [("loose",)]


def test_describe_and_execute_of_one_statement_never_disagree():
    """pg8000 and asyncpg decode rows by the statement's Describe: when the bound values pick a rule
    with other column types, the client gets PostgreSQL's 0A000, never rows it would misread."""
    from fakepm import FakePostgres

    with FakePostgres() as pg:
        pg.on("select $1::int4", params=[1]).reply(columns={"a": "int4"}, rows=[[1]])
        pg.on("select $1::int4", params=[2]).reply(columns={"b": "int4[]"}, rows=[[[1, 2, 3]]])
        pg.on("select $1::int4", params=[3]).reply(columns={"c": "int4"}, rows=[[3]])  # same types: fine
        con = pg8000.native.Connection("postgres", host="127.0.0.1", port=pg.port)
        try:
            with pytest.raises(pg8000.native.DatabaseError, match="cached plan must not change result type"):
                con.run("select :v::int4", v=2)
            assert con.run("select :v::int4", v=1) == [[1]]
            assert con.run("select :v::int4", v=3) == [[3]]
        finally:
            con.close()

        async def run():
            c = await asyncpg.connect(pg.dsn)
            try:
                with pytest.raises(asyncpg.exceptions.FeatureNotSupportedError, match="described as \\(a int4\\)"):
                    await c.fetch("select $1::int4", 2)
                return await c.fetch("select $1::int4", 1)
            finally:
                await c.close()

        assert [tuple(r) for r in asyncio.run(run())] == [(1,)]
        with psycopg.connect(pg.dsn) as c:  # Describe of the portal: each answer with its own columns
            assert c.execute("select %s::int4", [2]).fetchall() == [([1, 2, 3],)]
