"""Built-in answers without rules: the one-value functions clients call at connect
(pg_is_in_recovery, format_type, pg_backend_pid, txid_current) answered as PostgreSQL 15
answers them, and the shape guard on every built-in answer (exactly the columns asked for,
or FP000). The realpg tests compare with a live PostgreSQL 15."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.answers.builtin import Builtins, sql_format_type
from fakepm.answers.result import ConnectionInfo, Query
from fakepm.answers.selectlist import column_names
from fakepm.protocol.types import REGISTRY
from fakepm.session.config import ServerConfig

PSYCOPG = Path(psycopg.__file__).parent


@pytest.fixture(scope="module")
def pg():
    with FakePostgres() as server:
        yield server


@pytest.fixture(scope="module")
def pg_like(oracle_pg):
    """fakepm announcing the oracle's version (PostgreSQL 15, then 18)."""
    with FakePostgres(version=oracle_pg.server_version) as server:
        yield server


def one(dsn: str, sql: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall(), [(d.name, d.type_code) for d in cur.description]


# -- format_type ----------------------------------------------------------------------------

@pytest.mark.parametrize("oid,typmod,text", [  # PostgreSQL 15's answers
    (23, None, "integer"), (23, 5, "integer"), (1043, 24, "character varying(20)"), (1043, -1, "character varying"),
    (1043, 4, "character varying"), (1042, None, "character"), (1042, -1, "bpchar"), (1042, 5, "character(1)"),
    (1700, 655366, "numeric(10,2)"), (1700, 3, "numeric"), (1700, None, "numeric"),
    (1114, 3, "timestamp(3) without time zone"), (1184, 0, "timestamp(0) with time zone"),
    (1266, 2, "time(2) with time zone"), (1083, -1, "time without time zone"),
    (1186, 2147418115, "interval(3)"), (1186, 470286339, "interval day to second(3)"), (1186, 327679, "interval year"),
    (1015, 24, "character varying(20)[]"), (1231, 655366, "numeric(10,2)[]"), (1007, None, "integer[]"),
    (1115, 3, "timestamp(3) without time zone[]"), (18, None, '"char"'), (1002, 7, '"char"(7)[]'),
    (25, 5, "text(5)"), (19, -1, "name"), (22, 3, "int2vector(3)"), (2287, None, "record[]"), (16, 4, "boolean"),
    (701, None, "double precision"), (0, None, "-"), (0, 5, "-"), (99999, None, "???"),
])
def test_sql_format_type(oid, typmod, text):
    assert sql_format_type(oid, typmod) == text


def test_format_type_through_the_server(pg):
    assert one(pg.dsn, "SELECT format_type(1043, 24)") == ([("character varying(20)",)], [("format_type", 25)])
    assert one(pg.dsn, "SELECT pg_catalog.format_type(1700, 655366) AS t, format_type(NULL, 1), format_type(23, NULL)") \
        == ([("numeric(10,2)", None, "integer")], [("t", 25), ("format_type", 25), ("format_type", 25)])
    # as parameters (psycopg binds them server-side), and as pypgoutput's psycopg2 interpolates them
    assert one(pg.dsn, "SELECT format_type(%s, %s) AS data_type", (1184, 3))[0] == [("timestamp(3) with time zone",)]
    import psycopg2
    import psycopg2.extras

    with psycopg2.connect(pg.dsn) as c2, c2.cursor(cursor_factory=psycopg2.extras.DictCursor) as cur:
        cur.execute(f"SELECT format_type({1015}, {24}) AS data_type")
        assert cur.fetchone()["data_type"] == "character varying(20)[]"
    c2.close()


def test_format_type_bad_input_is_postgresqls_error(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        for sql, code, message in [
            ("SELECT format_type('x', 1)", "22P02", 'invalid input syntax for type oid: "x"'),
            ("SELECT format_type(23, 'y')", "22P02", 'invalid input syntax for type integer: "y"'),
            ("SELECT format_type(1186, 5)", "XX000", "invalid INTERVAL typmod: 0x5"),
        ]:
            with pytest.raises(psycopg.Error) as ei:
                c.execute(sql)
            assert (ei.value.sqlstate, ei.value.diag.message_primary) == (code, message)
        with pytest.raises(psycopg.Error) as ei:  # a PostgreSQL type the registry does not hold: bit
            c.execute("SELECT format_type(1560, 5)")
        assert ei.value.sqlstate == "FP000"


def test_format_type_asyncpg_with_casts(pg):
    asyncpg = pytest.importorskip("asyncpg")

    async def run():
        conn = await asyncpg.connect(pg.dsn)
        try:
            return await conn.fetchval("SELECT format_type($1::oid, $2::int4)", 1043, 24)
        finally:
            await conn.close()

    assert asyncio.run(run()) == "character varying(20)"


_TYPMODS = [None, -1, -5, 0, 1, 3, 4, 5, 6, 8, 20, 24, 1000, 65541, 131071, 327679, 655366, 470286339, 2147418112,
            2147418115, 2147483647]


@pytest.mark.realpg
def test_format_type_like_postgresql_for_every_registered_type(pg_like, oracle_pg):
    """Every OID of the type registry (plus 0 and an unknown one) x typmods: same text, same
    column, same error as PostgreSQL 15 and 18 (18 prints json without a typmod); called with
    parameters, as a pgoutput consumer does."""
    pg, real_pg = pg_like, oracle_pg
    oids = [0, 99999] + sorted(t.oid for t in REGISTRY)
    assert len(oids) > 80
    checked = 0
    with psycopg.connect(pg.dsn, autocommit=True) as fake, psycopg.connect(real_pg.dsn, autocommit=True) as real:
        for oid in oids:
            for typmod in _TYPMODS:
                got = []
                for c in (real, fake):
                    try:
                        cur = c.execute("SELECT pg_catalog.format_type(%s, %s)", (oid, typmod))
                        got.append((cur.fetchall(), [(d.name, d.type_code) for d in cur.description]))
                    except psycopg.Error as e:
                        got.append((e.sqlstate, e.diag.message_primary))
                assert got[1] == got[0], (oid, typmod)
                checked += 1
    assert checked == len(oids) * len(_TYPMODS)


# -- pg_is_in_recovery, pg_backend_pid, txid_current ----------------------------------------

def test_pg_is_in_recovery(pg):
    assert one(pg.dsn, "SELECT pg_catalog.pg_is_in_recovery()") == ([(False,)], [("pg_is_in_recovery", 16)])
    assert one(pg.dsn, "select pg_is_in_recovery() as r") == ([(False,)], [("r", 16)])


def test_pg_backend_pid_is_the_backendkeydata_pid(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c, psycopg.connect(pg.dsn, autocommit=True) as d:
        cur = c.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] == c.info.backend_pid
        assert [(x.name, x.type_code) for x in cur.description] == [("pg_backend_pid", 23)]
        assert d.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()[0] == d.info.backend_pid != c.info.backend_pid


def test_txid_current_stable_in_a_transaction_growing_across(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c, psycopg.connect(pg.dsn, autocommit=True) as other:
        cur = c.execute("SELECT txid_current()")
        assert [(x.name, x.type_code) for x in cur.description] == [("txid_current", 20)]
        a = cur.fetchone()[0]
        b = c.execute("SELECT txid_current()").fetchone()[0]
        assert b > a  # each autocommit statement is a transaction of its own
        with c.transaction():
            t1 = c.execute("SELECT txid_current()").fetchone()[0]
            o = other.execute("SELECT txid_current()").fetchone()[0]  # another session's transaction
            t2 = c.execute("SELECT pg_catalog.txid_current()").fetchone()[0]
        assert t1 == t2 > b and o != t1
        after = c.execute("SELECT txid_current()").fetchone()[0]
        assert after > max(t1, o)


@pytest.mark.realpg
def test_functions_shaped_like_postgresql(pg_like, oracle_pg):
    pg, real_pg = pg_like, oracle_pg
    for sql in ["SELECT pg_catalog.pg_is_in_recovery()", "SELECT pg_backend_pid()", "SELECT txid_current()",
                "SELECT format_type(25, NULL) AS t, pg_catalog.format_type(1043, 24)", "SELECT now()::text",
                "SELECT 1 x, 'a'::varchar AS \"Y\", now()::date, $$z$$, -1::int"]:
        got = one(pg.dsn, sql)[1]
        assert got == one(real_pg.dsn, sql)[1], sql


# -- the shape guard on built-in answers ----------------------------------------------------

def _builtins() -> Builtins:
    return Builtins(ServerConfig(version="15.8", database=None, parameters={}, users={}, tls=False,
                                 require_tls=False, max_connections=10, max_message_size=1 << 20,
                                 journal_limit=10))


def _query(sql: str, params=()) -> Query:
    info = ConnectionInfo(id=1, pid=4242, user="postgres", database="postgres", application_name="", parameters={})
    return Query(sql=sql, params=list(params), connection=info, settings={"jit": "on"})


_ITEMS = st.sampled_from(["1", "'x'", "now()", "current_user", "pg_backend_pid()", "1 + 2", "$1::int",
                          "format_type(23, -1)", "pg_is_in_recovery()", "NULL", "txid_current()", "-5",
                          "current_database()", "version()", "2.5", "true", "1::text"])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.tuples(_ITEMS, st.sampled_from(["", " AS a", ' AS "Q"', " b"])), min_size=1, max_size=6))
def test_constant_select_answers_have_the_asked_columns(items):
    """Whatever the evaluator answers has one column per select item, named as PostgreSQL names it."""
    sql = "SELECT " + ", ".join(e + a for e, a in items)
    res, label = _builtins().answer(_query(sql, params=[7]))
    assert res is not None and label.startswith("builtin:"), sql
    assert tuple(c.name for c in res.columns) == column_names(sql)
    assert all(len(row) == len(items) for row in res.rows)


# psycopg's type probes, taken from the installed psycopg (name -> the module defining the query)
def _psycopg_probe_queries() -> list[str]:
    from psycopg.types.composite import CompositeInfo
    from psycopg.types.enum import EnumInfo
    from psycopg.types.multirange import MultirangeInfo
    from psycopg.types.range import RangeInfo
    from psycopg.types import TypeInfo

    class FakeConn:  # just what _get_info_query reads
        class info:
            vendor = "PostgreSQL"
            server_version = 150008

    out = []
    for cls in (TypeInfo, EnumInfo, CompositeInfo, RangeInfo, MultirangeInfo):
        q = cls._get_info_query(FakeConn())
        out.append(q.as_string(None) if hasattr(q, "as_string") else str(q))
    return [s.replace("%(name)s", "$1") for s in out]


def test_psycopg_type_probes_answer_no_type_with_the_asked_columns():
    b = _builtins()
    for sql in _psycopg_probe_queries():
        res, _ = b.answer(_query(sql, params=["nosuch"]))
        assert res is not None, sql
        assert res.rows == [] and tuple(c.name for c in res.columns) == column_names(sql)
    # the same probe asking for a column nobody wrote down: no answer (FP000), not a wrong shape
    res, _ = b.answer(_query("SELECT typname AS name, oid, typlen FROM pg_type t WHERE t.oid = to_regtype($1)",
                             params=["x"]))
    assert res is None
    res, _ = b.answer(_query("SELECT to_regtype('int4')"))
    assert res is None


@pytest.mark.realpg
def test_psycopg_type_probes_typed_like_postgresql(oracle_pg):
    real_pg = oracle_pg
    b = _builtins()
    with psycopg.connect(real_pg.dsn, autocommit=True) as c:
        for sql in _psycopg_probe_queries():
            real = c.execute(sql.replace("$1", "%(name)s"), {"name": "nosuch_type"})
            want = [(d.name, d.type_code) for d in real.description]
            got = [(col.name, col.type.oid) for col in b.describe(_query(sql))]
            assert got == want, sql


def _asyncpg_typeinfo() -> str:
    introspection = pytest.importorskip("asyncpg.introspection")
    return introspection.INTRO_LOOKUP_TYPES


@pytest.mark.parametrize("sql,params,names", [
    # asyncpg's typeinfo query: `*` over its CTE's column list, then three more
    (_asyncpg_typeinfo, [[23]], None),
    ("SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname FROM pg_catalog.pg_type t JOIN "
     "pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid = $1", [1186], ("?column?", "nspname", "typname")),
    ("SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new", [], ("cur", "new")),
    # pgjdbc's TypeInfoCache by OID
    ("SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid   FROM "
     "pg_catalog.pg_type   LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r           from pg_namespace as ns  "
     "         join ( select s.r, (current_schemas(false))[s.r] as nspname                    from "
     "generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r          using ( nspname )        "
     ") as sp     ON sp.nspoid = typnamespace  WHERE pg_type.oid = $1  ORDER BY sp.r, pg_type.oid DESC", [1186],
     ("is_array", "typtype", "typname", "oid")),
])
def test_driver_bootstrap_answers_fit_their_queries(sql, params, names):
    sql = sql() if callable(sql) else sql
    res, _ = _builtins().answer(_query(sql, params))
    assert res is not None
    assert tuple(c.name for c in res.columns) == (names or column_names(sql))
    assert len(res.columns) == (14 if names is None else len(names))
    # the same texts with one more column: not answered
    at = sql.find("FROM") if "typinput" in sql else sql.rfind("FROM")
    extra = sql[:at] + ", 1 AS extra " + sql[at:] if at > 0 else sql + ", 1 AS extra"
    assert _builtins().answer(_query(extra, params))[0] is None
