"""State machines, times, sequences and expectations stay atomic under many concurrent connections.

All matching runs on the server's single I/O thread, so a transition is never seen twice.
"""

import asyncio
import threading

import asyncpg
import psycopg
import pytest

from fakepm import FakePostgres

N = 40


def scenario_text(n: int) -> str:
    tickets = "\n".join(f"      - {{columns: {{ticket: int4}}, rows: [[{i}]]}}" for i in range(1, n + 1))
    return f"""
rules:
  - query: SELECT claim()
    state: {{when: start, set: claimed}}
    columns: {{claim: text}}
    rows: [[won]]
  - query: SELECT claim()
    columns: {{claim: text}}
    rows: [[lost]]
  - query: SELECT once()
    times: 1
    columns: {{once: text}}
    rows: [[first]]
  - query: SELECT once()
    columns: {{once: text}}
    rows: [[late]]
  - query: SELECT ping()
    expect: {n}
    columns: {{ping: int4}}
    rows: [[1]]
  - query: SELECT ticket()
    sequence:
{tickets}
"""


@pytest.fixture
def server(tmp_path):
    path = tmp_path / "concurrency.yaml"
    path.write_text(scenario_text(N))
    with FakePostgres(scenario=path) as pg:
        yield pg


def run_concurrently(dsn, sql):
    """Open N connections, then run `sql` on all at once (a barrier releases them together)."""
    barrier = threading.Barrier(N, timeout=30)
    results, errors = [], []
    lock = threading.Lock()

    def worker():
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                barrier.wait()
                for statement in sql if isinstance(sql, list) else [sql]:
                    value = c.execute(statement).fetchone()[0]
                    with lock:
                        results.append(value)
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    return results


def test_state_transition_happens_exactly_once(server):
    results = run_concurrently(server.dsn, "SELECT claim()")
    assert sorted(results) == ["lost"] * (N - 1) + ["won"]


def test_times_one_is_used_exactly_once(server):
    results = run_concurrently(server.dsn, "SELECT once()")
    assert results.count("first") == 1 and results.count("late") == N - 1


def test_sequence_hands_out_each_answer_once(server):
    results = run_concurrently(server.dsn, "SELECT ticket()")
    assert sorted(results) == list(range(1, N + 1))


def test_sequence_with_asyncpg_connections_at_once(server):
    async def go():
        conns = await asyncio.gather(*[asyncpg.connect(server.dsn) for _ in range(N)])
        try:
            return await asyncio.gather(*[c.fetchval("SELECT ticket()") for c in conns])
        finally:
            await asyncio.gather(*[c.close() for c in conns])

    assert sorted(asyncio.run(go())) == list(range(1, N + 1))


def test_expect_counts_every_concurrent_call(server):
    run_concurrently(server.dsn, "SELECT ping()")
    server.verify()  # expect: N, got exactly N
    with psycopg.connect(server.dsn) as c:
        c.execute("SELECT ping()")
    with pytest.raises(AssertionError, match=f"expected {N} call\\(s\\), got {N + 1}"):
        server.verify()
