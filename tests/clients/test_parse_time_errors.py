"""A rule's scripted error comes where PostgreSQL raises it in the extended protocol: name and
syntax errors of a SELECT/INSERT/UPDATE/DELETE at Parse (so asyncpg, which prepares first,
reports the scripted error instead of failing to encode its arguments), errors of utility
statements (DROP, TRUNCATE ...) at Execute. Checked against a real PostgreSQL 15 and 18 message by
message (fakepm announcing each one's version), and with asyncpg and psycopg 3."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.protocol import messages as m

STATEMENTS = [
    ("SELECT * FROM nosuch", "42P01", 'relation "nosuch" does not exist'),
    ("SELECT * FROM nosuch WHERE id = $1", "42P01", 'relation "nosuch" does not exist'),
    ("SELEC 1", "42601", 'syntax error at or near "SELEC"'),
    ("SELECT nocol FROM pg_class", "42703", 'column "nocol" does not exist'),
    ("INSERT INTO nosuch VALUES (1)", "42P01", 'relation "nosuch" does not exist'),
    ("DELETE FROM nosuch", "42P01", 'relation "nosuch" does not exist'),
    ("SELECT nofunc(1)", "42883", "function nofunc(integer) does not exist"),
    ("DROP TABLE nosuch", "42P01", 'table "nosuch" does not exist'),
    ("TRUNCATE nosuch", "42P01", 'relation "nosuch" does not exist'),
]


def _conversation(host: str, port: int, user: str, writes: list[bytes]) -> list[list[str]]:
    """Each write's answer up to its ReadyForQuery, as message names (with SQLSTATEs)."""
    out = []
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(m.StartupMessage(m.PROTOCOL_3_0, {"user": user, "database": "postgres"}).encode())
        buf = b""
        for _ in range(100):  # bounded: the socket's 10 s timeout ends each recv
            if buf.endswith(b"Z\x00\x00\x00\x05I"):
                break
            chunk = s.recv(65536)
            assert chunk, f"connection closed during startup: {buf!r}"
            buf += chunk
        for data in writes:
            s.sendall(data)
            buf = b""
            for _ in range(100):
                if len(buf) >= 6 and buf[-6:-1] == b"Z\x00\x00\x00\x05":
                    break
                chunk = s.recv(65536)
                assert chunk, f"connection closed: {buf!r}"
                buf += chunk
            out.append([type(x).__name__ + (":" + x.error.code if isinstance(x, m.ErrorResponse) else "")
                        for x in m.split_backend_stream(buf)])
        s.sendall(m.Terminate().encode())
    return out


def _group_answer(host: str, port: int, user: str, sql: str) -> list[str]:
    """Parse/Bind/Describe/Execute/Sync in one write; the backend message names (with SQLSTATEs)."""
    params = (b"1",) if "$1" in sql else ()
    group = b"".join([m.Parse("", sql, ()).encode(), m.Bind("", "", (), params, ()).encode(),
                      m.Describe("P", "").encode(), m.Execute("", 0).encode(), m.Sync().encode()])
    return _conversation(host, port, user, [group])[0]


@pytest.fixture
def fake():
    with FakePostgres() as pg:
        for sql, code, message in STATEMENTS:
            pg.on(sql).error(code, message)
        yield pg


@pytest.fixture
def fake_like(oracle_pg):
    with FakePostgres(version=oracle_pg.server_version) as pg:
        for sql, code, message in STATEMENTS:
            pg.on(sql).error(code, message)
        yield pg


@pytest.mark.parametrize("sql, code, message", STATEMENTS)
def test_error_comes_at_the_same_message_as_postgresql(oracle_pg, fake_like, sql, code, message):
    fake = fake_like
    expected = _group_answer(oracle_pg.host, oracle_pg.port, oracle_pg.user, sql)
    assert f"ErrorResponse:{code}" in expected
    assert _group_answer(fake.host, fake.port, "postgres", sql) == expected
    entry = fake.queries[-1]
    assert entry.sql == sql and entry.error == f"{code} {message}" and entry.protocol == "extended"


def test_asyncpg_gets_the_scripted_error_for_a_statement_with_arguments(fake):
    async def go():
        conn = await asyncpg.connect(fake.dsn)
        try:
            with pytest.raises(asyncpg.UndefinedTableError, match='relation "nosuch" does not exist'):
                await conn.fetch("SELECT * FROM nosuch WHERE id = $1", 5)
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.fetch("SELEC 1")
            return await conn.fetchval("SELECT 1")  # the connection is still usable
        finally:
            await conn.close()

    assert asyncio.run(go()) == 1
    rule = next(r for r in fake.rules.rules if r.query == "SELECT * FROM nosuch WHERE id = $1")
    assert rule.calls == 1  # counted once, at Parse


def test_psycopg_transaction_fails_at_parse_and_recovers(fake):
    with psycopg.connect(fake.dsn) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM nosuch WHERE id = %s", (7,))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_rules_that_depend_on_parameters_still_answer_at_execute():
    with FakePostgres() as pg:
        pg.on("SELECT * FROM items WHERE id = $1", params=[1]).error("42P01", 'relation "items" does not exist')
        pg.on("SELECT * FROM items WHERE id = $1").reply(columns={"id": "int4"}, rows=[[2]])
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT * FROM items WHERE id = %s", (2,)).fetchall() == [(2,)]
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute("SELECT * FROM items WHERE id = %s", (1,))
        assert pg.queries[-1].params == [1]  # bound: the error came at Execute


def test_parse_in_a_failed_transaction_is_refused_at_parse(oracle_pg, fake_like):
    def extended(sql):
        return b"".join([m.Parse("", sql, ()).encode(), m.Bind("", "", (), (), ()).encode(),
                         m.Execute("", 0).encode(), m.Sync().encode()])

    writes = [m.Query("BEGIN").encode(), m.Query("SELECT nofunc(1)").encode(), extended("SELECT 1"),
              extended("ROLLBACK")]
    expected = _conversation(oracle_pg.host, oracle_pg.port, oracle_pg.user, writes)
    assert expected[2] == ["ErrorResponse:25P02", "ReadyForQuery"]
    assert _conversation(fake_like.host, fake_like.port, "postgres", writes) == expected
