"""Pure-mode answers issue 13 found wrong, each next to PostgreSQL 15: psycopg 3 pipeline mode with
BEGIN/COMMIT, a bound date in arithmetic and cast to text, negating int8's minimum and a large
numeric, U+0085 in text, more than 32,767 parameters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pg8000.native
import psycopg
import pytest

from fakepm import FakePostgres

pytestmark = pytest.mark.realpg


def _outcome(dsn: str, sql: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            cur = c.execute(sql, params)
            return [d.type_code for d in cur.description], cur.fetchall()
        except psycopg.Error as e:
            return e.sqlstate


@pytest.mark.parametrize("sql, params", [
    ("select %s + %s::int", [dt.date(2020, 1, 1), 1]),
    ("select %s - %s::int", [dt.date(2020, 1, 1), 31]),
    ("select - -9223372036854775808", None),
    ("select - -1267650600228229401496703205376", None),
    ("select -9223372036854775808", None),
    ("select %s::text", [dt.date(2020, 1, 2)]),
    ("select %s::text", ["a\u0085b"]),
    ("select 'a\u0085b'", None),
])
def test_constant_selects_answer_as_postgresql(real_pg, sql, params):
    with FakePostgres() as pg:
        assert _outcome(pg.dsn, sql, params) == _outcome(real_pg.dsn, sql, params)


def test_the_numeric_is_exact():
    with FakePostgres() as pg:
        assert _outcome(pg.dsn, "select - -1267650600228229401496703205376")[1] == \
            [(Decimal("1267650600228229401496703205376"),)]


def _pipeline(dsn: str):
    with psycopg.connect(dsn) as c:
        with c.pipeline():
            c.execute("BEGIN")
            one = c.execute("SELECT 1")
            c.execute("COMMIT")
        return one.fetchall(), c.info.transaction_status.name


def test_pipeline_mode_with_begin_and_commit(real_pg):
    with FakePostgres() as pg:
        assert _pipeline(pg.dsn) == _pipeline(real_pg.dsn) == ([(1,)], "IDLE")


def _many(port: int, n: int = 40000):
    con = pg8000.native.Connection("postgres", host="127.0.0.1", port=port)
    try:
        sql = "select 1 where 1 in (" + ",".join(f":p{i}" for i in range(n)) + ")"
        return con.run(sql, **{f"p{i}": i for i in range(n)})
    finally:
        con.close()


def test_more_than_32767_parameters(real_pg):
    with FakePostgres() as pg:
        pg.on(regex=r"^select 1 where 1 in \(\$1,").reply(columns={"?column?": "int4"}, rows=[[1]])
        assert _many(pg.port) == _many(real_pg.port) == [[1]]
