"""An existing server (a postgresql:// URL): fakepm's databases, templates and roles made there, and dropped."""

from __future__ import annotations

import psycopg
import pytest

from engine_helpers import wait_until
from fakepm.answers.catalog import Catalog
from fakepm.engine import DatabaseSetup, EngineError, ExternalEngine, resolve_engine
from fakepm.proxy.upstream import Upstream

pytestmark = pytest.mark.realpg


@pytest.fixture
def external(real_pg):
    eng = ExternalEngine(f"postgresql://{real_pg.user}@{real_pg.host}:{real_pg.port}/postgres?application_name=t")
    yield eng
    eng.stop()


def fakepm_dbs(real_pg) -> list[str]:
    with psycopg.connect(real_pg.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'fakepm%'")]


def test_acquire_release_roles_on_an_external_server(external, real_pg):
    cat = Catalog()
    cat.add("items", {"id": "int4", "label": "text"}, key=("id",), rows=[[1, "one"], [2, "two's"]])
    setup = DatabaseSetup(tables=tuple(cat.tables.values()))
    assert external.version.startswith(real_pg.psql("SHOW server_version").split()[0])
    name = external.acquire_database(setup)
    assert name.startswith("fakepm_db_")
    assert name in fakepm_dbs(real_pg) and any(d.startswith("fakepm_tpl_") for d in fakepm_dbs(real_pg))
    with psycopg.connect(real_pg.dsn.rsplit("/", 1)[0] + "/" + name) as conn:
        assert conn.execute("SELECT label FROM items ORDER BY id").fetchall() == [("one",), ("two's",)]

    external.ensure_roles({"ext_alice": "pw-1"})
    with psycopg.connect(real_pg.dsn) as conn:
        row = conn.execute("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = 'ext_alice'").fetchone()
    assert row[0] is True and row[1].startswith("SCRAM-SHA-256$")
    url = external.upstream_url("ext_alice", name)
    assert (url.host, url.port, url.user, url.password, url.database) == \
        (real_pg.host, real_pg.port, "ext_alice", "pw-1", name)
    assert url.options == {"application_name": "t"}
    # a user fakepm has no password for logs in with the URL's own credentials
    other = external.upstream_url("somebody_else", name)
    assert other.user == real_pg.user
    up = Upstream(url).connect()  # trust on this server: the role logs in
    up.close()

    external.release_database(name)
    assert wait_until(lambda: name not in fakepm_dbs(real_pg), 20), external.worker_error


def test_stop_drops_what_it_made(external, real_pg):
    setup = DatabaseSetup(schema=("CREATE TABLE x (id int)",))
    kept = external.acquire_database(setup)  # never released
    external.wait_pool(timeout=30)
    mine = [d for d in fakepm_dbs(real_pg) if d.startswith("fakepm_db_")]
    assert kept in mine and len(mine) >= 2  # pre-cloned ones too
    external.stop()
    left = fakepm_dbs(real_pg)
    assert not [d for d in mine if d in left]
    assert any(d.startswith("fakepm_tpl_") for d in left)  # templates stay: the next run reuses them


def test_unreachable_server_is_a_clear_error():
    eng = resolve_engine("postgresql://nobody@127.0.0.1:1/postgres")
    with pytest.raises(EngineError, match="admin connection to postgresql://nobody@127.0.0.1:1/postgres failed"):
        eng.start()
    assert not eng.started


def test_managed_engine_as_an_external_one(managed):
    """The URL form also takes a Unix socket directory (?host=/dir), as libpq does."""
    eng = ExternalEngine(f"postgresql://postgres@/postgres?host={managed.socket_dir}")
    try:
        name = eng.acquire_database(DatabaseSetup(schema=("CREATE TABLE y (id int)",)))
        assert name in managed.databases()
        url = eng.upstream_url("postgres", name)
        assert url.is_unix and url.host == managed.socket_dir
        eng.release_database(name)
        assert wait_until(lambda: name not in managed.databases(), 20)
    finally:
        eng.stop()


def test_the_urls_own_role_is_never_altered(external, real_pg):
    with psycopg.connect(real_pg.dsn) as conn:
        before = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (real_pg.user,)).fetchone()
    external.ensure_roles({real_pg.user: "would-lock-the-team-out"})
    with psycopg.connect(real_pg.dsn) as conn:
        after = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (real_pg.user,)).fetchone()
    assert before == after
    url = external.upstream_url(real_pg.user, "postgres")
    assert url.user == real_pg.user and url.password is None  # the URL's credentials
