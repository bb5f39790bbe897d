"""Every registered type of the core, read by every Python driver, in text and binary.

One rule answers one wide row (each type, then a 1-D array of it with a NULL element).
Each driver reads it from fakepm and the same values from a real PostgreSQL (each oracle in
turn: PostgreSQL 15 and 18, fakepm announcing that server's version; psycopg 3's libpq 18 asks
for protocol 3.2, which 18 grants), running the equivalent SQL literals: the two must be equal,
and equal to what the rule declared. Formats: psycopg text and binary, psycopg2 text, asyncpg
binary (always), pg8000 text. With no PostgreSQL installed only the declared values are checked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import uuid
from decimal import Decimal

import asyncpg
import pg8000.native
import psycopg
import psycopg2
import psycopg2.extras
import pytest

from fakepm import FakePostgres

TZ = dt.timezone
# (column, type, natural value given to the rule, the same value as a PostgreSQL literal)
SCALARS = [
    ("bool", "bool", True, "true"),
    ("int2", "int2", -32768, "(-32768)::int2"),
    ("int4", "int4", 2147483647, "2147483647::int4"),
    ("int8", "int8", -9223372036854775808, "(-9223372036854775808)::int8"),
    ("oid", "oid", 4294967295, "4294967295::oid"),
    ("float4", "float4", 1.5, "1.5::float4"),
    ("float8", "float8", 3.141592653589793, "3.141592653589793::float8"),
    ("numeric", "numeric", Decimal("-12345.678900"), "(-12345.678900)::numeric"),
    ("text", "text", "héllo, 'wörld' \"q\" {x} \\", "E'héllo, ''wörld'' \"q\" {x} \\\\'::text"),
    ("varchar", "varchar", "v a r", "'v a r'::varchar"),
    ("bpchar", "bpchar", "abc", "'abc'::bpchar"),
    ("name", "name", "pg_name", "'pg_name'::name"),
    ("char", '"char"', "x", "'x'::\"char\""),
    ("bytea", "bytea", b"\x00\x01\xfe\xff", "'\\x0001feff'::bytea"),
    ("date", "date", dt.date(2024, 2, 29), "'2024-02-29'::date"),
    ("time", "time", dt.time(13, 14, 15, 123456), "'13:14:15.123456'::time"),
    ("timetz", "timetz", dt.time(1, 2, 3, tzinfo=TZ(dt.timedelta(hours=5, minutes=30))),
     "'01:02:03+05:30'::timetz"),
    ("timestamp", "timestamp", dt.datetime(2024, 1, 2, 3, 4, 5, 6), "'2024-01-02 03:04:05.000006'::timestamp"),
    ("timestamptz", "timestamptz", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=TZ(dt.timedelta(hours=2))),
     "'2024-01-02 03:04:05+02'::timestamptz"),
    ("interval", "interval", dt.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=7),
     "'3 days 04:05:06.000007'::interval"),
    ("uuid", "uuid", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
     "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid"),
    ("json", "json", {"a": [1, 2, {"b": None}]}, "'{\"a\": [1, 2, {\"b\": null}]}'::json"),
    ("jsonb", "jsonb", {"k": "v", "n": 1.5}, "'{\"k\": \"v\", \"n\": 1.5}'::jsonb"),
    ("inet", "inet", ipaddress.ip_interface("192.168.1.5/24"), "'192.168.1.5/24'::inet"),
    ("cidr", "cidr", ipaddress.ip_network("10.0.0.0/8"), "'10.0.0.0/8'::cidr"),
]
COLUMNS = {name: t for name, t, _, _ in SCALARS} | {f"{name}_arr": f"{t}[]" for name, t, _, _ in SCALARS}
VALUES = [v for _, _, v, _ in SCALARS] + [[v, None] for _, _, v, _ in SCALARS]
SQL = "SELECT * FROM all_types"
REAL_SQL = "SELECT " + ", ".join(
    [f"{lit} AS {name}" for name, _, _, lit in SCALARS]
    + [f"ARRAY[{lit}, NULL]::{t}[] AS {name}_arr" for name, t, _, lit in SCALARS]
)
JSON_COLUMNS = {"json", "jsonb", "json_arr", "jsonb_arr"}


def _norm(v):
    """Driver values -> comparable values (drivers differ in container types, not meaning)."""
    if isinstance(v, (memoryview, bytearray)):
        return bytes(v)
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, uuid.UUID) or type(v).__name__ == "UUID":
        return str(v)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return f"{v}/{v.max_prefixlen}"
    if isinstance(v, (ipaddress.IPv4Interface, ipaddress.IPv6Interface, ipaddress.IPv4Network,
                      ipaddress.IPv6Network)):
        return str(v)
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(TZ.utc)
    if isinstance(v, dt.time) and v.tzinfo is not None:
        return (v.replace(tzinfo=None), v.utcoffset())
    return v


DECLARED = [_norm(v) for v in VALUES]


def _json(v):
    if isinstance(v, list):
        return [_json(x) for x in v]
    return json.loads(v) if isinstance(v, str) else v


def _check(got: list, real: list | None, *, json_text=False, driver_differs=()):
    """Compare a row read from fakepm with the declared values and (if any) the real server's row.

    `driver_differs`: columns the driver itself returns in another form than the declared
    value (a str, bytes, a network for an interface); those are compared with PostgreSQL only.
    """
    names = list(COLUMNS)
    assert len(got) == len(names)
    problems = []
    for i, name in enumerate(names):
        value, real_value = got[i], real[i] if real is not None else None
        if json_text and name in JSON_COLUMNS:  # json text: the spacing is not part of the value
            value, real_value = _json(value), _json(real_value)
        if real is not None and value != real_value:
            problems.append(f"{name}: fakepm gave {got[i]!r}, PostgreSQL gave {real[i]!r}")
        elif name not in driver_differs and _norm(value) != DECLARED[i]:
            problems.append(f"{name}: got {value!r}, the rule declared {VALUES[i]!r}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module", params=["15", "18"], ids=["pg15", "pg18"])
def oracle(request):
    """Each real server, when installed (otherwise only declared values are checked)."""
    from realpg import find_bindir

    if find_bindir(request.param) is None:
        return None
    return request.getfixturevalue("real_pg" if request.param == "15" else "real_pg18")


@pytest.fixture(scope="module")
def pg(oracle):
    """fakepm announcing the oracle's version (server_version as it reports it)."""
    with FakePostgres(version=oracle.server_version if oracle is not None else "18.6") as server:
        server.on(SQL).reply(columns=COLUMNS, rows=[VALUES])
        yield server


