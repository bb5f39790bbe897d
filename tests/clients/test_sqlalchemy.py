"""SQLAlchemy 2 against fakepm with each PostgreSQL dialect.

An engine's first connect probes version(), current_schema(), the isolation level and
standard_conforming_strings (and psycopg's/psycopg2's hstore lookups): none needs a rule.
Then text() selects and inserts with bound values, commit, rollback, and pool checkout
(a connection going back to the pool is reset with ROLLBACK).
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

SYNC_DIALECTS = ["psycopg", "psycopg2", "pg8000"]


def url(pg, dialect: str) -> str:
    return pg.dsn.replace("postgresql://", f"postgresql+{dialect}://")


def rules(pg):
    # param_types: pg8000 and asyncpg bind untyped parameters and ask the server for types
    pg.on("SELECT id, name FROM users WHERE id = $1", param_types=["int4"]).reply(
        columns={"id": "int4", "name": "text"}, rows=[[7, "ada"]])
    return pg.on("INSERT INTO users (id, name) VALUES ($1, $2)", param_types=["int4", "text"]).reply()


@pytest.mark.parametrize("dialect", SYNC_DIALECTS)
def test_engine_select_insert_commit_rollback(fakepm, dialect):
    insert = rules(fakepm)
    engine = sa.create_engine(url(fakepm, dialect), pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT id, name FROM users WHERE id = :id"), {"id": 7}).one()
            assert (row.id, row.name) == (7, "ada")
            conn.execute(sa.text("INSERT INTO users (id, name) VALUES (:id, :name)"), {"id": 8, "name": "bob"})
            conn.commit()
            conn.execute(sa.text("INSERT INTO users (id, name) VALUES (:id, :name)"), {"id": 9, "name": "eve"})
            conn.rollback()
        with engine.begin() as conn:  # a second checkout of the pooled connection
            result = conn.execute(sa.text("INSERT INTO users (id, name) VALUES (:id, :name)"),
                                  [{"id": 10, "name": "x"}, {"id": 11, "name": "y"}])
            assert result.rowcount in (2, -1)  # executemany: some drivers do not sum rowcounts
    finally:
        engine.dispose()
    assert not fakepm.unmatched
    assert [q.params for q in fakepm.queries if q.sql.startswith("INSERT")] == [
        [8, "bob"], [9, "eve"], [10, "x"], [11, "y"]]
    assert insert.calls == 4


@pytest.mark.parametrize("dialect", SYNC_DIALECTS)
def test_engine_probes_report_the_fake_server(fakepm, dialect):
    engine = sa.create_engine(url(fakepm, dialect))
    try:
        with engine.connect() as conn:
            assert conn.dialect.server_version_info[:1] == (int(fakepm.config.version.split(".")[0]),)
            assert conn.dialect.default_schema_name == "public"
            assert conn.get_isolation_level() == "READ COMMITTED"
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", SYNC_DIALECTS)
def test_error_then_recovery(fakepm, dialect):
    fakepm.on("UPDATE users SET name = $1", param_types=["text"]).error("23514", "new row violates check constraint")
    engine = sa.create_engine(url(fakepm, dialect))
    try:
        with engine.connect() as conn:
            # psycopg/psycopg2 map 23514 to IntegrityError; pg8000 raises ProgrammingError for every code
            with pytest.raises(sa.exc.DBAPIError, match="23514|check constraint") as info:
                conn.execute(sa.text("UPDATE users SET name = :n"), {"n": ""})
            if dialect != "pg8000":
                assert isinstance(info.value, sa.exc.IntegrityError)
            conn.rollback()
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_isolation_level_execution_option(fakepm):
    engine = sa.create_engine(url(fakepm, "psycopg"))
    try:
        with engine.connect().execution_options(isolation_level="SERIALIZABLE") as conn:
            assert conn.execute(sa.text("SHOW transaction_isolation")).scalar() == "serializable"
    finally:
        engine.dispose()


def test_asyncpg_dialect(fakepm):
    insert = rules(fakepm)

    async def main():
        engine = create_async_engine(url(fakepm, "asyncpg"), pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(sa.text("SELECT id, name FROM users WHERE id = :id"), {"id": 7})).one()
                await conn.execute(sa.text("INSERT INTO users (id, name) VALUES (:id, :name)"), {"id": 8, "name": "b"})
                await conn.commit()
            async with engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO users (id, name) VALUES (:id, :name)"),
                                   [{"id": 9, "name": "c"}, {"id": 10, "name": "d"}])
            return tuple(row)
        finally:
            await engine.dispose()

    assert asyncio.run(asyncio.wait_for(main(), 20)) == (7, "ada")
    assert not fakepm.unmatched
    assert insert.calls == 3


def test_async_psycopg_dialect(fakepm):
    rules(fakepm)

    async def main():
        engine = create_async_engine(url(fakepm, "psycopg"))
        try:
            async with engine.begin() as conn:
                return (await conn.execute(sa.text("SELECT id, name FROM users WHERE id = :id"), {"id": 7})).one()
        finally:
            await engine.dispose()

    assert tuple(asyncio.run(asyncio.wait_for(main(), 20))) == (7, "ada")
