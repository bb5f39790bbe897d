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


FAR = [  # (value bound, its type OID): BC, after year 9999, and PostgreSQL's limits
    (b"10000-01-01", 1082), (b"0044-03-15 BC", 1082), (b"4714-11-24 BC", 1082), (b"4714-11-23 BC", 1082),
    (b"5874897-12-31", 1082), (b"5874898-01-01", 1082), (b"0000-01-01", 1082), (b"0001-02-29 BC", 1082),
    (b"0002-02-29 BC", 1082),
    (b"10000-01-01 12:30:00.5", 1114), (b"294276-12-31 23:59:59.999999", 1114), (b"294277-01-01 00:00:00", 1114),
    (b"0001-01-01 00:00:00 BC", 1184), (b"0001-01-01 00:00:00+02 BC", 1184), (b"20000-06-01 00:00:00+02", 1184),
    (b"4714-11-24 00:00:00+00 BC", 1184), (b"12345-01-01 00:00:00-07:30", 1184),
    # within Python's years too: a timestamptz without a zone is local time in the session's TimeZone
    (b"2020-01-01 00:00:00", 1184), (b"2020-07-01 12:00:00", 1184), (b"1800-01-01 00:00:00", 1184),
    (b"2020-01-01 00:00:00+05:30", 1184),
]


def _far_answers(dsn: str, settings: tuple) -> list:
    out = []
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in settings:
            c.execute(s)
        for value, oid in FAR:
            for fmt in (0, 1):  # the value comes back in text, then in binary
                r = c.pgconn.exec_params(b"select $1", [value], [oid], result_format=fmt)
                out.append((value, fmt, r.error_field(ord("C")), r.get_value(0, 0) if r.ntuples else None))
            # as a parameter in binary: what PostgreSQL's binary form of it decodes to
            r = c.pgconn.exec_params(b"select $1", [value], [oid], result_format=1)
            if r.ntuples:
                back = c.pgconn.exec_params(b"select $1::text", [r.get_value(0, 0)], [oid], [1])
                out.append((value, "bin-in", back.error_field(ord("C")), back.get_value(0, 0) if back.ntuples else None))
    return out


@pytest.mark.parametrize("settings", [(), ("SET DateStyle = 'German'",), ("SET DateStyle = 'SQL, DMY'",),
                                      ("SET DateStyle = 'Postgres'", "SET TimeZone = 'America/New_York'"),
                                      ("SET TimeZone = 'Europe/Paris'",), ("SET TimeZone = 'Asia/Kolkata'",)])
def test_bound_dates_bc_and_after_9999_as_postgresql(real_pg, settings):
    """PostgreSQL's dates run from 4714-11-24 BC to 5874897 and its timestamps to 294276: bound in text
    or binary, they are accepted and answered as PostgreSQL answers them (22008 past its limits)."""
    with FakePostgres() as pg:
        assert _far_answers(pg.dsn, settings) == _far_answers(real_pg.dsn, settings)


def _zoned_literals(dsn: str) -> list:
    out = []
    queries = ["select '2020-01-01 00:00:00'::timestamptz", "select timestamptz '2020-07-01 12:00'",
               "select '2020-01-01'::timestamptz::text", "select '0044-03-15 12:00 BC'::timestamptz"]
    with psycopg.connect(dsn, autocommit=True) as c:
        for zone in ("UTC", "America/New_York", "Asia/Kolkata", "UTC"):  # the same texts again, per zone
            c.execute(f"SET TimeZone = '{zone}'")
            out += [c.pgconn.exec_(q.encode()).get_value(0, 0) for q in queries]
    return out


def test_a_timestamptz_literal_without_a_zone_is_local_time_in_the_sessions_zone(real_pg):
    with FakePostgres() as pg:
        assert _zoned_literals(pg.dsn) == _zoned_literals(real_pg.dsn)