def _psycopg_row(dsn, sql, binary):
    # libpq 18 asks for protocol 3.2: PostgreSQL 18 (and a fake announcing 18) grant it, 15 answers 3.0
    with psycopg.connect(dsn + "?max_protocol_version=3.2", autocommit=True) as conn:
        return list(conn.execute(sql, binary=binary).fetchone())


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg3(pg, oracle, binary):
    real = _psycopg_row(oracle.dsn, REAL_SQL, binary) if oracle else None
    _check(_psycopg_row(pg.dsn, SQL, binary), real)


def _psycopg2_row(dsn, sql):
    conn = psycopg2.connect(dsn)
    try:
        psycopg2.extras.register_uuid(conn_or_curs=conn)
        psycopg2.extras.register_ipaddress(conn)
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchone())
    finally:
        conn.close()


def test_psycopg2_text(pg, oracle):
    real = _psycopg2_row(oracle.dsn, REAL_SQL) if oracle else None
    # psycopg2 has no array typecaster for "char"[] / timetz[]: it returns PostgreSQL's text form
    _check(_psycopg2_row(pg.dsn, SQL), real, driver_differs={"char_arr", "timetz_arr"})


def _asyncpg_row(dsn, sql):
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetchrow(sql))
        finally:
            await conn.close()

    return asyncio.run(main())


def test_asyncpg_binary(pg, oracle):
    real = _asyncpg_row(oracle.dsn, REAL_SQL) if oracle else None
    # asyncpg returns "char" as bytes and json as its text
    _check(_asyncpg_row(pg.dsn, SQL), real, json_text=True, driver_differs={"char", "char_arr"})


def _pg8000_row(host, port, sql):
    conn = pg8000.native.Connection("postgres", host=host, port=port, database="postgres")
    try:
        return list(conn.run(sql)[0])
    finally:
        conn.close()


def test_pg8000_text(pg, oracle):
    real = _pg8000_row(oracle.host, oracle.port, REAL_SQL) if oracle else None
    # pg8000 parses timetz and oid[]/"char"[]/timetz[] as text only, and reads inet as a network
    differs = {"timetz", "oid_arr", "char_arr", "timetz_arr", "inet", "inet_arr"}
    _check(_pg8000_row(pg.host, pg.port, SQL), real, driver_differs=differs)


