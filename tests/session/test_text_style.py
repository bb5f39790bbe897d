"""Session settings change text output in pure mode as in PostgreSQL 15: DateStyle (ISO, SQL, Postgres,
German; MDY/DMY), TimeZone (timestamptz shown in the session's zone), IntervalStyle (postgres,
sql_standard, iso_8601, postgres_verbose), extra_float_digits <= 0, bytea_output = escape -- for
a rule's static rows and for a handler's streamed rows alike."""

from __future__ import annotations

import re

import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.answers.result import Column, Result
from fakepm.protocol.types import REGISTRY

pytestmark = pytest.mark.realpg

SETS = ["SET DateStyle = 'German'", "SET DateStyle = 'SQL, DMY'", "SET DateStyle = 'SQL, MDY'",
        "SET DateStyle = 'Postgres, MDY'", "SET DateStyle = 'Postgres, DMY'", "SET DateStyle = 'ISO, DMY'",
        "SET DateStyle = 'DMY'", "SET TimeZone = 'Asia/Kolkata'", "SET TimeZone = 'America/New_York'",
        "SET IntervalStyle = 'sql_standard'", "SET IntervalStyle = 'iso_8601'", "SET IntervalStyle = 'postgres_verbose'",
        "SET extra_float_digits = 0", "SET extra_float_digits = -3", "SET bytea_output = 'escape'"]
VALUES = [("date", "2000-01-02"), ("date", "infinity"), ("timestamp", "2000-01-02 03:04:05.25"),
          ("timestamptz", "2000-07-02 03:04:05+00"), ("timestamptz", "2000-01-02 03:04:05.5+00"),
          ("interval", "1 year 2 mons 3 days 04:05:06.5"), ("interval", "-1 year -2 mons"),
          ("interval", "3 days -04:00:00"), ("interval", "0"), ("interval", "-00:00:01"), ("interval", "1 day"),
          ("interval", "-3 days"), ("float8", "0.1"), ("float8", "1e300"), ("float4", "1.1"), ("float8", "NaN"),
          ("bytea", "\\x00ff5c41"), ("int4", "7")]


def _texts(dsn: str) -> list:
    out = []
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in SETS:
            c.execute("RESET ALL")
            c.execute(s)
            out.append(("show", s, c.execute("SHOW DateStyle").fetchone()[0]))
            for t, v in VALUES:
                cur = c.cursor()
                cur.execute(f"select %s::{t}", [v])
                out.append((s, t, v, cur.pgresult.get_value(0, 0)))
                cur.execute(f"select '{v}'::{t} AS static")
                out.append((s, t, v, "static", cur.pgresult.get_value(0, 0)))
    return out


def test_text_output_follows_the_session_settings_as_postgresql(real_pg):
    real = _texts(real_pg.dsn)
    with FakePostgres() as pg:
        for t, v in VALUES:  # static rows (a rule's answer, cached per text style)
            typ = REGISTRY.by_name(t)
            pg.on(f"select '{v}'::{t} AS static").reply(columns={"static": t}, rows=[[typ.decode_text(v.encode())]])

        @pg.handler(regex=r"^select \$1::(\w+)$", columns=None)
        def typed(q):  # streamed rows (a handler's answer)
            typ = REGISTRY.by_name(re.search(r"::(\w+)", q.sql).group(1))
            if not q.params or q.params[0] is None:  # Describe of the statement: nothing bound yet
                return Result(columns=(Column("v", typ),), rows=[])
            return Result(columns=(Column("v", typ),), rows=[(typ.coerce(q.params[0]),)])

        fake = _texts(pg.dsn)
    assert [(a, b) for a, b in zip(real, fake) if a != b][:5] == []  # the first differences, if any
    assert fake == real
