"""How a user fuzzes a driver: hand it random fault plans (fakepm.strategies) and assert it
raises only its documented exception types and never hangs (every wait is bounded).

This is also the template for fuzzing your own application code: replace `query()` with a
call into your data layer and the tuple of allowed exceptions with what it promises."""

import asyncio
import threading

import asyncpg
import psycopg
import pytest
from asyncpg.exceptions._base import InternalClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.strategies import backend_streams, query_fault_plans

SQL = "SELECT y FROM t"
ROWS = [("a",), ("b",), ("c",)]

# what each driver documents (or, for decoding, what its type loaders raise)
PSYCOPG_RAISES = (psycopg.Error, UnicodeDecodeError)
ASYNCPG_RAISES = (asyncpg.PostgresError, asyncpg.InterfaceError, InternalClientError, asyncio.TimeoutError,
                  ConnectionError, UnicodeDecodeError)



@pytest.fixture(scope="module")
def pg():
    with FakePostgres() as server:
        yield server


def _bounded(fn, seconds=8.0):
    """Run fn in a thread; fail the test if it does not finish in time (a hang)."""
    box = []

    def run():
        try:
            box.append(("ok", fn()))
        except BaseException as e:  # noqa: BLE001 - inspected by the caller
            box.append(("raised", e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the driver hung for more than {seconds} s"
    return box[0]


def _setup(pg, plans):
    pg.rules.clear()
    pg.clear_faults()
    pg.on(SQL).reply(columns={"y": "text"}, rows=[list(r) for r in ROWS], fault=plans)


settings_ = settings(max_examples=100, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings_
@given(plans=st.lists(query_fault_plans(max_hang=0.2), min_size=1, max_size=2))
def test_psycopg_raises_only_documented_errors(pg, plans):
    _setup(pg, plans)

    def query():
        with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=3) as conn:
            return conn.execute(SQL).fetchall()

    kind, value = _bounded(query)
    if kind == "raised":
        assert isinstance(value, PSYCOPG_RAISES), repr(value)
    else:
        assert value[-3:] == ROWS or len(value) <= 4
    assert not [e for e in pg.events if e["kind"] == "internal_error"]


# asyncpg 0.32 can spin forever inside its Cython protocol code, holding the GIL, on some
# random byte streams (found by `python -m fakepm.fuzz`): no timeout can fire then, so random
# bytes are left out for asyncpg; its reaction to `garbage` is asserted in test_drivers.py.
@settings_
@given(plans=st.lists(query_fault_plans(max_hang=0.2, exclude=("garbage",)), min_size=1, max_size=2))
def test_asyncpg_raises_only_documented_errors(pg, plans):
    _setup(pg, plans)

    async def go():
        conn = await asyncpg.connect(pg.dsn, timeout=3)
        try:
            return [tuple(r) for r in await conn.fetch(SQL, timeout=1.0)]
        finally:
            conn.terminate()

    kind, value = _bounded(lambda: asyncio.run(go()))
    if kind == "raised":
        assert isinstance(value, ASYNCPG_RAISES), repr(value)
    else:
        assert value[-3:] == ROWS or len(value) <= 4
    assert not [e for e in pg.events if e["kind"] == "internal_error"]
    assert not pg._loop.errors


@settings_
@given(stream=backend_streams())
def test_psycopg_survives_malformed_backend_streams(pg, stream):
    pg.rules.clear()
    pg.clear_faults()
    pg.on(SQL).reply(columns={"y": "text"}, rows=[list(r) for r in ROWS], fault={"send": stream})

    def query():
        with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=3) as conn:
            return conn.execute(SQL).fetchall()

    kind, value = _bounded(query)
    assert kind == "ok" or isinstance(value, PSYCOPG_RAISES), repr(value)
