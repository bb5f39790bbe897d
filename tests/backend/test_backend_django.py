"""Django 5 through fakepm in backend mode, with zero rules: `migrate` on a new database, the ORM
inside transaction.atomic, and `manage.py test --parallel 2` (Django creates, clones and drops test_<NAME> itself:
it connects to the server's database and sends CREATE DATABASE; then connects to the new name,
which fakepm hands to the engine as it is). Then the same ORM run with one rule overriding one
query and a fault (40001 on the 2nd COMMIT): those show, everything else is the engine's.

The project is django_project/ (settings read the DSN from $FAKEPM_DJANGO_DSN); every Django
command runs in a subprocess, so Django's global state never enters the pytest process.
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import psycopg
import pytest
from backend_helpers import HERE, backend_server, client_env, direct_dsn, run

pytest.importorskip("django")

PROJECT = os.path.join(HERE, "django_project")


def manage(pg, *args: str, timeout: float = 120, **env_extra: str):
    env = client_env(FAKEPM_DJANGO_DSN=pg.dsn, DJANGO_SETTINGS_MODULE="shopsite.settings", PYTHONPATH=PROJECT,
                     **env_extra)
    return run([sys.executable, os.path.join(PROJECT, "manage.py"), *args], cwd=PROJECT, env=env, timeout=timeout)


def orm(pg, **env_extra: str) -> dict:
    r = manage(pg, "shop_orm", **env_extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def migrated():
    """A fresh database (no declared tables) that `manage.py migrate` brought up to date."""
    with backend_server(scenario=None) as pg:
        r = manage(pg, "migrate", "--noinput")
        yield SimpleNamespace(pg=pg, result=r, end=len(pg.queries))


def test_migrate_on_a_new_database(migrated):
    r = migrated.result
    assert r.returncode == 0, r.stderr
    assert "Applying shop.0001_initial... OK" in r.stdout
    assert "Applying auth.0012_alter_user_first_name_max_length... OK" in r.stdout
    sent = migrated.pg.queries[:migrated.end]
    assert len({q.sql for q in sent}) > 70  # the issue counted 77 distinct statements; each one ran
    assert {q.rule for q in sent} == {"engine"}, "zero rules: the engine answers everything"
    assert not [q for q in sent if q.error]
    # the tables are real: read them directly on the engine, not through fakepm
    with psycopg.connect(direct_dsn(migrated.pg)) as c:
        tables = {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"django_migrations", "auth_user", "shop_author", "shop_book"} <= tables
        applied = c.execute("SELECT count(*) FROM django_migrations WHERE app = 'shop'").fetchone()[0]
        assert applied == 1
        checks = c.execute("SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = 'shop_book'::regclass")
        assert [r[0] for r in checks] == ["book_price_not_negative"]
    # and Django sees nothing left to do
    r = manage(migrated.pg, "migrate", "--check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_orm_create_update_get_filter_in_atomic(migrated):
    pg = migrated.pg
    start = len(pg.queries)
    out = orm(pg)
    assert out == {
        "duplicate": "23505",  # a unique violation in a savepoint, rolled back to it
        "updated_price": "13.50",
        "get": "1815-12-10",
        "in_stock": ["Notes"],
        "first": "committed",
        "second": "committed",
        "authors": ["Ada", "Grace"],
        "book_count": 3,
        "tagged_cs": ["Compilers"],
    }
    sent = pg.queries[start:]
    assert {q.rule for q in sent} == {"engine"}
    kinds = [q.sql.split()[0].upper() for q in sent]
    assert kinds.count("COMMIT") == 2 and "SAVEPOINT" in kinds and "ROLLBACK" in kinds
    with psycopg.connect(direct_dsn(pg)) as c:  # committed on the engine
        rows = c.execute("SELECT a.name, b.title, b.price::text FROM shop_book b JOIN shop_author a "
                         "ON a.id = b.author_id ORDER BY b.id").fetchall()
    assert rows == [("Ada", "Notes", "13.50"), ("Ada", "Letters", "7.00"), ("Grace", "Compilers", "30.00")]


def test_manage_py_test_creates_and_drops_its_test_database():
    """`manage.py test --parallel 2`: Django creates test_postgres, clones it twice (CREATE DATABASE
    ... TEMPLATE: only once no session is left on it), runs its tests in two processes, drops all three."""
    with backend_server(scenario=None) as pg:
        r = manage(pg, "test", "shop", "--noinput", "--parallel", "2", "-v", "2")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Ran 5 tests" in r.stderr and "\nOK" in r.stderr
        assert "Creating test database for alias 'default' ('test_postgres')" in r.stderr
        assert "Destroying test database for alias 'default' ('test_postgres')" in r.stderr
        sqls = [q.sql for q in pg.queries if "DATABASE" in q.sql]
        assert sorted(sqls) == sorted([
            'CREATE DATABASE "test_postgres"',
            'CREATE DATABASE "test_postgres_1" WITH TEMPLATE "test_postgres"',
            'CREATE DATABASE "test_postgres_2" WITH TEMPLATE "test_postgres"',
            'DROP DATABASE "test_postgres_1"', 'DROP DATABASE "test_postgres_2"', 'DROP DATABASE "test_postgres"'])
        assert {q.rule for q in pg.queries} == {"engine"}
        # the test databases were the engine's own, and they are gone
        with psycopg.connect(direct_dsn(pg)) as c:
            left = c.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_postgres%'").fetchall()
            assert left == []
            # the server's own database was not touched by the tests (they ran in test_postgres*)
            assert c.execute("SELECT to_regclass('shop_author')").fetchone()[0] is None


def test_one_rule_and_a_fault_show_everything_else_is_real():
    """The ORM run again on a migrated database, now with `SELECT COUNT(*)` of books answered by
    a rule and 40001 on the 2nd COMMIT: the count is the rule's, the second transaction fails
    (and its rows are not in the engine), every other statement is the engine's. This time
    psycopg binds parameters server-side (Django's server_side_binding): the extended protocol."""
    ssb = {"FAKEPM_DJANGO_SERVER_SIDE_BINDING": "1"}
    with backend_server(scenario=None) as pg:
        assert manage(pg, "migrate", "--noinput", **ssb).returncode == 0
        start = len(pg.queries)
        count_sql = 'SELECT COUNT(*) AS "__count" FROM "shop_book"'
        pg.on(count_sql).reply(columns={"__count": "int8"}, rows=[[42]])
        pg.fault(error="40001", query="COMMIT", nth=2)
        out = orm(pg, **ssb)
        assert out == {
            "duplicate": "23505",
            "updated_price": "13.50",
            "get": "1815-12-10",
            "in_stock": ["Notes"],
            "first": "committed",
            "second": "40001",  # the fault: Django raised OperationalError from SerializationFailure
            "authors": ["Ada"],  # Grace's transaction did not commit
            "book_count": 42,  # the rule
            "tagged_cs": [],
        }
        sent = pg.queries[start:]
        by_rule = {}
        for q in sent:
            by_rule.setdefault(q.rule, []).append(q.sql)
        assert by_rule.pop("fault") == ["COMMIT"]
        (rule_sqls,) = [v for k, v in by_rule.items() if k != "engine"]
        assert rule_sqls == [count_sql]
        assert len(by_rule["engine"]) == len(sent) - 2
        assert any(q.protocol == "extended" and q.params for q in sent)  # server-side binding it was
        with psycopg.connect(direct_dsn(pg)) as c:
            assert c.execute("SELECT count(*) FROM shop_book").fetchone()[0] == 2
            assert [r[0] for r in c.execute("SELECT name FROM shop_author")] == ["Ada"]