@pytest.mark.parametrize(
    "columns, rows, fragment",
    [
        ({"n": "int4"}, [["abc"]], "column 'n'"),
        ({"n": "int2"}, [[70000]], "column 'n'"),
        ({"d": "date"}, [["not a date"]], "column 'd'"),
        ({"u": "uuid"}, [["xyz"]], "column 'u'"),
        ({"a": "int4[]"}, [[["x"]]], "column 'a'"),
        ({"b": "bool"}, [[1, 2]], "rows[0]"),
    ],
)
def test_value_not_fitting_its_column_type_fails_at_rule_creation(columns, rows, fragment):
    pg = FakePostgres()  # not even started: the check happens when the rule is made
    with pytest.raises(ValueError) as info:
        pg.on("SELECT x").reply(columns=columns, rows=rows)
    assert fragment in str(info.value)


# ---------------------------------------------------------------- every type as a bound parameter
def _param_rules(pg):
    """One rule per type, matched only when the decoded parameter equals the value."""
    for name, t, value, _ in SCALARS:
        pg.on(f"SELECT param_{name}($1::{t})", params=[value]).reply(columns={"ok": "text"}, rows=[[name]])
        pg.on(f"SELECT param_{name}_arr($1::{t}[])", params=[[value, None]]).reply(columns={"ok": "text"},
                                                                                  rows=[[name + "[]"]])


@pytest.fixture
def params_pg():
    with FakePostgres() as server:
        _param_rules(server)
        yield server
        assert not server.unmatched, [(q.sql, q.params) for q in server.unmatched]


def _sent_value(name, value, driver):
    if name == "json" or name == "jsonb":
        if driver == "psycopg":
            from psycopg.types.json import Json, Jsonb

            return (Json if name == "json" else Jsonb)(value)
        if driver == "psycopg2":
            return psycopg2.extras.Json(value)
        return json.dumps(value)
    return value


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_params_psycopg3(params_pg, binary):
    with psycopg.connect(params_pg.dsn, autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        for name, t, value, _ in SCALARS:
            sent = _sent_value(name, value, "psycopg")
            assert cur.execute(f"SELECT param_{name}(%s::{t})", [sent]).fetchone() == (name,), name
            assert cur.execute(f"SELECT param_{name}_arr(%s::{t}[])", [[sent, None]]).fetchone() == (name + "[]",)


def test_params_psycopg2(params_pg):
    conn = psycopg2.connect(params_pg.dsn)
    try:
        psycopg2.extras.register_uuid(conn_or_curs=conn)
        psycopg2.extras.register_ipaddress(conn)
        cur = conn.cursor()
        for name, t, value, _ in SCALARS:
            sent = _sent_value(name, value, "psycopg2")
            cur.execute(f"SELECT param_{name}(%s::{t})", [sent])
            assert cur.fetchone() == (name,), name
            if name == "oid":
                continue  # sqlglot cannot parse `ARRAY[...]::oid[]`: matched as text, so no unification
            cur.execute(f"SELECT param_{name}_arr(%s::{t}[])", [[sent, None]])
            assert cur.fetchone() == (name + "[]",), name
    finally:
        conn.close()


def test_params_asyncpg(params_pg):
    async def main():
        conn = await asyncpg.connect(params_pg.dsn)
        try:
            for name, t, value, _ in SCALARS:
                sent = _sent_value(name, value, "asyncpg")
                assert await conn.fetchval(f"SELECT param_{name}($1::{t})", sent) == name, name
                assert await conn.fetchval(f"SELECT param_{name}_arr($1::{t}[])", [sent, None]) == name + "[]", name
        finally:
            await conn.close()

    asyncio.run(main())


def test_params_pg8000(params_pg):
    conn = pg8000.native.Connection("postgres", host=params_pg.host, port=params_pg.port, database="postgres")
    try:
        for name, t, value, _ in SCALARS:
            sent = _sent_value(name, value, "pg8000")
            assert conn.run(f"SELECT param_{name}(:v::{t})", v=sent) == [[name]], name
            assert conn.run(f"SELECT param_{name}_arr(:v::{t}[])", v=[sent, None]) == [[name + "[]"]], name
    finally:
        conn.close()
