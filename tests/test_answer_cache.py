"""The simple-query answer cache (session/answer_cache.py) must be invisible: psycopg2 (which sends
every statement as a simple Query) repeats the same texts and sees exactly what it would see
without the cache -- journal entries, `expect` counts, rule changes, sequences, `times`, faults,
transaction states and notifications."""

from __future__ import annotations

import psycopg2
import pytest

from fakepm import FakePostgres
from realpg import need_program


@pytest.fixture
def pg():
    with FakePostgres() as server:
        yield server


def _conn(pg):
    conn = psycopg2.connect(pg.dsn)
    conn.autocommit = True
    return conn


def _one(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def test_repeats_are_journaled_and_counted(pg):
    pg.on("SELECT name FROM users WHERE id = $1", params=[7], expect=5).reply(columns={"name": "text"}, rows=[["ada"]])
    conn = _conn(pg)  # (psycopg2's `with conn` would open a transaction)
    with conn.cursor() as cur:
        for _ in range(5):
            assert _one(cur, "SELECT name FROM users WHERE id = 7") == [("ada",)]
            assert _one(cur, "SELECT 1") == [(1,)]
            assert cur.statusmessage == "SELECT 1"
    # both texts are served from the cache after their first answer (what this file is about)
    cached = pg._call(lambda: [sorted(s.answer_cache or ()) for s in pg.hub.sessions.values()])
    assert cached == [["SELECT 1", "SELECT name FROM users WHERE id = 7"]]
    conn.close()
    assert [q.sql for q in pg.queries] == ["SELECT name FROM users WHERE id = 7", "SELECT 1"] * 5
    assert all(q.params == [7] for q in pg.queries[::2])
    assert all(q.rule and q.rule.startswith("builtin:") for q in pg.queries[1::2])
    pg.verify()  # expect=5 met exactly: cached answers still count


def test_new_rules_and_reset_change_the_answer(pg):
    conn = _conn(pg)  # (psycopg2's `with conn` would open a transaction)
    with conn.cursor() as cur:
        assert _one(cur, "SELECT 1") == [(1,)]
        assert _one(cur, "SELECT 1") == [(1,)]
        pg.on("SELECT 1").reply(columns={"x": "text"}, rows=[["from a rule"]])
        assert _one(cur, "SELECT 1") == [("from a rule",)]
        pg.on("SELECT 1", priority=5).reply(columns={"x": "text"}, rows=[["higher"]])
        assert _one(cur, "SELECT 1") == [("higher",)]
        assert _one(cur, "SELECT 1") == [("higher",)]
        pg.reset()
        assert _one(cur, "SELECT 1") == [(1,)]
    conn.close()


def test_sequence_times_and_state_are_never_replayed(pg):
    pg.on("SELECT status FROM jobs").sequence({"columns": {"s": "text"}, "rows": [["queued"]]},
                                              {"columns": {"s": "text"}, "rows": [["done"]]})
    pg.on("SELECT token").reply(columns={"t": "int4"}, rows=[[1]])
    pg.on("SELECT once", times=2).reply(columns={"t": "int4"}, rows=[[1]])
    pg.on("SELECT light", state={"when": "start", "set": "on"}).reply(columns={"l": "text"}, rows=[["was off"]])
    pg.on("SELECT light", state={"when": "on", "set": "start"}).reply(columns={"l": "text"}, rows=[["was on"]])
    conn = _conn(pg)  # (psycopg2's `with conn` would open a transaction)
    with conn.cursor() as cur:
        assert [_one(cur, "SELECT status FROM jobs") for _ in range(3)] == [[("queued",)], [("done",)], [("done",)]]
        assert [_one(cur, "SELECT once") for _ in range(2)] == [[(1,)], [(1,)]]
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT once")
        assert e.value.pgcode == "FP000"
        assert [_one(cur, "SELECT light") for _ in range(3)] == [[("was off",)], [("was on",)], [("was off",)]]
    conn.close()


def test_faults_and_failed_transactions_still_apply(pg):
    pg.on("SELECT name FROM users").reply(columns={"name": "text"}, rows=[["ada"]])
    conn = _conn(pg)  # (psycopg2's `with conn` would open a transaction)
    with conn.cursor() as cur:
        assert _one(cur, "SELECT name FROM users") == [("ada",)]
        assert _one(cur, "SELECT name FROM users") == [("ada",)]
        plan = pg.fault(error="40001", query="SELECT name FROM users")
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT name FROM users")
        assert e.value.pgcode == "40001"
        pg.remove_fault(plan)
        assert _one(cur, "SELECT name FROM users") == [("ada",)]
        conn.autocommit = False
        with pytest.raises(psycopg2.Error):
            cur.execute("SELECT nothing matches this")
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT name FROM users")  # inside the failed transaction: not the cached rows
        assert e.value.pgcode == "25P02"
        conn.rollback()
        assert _one(cur, "SELECT name FROM users") == [("ada",)]
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        conn.rollback()
    conn.close()


def test_notifications_arrive_with_a_cached_answer(pg):
    listener, sender = _conn(pg), _conn(pg)
    with listener.cursor() as cur, sender.cursor() as scur:
        cur.execute("LISTEN jobs")
        assert _one(cur, "SELECT 1") == [(1,)]
        assert _one(cur, "SELECT 1") == [(1,)]
        scur.execute("NOTIFY jobs, 'hello'")
        assert _one(cur, "SELECT 1") == [(1,)]
        assert [(n.channel, n.payload) for n in listener.notifies] == [("jobs", "hello")]
    listener.close()
    sender.close()


# ---------------------------------------------------------------------- extended-protocol groups
# psycopg 3 sends Parse/Bind/Describe/Execute/Sync (then Bind/Execute/Sync once it has prepared
# the statement) in one write; asyncpg sends Bind/Execute/Sync for its prepared statements;
# pgbench -M extended/prepared too. Repeats are answered from the group cache.

def _group_cached(pg) -> int:
    return sum(pg._call(lambda: [len(s.group_cache or ()) for s in pg.hub.sessions.values()]))


@pytest.mark.parametrize("prepare", [False, True])
def test_extended_repeats_are_journaled_counted_and_current(pg, prepare):
    import psycopg

    pg.on("SELECT name FROM users WHERE id = $1", params=[7], expect=6).reply(
        columns={"name": "text"}, rows=[["ada"]])
    pg.on("SELECT name FROM users WHERE id = $1", params=[8]).reply(columns={"name": "text"}, rows=[["bob"]])
    sql = "SELECT name FROM users WHERE id = %s"
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for _ in range(6):
            assert conn.execute(sql, (7,), prepare=prepare).fetchall() == [("ada",)]
            assert conn.execute(sql, (8,), prepare=prepare).fetchall() == [("bob",)]
        assert _group_cached(pg) >= 2
        pg.verify()  # expect=6 met exactly: replayed answers still count
        pg.on("SELECT name FROM users WHERE id = $1", params=[8], priority=9).reply(
            columns={"name": "text"}, rows=[["carol"]])
        assert conn.execute(sql, (8,), prepare=prepare).fetchall() == [("carol",)]
        plan = pg.fault(error="40001", query="SELECT name FROM users WHERE id = $1")
        with pytest.raises(psycopg.errors.SerializationFailure):
            conn.execute(sql, (7,), prepare=prepare)
        pg.remove_fault(plan)
        assert conn.execute(sql, (7,), prepare=prepare).fetchall() == [("ada",)]
        with conn.transaction():
            assert conn.execute(sql, (7,), prepare=prepare).fetchall() == [("ada",)]
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    entries = [q for q in pg.queries if q.sql.startswith("SELECT name")]
    assert len(entries) == 6 * 2 + 1 + 1 + 1 + 1
    assert [q.params for q in entries[:4]] == [[7], [8], [7], [8]]
    assert all(q.protocol == "extended" for q in entries)
    if prepare:
        assert all(q.statement for q in entries)  # psycopg's named statement, journaled every time


def test_asyncpg_prepared_statement_repeats(pg):
    import asyncio

    import asyncpg

    pg.on("SELECT name FROM users WHERE id = $1", param_types=["int4"]).reply(
        columns={"name": "text"}, rows=[["ada"]])

    async def go():
        conn = await asyncpg.connect(pg.dsn)
        try:
            values = [await conn.fetchval("SELECT name FROM users WHERE id = $1", 7) for _ in range(5)]
            return values, _group_cached(pg)
        finally:
            await conn.close()

    values, cached = asyncio.run(go())
    assert values == ["ada"] * 5
    assert cached >= 1  # asyncpg's Bind/Execute/Sync on its prepared statement
    assert len([q for q in pg.queries if q.sql.startswith("SELECT name")]) == 5


@pytest.mark.parametrize("mode", ["extended", "prepared"])
def test_pgbench_transactions_are_all_journaled(pg, mode, tmp_path):
    import subprocess

    need_program("pgbench", "Debian: postgresql-contrib")
    script = tmp_path / "one.sql"
    script.write_text("SELECT name FROM users WHERE id = 1;\n")
    pg.on("SELECT name FROM users WHERE id = 1", expect=200).reply(columns={"name": "text"}, rows=[["ada"]])
    r = subprocess.run(["pgbench", "-n", "-f", str(script), "-M", mode, "-c", "2", "-j", "2", "-t", "100",
                        "-h", pg.host, "-p", str(pg.port), "-U", "postgres", "postgres"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "number of transactions actually processed: 200/200" in r.stdout
    pg.verify()
