"""asyncpg against fakepm over TCP: binary results, server-inferred parameter types,
fetchrow/executemany, prepared statements, cursors (Execute row limits), transactions,
errors, LISTEN/NOTIFY, cancel by timeout, and the pool's reset batch."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

USERS = "SELECT id, name FROM users WHERE id = $1"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def users_rule(pg, **kw):
    kw.setdefault("param_types", ["int4"])
    return pg.on(USERS, **kw).reply(columns={"id": "int4", "name": "text"}, rows=[[7, "ada"]])


async def connect(pg):
    return await asyncpg.connect(pg.dsn, timeout=5)


def test_fetchrow_with_params(fakepm):
    users_rule(fakepm, params=[7])

    async def main():
        c = await connect(fakepm)
        try:
            row = await c.fetchrow(USERS, 7)
            assert dict(row) == {"id": 7, "name": "ada"}
            assert await c.fetchval("SELECT 1") == 1
        finally:
            await c.close()

    run(main())
    assert [q.params for q in fakepm.queries if "users" in q.sql] == [[7]]


def test_param_types_inferred_from_casts(fakepm):
    seen = []

    @fakepm.handler("SELECT echo($1::int8, $2::numeric, $3::timestamptz, $4::uuid, $5::jsonb, $6::bytea, $7::int4[])",
                    columns={"ok": "bool"})
    def echo(query):
        seen.append(query.params)
        return [[True]]

    import datetime as dt
    import uuid
    from decimal import Decimal

    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    u = uuid.uuid4()

    async def main():
        c = await connect(fakepm)
        try:
            assert await c.fetchval("SELECT echo($1::int8, $2::numeric, $3::timestamptz, $4::uuid, $5::jsonb, "
                                    "$6::bytea, $7::int4[])", 2**40, Decimal("1.5"), when, u, '{"a": 1}', b"\x00",
                                    [1, None]) is True
        finally:
            await c.close()

    run(main())
    assert seen == [[2**40, Decimal("1.5"), when, u, {"a": 1}, b"\x00", [1, None]]]


def test_parameterized_insert_in_a_transaction(fakepm):
    rule = fakepm.on("INSERT INTO items (name, qty) VALUES ($1, $2)", params=["pen", 3]).reply()

    async def main():
        c = await connect(fakepm)
        try:
            async with c.transaction():
                status = await c.execute("INSERT INTO items (name, qty) VALUES ($1, $2)", "pen", 3)
                assert status == "INSERT 0 1"
        finally:
            await c.close()

    run(main())
    assert rule.calls == 1
    assert [q.sql for q in fakepm.queries if not q.sql.startswith("INSERT")] == ["BEGIN", "COMMIT"]


def test_rollback_and_savepoint(fakepm):
    fakepm.on("INSERT INTO items (name) VALUES ($1)", params=["bad"]).error("23505", "duplicate key value")
    fakepm.on("INSERT INTO items (name) VALUES ($1)").reply()

    async def main():
        c = await connect(fakepm)
        try:
            async with c.transaction():
                await c.execute("INSERT INTO items (name) VALUES ($1)", "good")
                with pytest.raises(asyncpg.UniqueViolationError):
                    async with c.transaction():
                        await c.execute("INSERT INTO items (name) VALUES ($1)", "bad")
                await c.execute("INSERT INTO items (name) VALUES ($1)", "after")
            tr = c.transaction()
            await tr.start()
            await c.execute("INSERT INTO items (name) VALUES ($1)", "undone")
            await tr.rollback()
            assert not c.is_in_transaction()
        finally:
            await c.close()

    run(main())
    sent = [q.sql for q in fakepm.queries]
    assert any(s.startswith("SAVEPOINT") for s in sent) and any(s.startswith("ROLLBACK TO") for s in sent)
    assert sent[-1] == "ROLLBACK"


def test_error_then_recovery_and_25p02(fakepm):
    fakepm.on("SELECT 1 / 0").error("22012", "division by zero")

    async def main():
        c = await connect(fakepm)
        try:
            with pytest.raises(asyncpg.DivisionByZeroError) as info:
                await c.fetchval("SELECT 1 / 0")
            assert info.value.sqlstate == "22012"
            assert await c.fetchval("SELECT 2") == 2
            tr = c.transaction()
            await tr.start()
            with pytest.raises(asyncpg.DivisionByZeroError):
                await c.fetchval("SELECT 1 / 0")
            with pytest.raises(asyncpg.InFailedSQLTransactionError):
                await c.fetchval("SELECT 3")
            await tr.rollback()
            assert await c.fetchval("SELECT 4") == 4
        finally:
            await c.close()

    run(main())


def test_executemany(fakepm):
    rule = fakepm.on("INSERT INTO t (a, b) VALUES ($1, $2)", param_types=["int4", "text"]).reply()

    async def main():
        c = await connect(fakepm)
        try:
            await c.executemany("INSERT INTO t (a, b) VALUES ($1, $2)", [(i, f"v{i}") for i in range(5)])
        finally:
            await c.close()

    run(main())
    assert rule.calls == 5
    assert [q.params for q in fakepm.queries if q.sql.startswith("INSERT")] == [[i, f"v{i}"] for i in range(5)]


def test_prepared_statement(fakepm):
    users_rule(fakepm)

    async def main():
        c = await connect(fakepm)
        try:
            stmt = await c.prepare(USERS)
            assert [a.name for a in stmt.get_attributes()] == ["id", "name"]
            assert [t.name for t in stmt.get_parameters()] == ["int4"]
            for i in range(3):
                assert await stmt.fetchrow(i) == (7, "ada")
        finally:
            await c.close()

    run(main())
    assert [q.params for q in fakepm.queries if "users" in q.sql] == [[0], [1], [2]]


def test_cursor_uses_execute_row_limits(fakepm):
    rows = [[i] for i in range(10)]
    fakepm.on("SELECT n FROM numbers").reply(columns={"n": "int4"}, rows=rows)

    async def main():
        c = await connect(fakepm)
        try:
            async with c.transaction():
                got = [r["n"] async for r in c.cursor("SELECT n FROM numbers", prefetch=3)]
                cur = await c.cursor("SELECT n FROM numbers")
                first = await cur.fetch(4)
                await cur.forward(2)
                rest = await cur.fetch(10)
            return got, [r[0] for r in first], [r[0] for r in rest]
        finally:
            await c.close()

    got, first, rest = run(main())
    assert got == list(range(10))
    assert first == [0, 1, 2, 3] and rest == [6, 7, 8, 9]


def test_listen_notify(fakepm):
    async def main():
        listener, sender = await connect(fakepm), await connect(fakepm)
        try:
            got = asyncio.Queue()
            await listener.add_listener("jobs", lambda conn, pid, channel, payload: got.put_nowait((channel, payload)))
            await sender.execute("NOTIFY jobs, 'one'")
            await sender.execute("SELECT pg_notify($1, $2)", "jobs", "two")
            fakepm.notify("jobs", "three")
            return [await asyncio.wait_for(got.get(), 5) for _ in range(3)]
        finally:
            await listener.close()
            await sender.close()

    assert run(main()) == [("jobs", "one"), ("jobs", "two"), ("jobs", "three")]


@pytest.mark.parametrize("sql", ["SELECT slow()", "SELECT pg_sleep(5)"])
def test_timeout_cancels_the_query(fakepm, sql):
    fakepm.on("SELECT slow()").reply(columns={"x": "int4"}, rows=[[1]], delay=5)

    async def main():
        c = await connect(fakepm)
        try:
            started = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await c.fetchval(sql, timeout=0.3)
            assert time.monotonic() - started < 4
            assert await c.fetchval("SELECT 1") == 1
        finally:
            await c.close()

    run(main())
    assert any(e["kind"] == "cancel" for e in fakepm.events)


def test_pool_reset_needs_no_rule(fakepm):
    async def main():
        pool = await asyncpg.create_pool(fakepm.dsn, min_size=1, max_size=2, timeout=5)
        try:
            for _ in range(3):
                async with pool.acquire() as c:
                    await c.execute("LISTEN x")
                    assert await c.fetchval("SELECT 1") == 1
        finally:
            await pool.close()

    run(main())
    assert not fakepm.unmatched
    assert any("pg_advisory_unlock_all" in q.sql for q in fakepm.queries)


def test_unmatched_query(fakepm):
    async def main():
        c = await connect(fakepm)
        try:
            with pytest.raises(asyncpg.PostgresError) as info:
                await c.fetch("SELECT * FROM nowhere")
            assert info.value.sqlstate == "FP000"
            assert await c.fetchval("SELECT 1") == 1
        finally:
            await c.close()

    run(main())
    assert [q.sql for q in fakepm.unmatched] == ["SELECT * FROM nowhere"]
    fakepm.reset()


def test_param_type_from_the_rules_params(fakepm):
    # no cast in the SQL: the rule's typed params tell ParameterDescription what to announce
    fakepm.on("SELECT name FROM users WHERE id = $1", params=[7]).reply(columns={"name": "text"}, rows=[["ada"]])

    async def main():
        c = await connect(fakepm)
        try:
            return await c.fetchval("SELECT name FROM users WHERE id = $1", 7)
        finally:
            await c.close()

    assert run(main()) == "ada"


def test_multi_statement_execute(fakepm):
    rule = fakepm.on("UPDATE t SET a = 1").reply()

    async def main():
        c = await connect(fakepm)
        try:
            assert await c.execute("SELECT 1; UPDATE t SET a = 1; SELECT 2") == "SELECT 1"
            assert await c.fetchval("SELECT 3") == 3
        finally:
            await c.close()

    run(main())
    assert rule.calls == 1
