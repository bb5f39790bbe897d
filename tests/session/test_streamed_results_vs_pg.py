"""Streamed (generated) results and COPY TO over real sockets, byte for byte against PostgreSQL 15.

fakepm answers a generator rule (rows made while they are sent, encoded a batch at a time by
session/rowbatch.py); the real server runs SQL that makes the same rows. The clients read the
raw bytes of every value (psycopg 3 text and binary, asyncpg binary: loaders/codecs that return
the wire bytes), so the comparison is byte-level: timestamps with fractions PostgreSQL trims
(.5, .123, .000001, .999999), years before 1000, the infinities, negative and wide integers,
non-ASCII text, NULLs. psql's COPY TO output (text, csv, binary) is compared as bytes too.
Errors mid-stream: the rows before the failing one reach the client, then the error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess

import asyncpg
import psycopg
import pytest
from psycopg.adapt import Loader
from psycopg.pq import Format

from fakepm import FakePostgres, PgError
from realpg import needs_install

N = 12_000  # several batches of rows and several 256 KiB output rounds (OUTPUT_FULL)
UTC = dt.timezone.utc
MICROS = [0, 123000, 500000, 1, 999999]
BASE_TZ = dt.datetime(2024, 1, 1, tzinfo=UTC)
BASE_TS = dt.datetime(900, 1, 1)  # a year below 1000: PostgreSQL pads it to 4 digits

COLUMNS = {"id": "int8", "n4": "int4", "name": "text", "at": "timestamptz", "ts": "timestamp"}
OIDS = {"int8": 20, "int4": 23, "text": 25, "timestamptz": 1184, "timestamp": 1114}


def fake_rows(n: int = N):
    def rows():
        for i in range(1, n + 1):
            delta = dt.timedelta(days=i * 37 % 5000, seconds=i, microseconds=MICROS[i % 5])
            yield (
                None if 5000 <= i < 5100 else -(2**63) if i == 2 else 2**63 - 1 if i == 6 else i * 7919 - 100_000,
                i % 2000 - 1000,
                None if i % 7 == 0 else f"name-{i}" + "é" * (i % 3),
                float("inf") if i == 3 else float("-inf") if i == 4 else BASE_TZ + delta,
                BASE_TS + delta,
            )
    return rows


def real_sql(n: int = N) -> str:
    delta = ("make_interval(days => i * 37 % 5000, secs => i) "
             f"+ (ARRAY{MICROS})[i % 5 + 1] * interval '1 microsecond'")
    return (
        "SELECT CASE WHEN i >= 5000 AND i < 5100 THEN NULL "
        "WHEN i = 2 THEN -9223372036854775807 - 1 WHEN i = 6 THEN 9223372036854775807 "
        "ELSE i::int8 * 7919 - 100000 END AS id, "
        "(i % 2000 - 1000)::int4 AS n4, "
        "CASE WHEN i % 7 = 0 THEN NULL ELSE 'name-' || i || repeat('é', i % 3) END AS name, "
        "CASE WHEN i = 3 THEN 'infinity'::timestamptz WHEN i = 4 THEN '-infinity'::timestamptz "
        f"ELSE timestamptz '2024-01-01 00:00:00+00' + {delta} END AS at, "
        f"timestamp '0900-01-01 00:00:00' + {delta} AS ts "
        f"FROM generate_series(1, {n}) AS i"
    )


SQL = "SELECT id, n4, name, at, ts FROM generated"


@pytest.fixture(scope="module")
def fake():
    with FakePostgres() as pg:
        pg.on(SQL).reply(columns=COLUMNS, rows=fake_rows())
        yield pg


@pytest.fixture(scope="module")
def oracle(oracle_pg):
    """PostgreSQL 15, then 18 (fakepm's answers do not depend on the version it announces here)."""
    oracle_pg.psql(f"DROP VIEW IF EXISTS generated; CREATE VIEW generated AS {real_sql()}")
    yield oracle_pg
    oracle_pg.psql("DROP VIEW IF EXISTS generated")


class RawText(Loader):
    format = Format.TEXT

    def load(self, data):
        return bytes(data)


class RawBinary(Loader):
    format = Format.BINARY

    def load(self, data):
        return bytes(data)


def psycopg_raw(dsn: str, binary: bool, sql: str = SQL) -> list:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for oid in OIDS.values():
            conn.adapters.register_loader(oid, RawBinary if binary else RawText)
        return conn.cursor(binary=binary).execute(sql).fetchall()


@pytest.mark.realpg
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg_reads_the_same_bytes_as_from_postgresql(fake, oracle, binary):
    got, want = psycopg_raw(fake.dsn, binary), psycopg_raw(oracle.dsn, binary)
    assert len(got) == len(want) == N
    bad = [(i + 1, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{len(bad)} rows differ, first: {bad[:3]}"


def asyncpg_raw(dsn: str, prefetch: int | None = None) -> list:
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET TimeZone = 'UTC'")
            for name in OIDS:
                await conn.set_type_codec(name, schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary")
            if prefetch is None:
                return [tuple(r) for r in await conn.fetch(SQL)]
            async with conn.transaction():  # Execute with a row limit: PortalSuspended between batches
                return [tuple(r) async for r in conn.cursor(SQL, prefetch=prefetch)]
        finally:
            await conn.close()

    return asyncio.run(main())


@pytest.mark.realpg
def test_asyncpg_reads_the_same_bytes_as_from_postgresql(fake, oracle):
    got, want = asyncpg_raw(fake.dsn), asyncpg_raw(oracle.dsn)
    assert len(got) == N and got == want


def test_asyncpg_cursor_prefetch_gets_every_row_once(fake):
    # Execute(max_rows=333) over and over: each batch stops at the limit, the next resumes the generator
    whole = asyncpg_raw(fake.dsn)
    assert asyncpg_raw(fake.dsn, prefetch=333) == whole
    assert len(whole) == N


def psql_copy(dsn: str, options: str) -> bytes:
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c",
                          "SET TimeZone = 'UTC'", "-c", f"COPY ({SQL}) TO STDOUT{options}"],
                         capture_output=True, timeout=60, check=True)
    return out.stdout


@pytest.mark.realpg
@needs_install(shutil.which("psql") is None, reason="psql is not installed")
@pytest.mark.parametrize("options", ["", " (FORMAT binary)", " (FORMAT csv)", " (DELIMITER '|', NULL 'nil')"],
                         ids=["text", "binary", "csv", "delimiter-null"])
def test_psql_copy_to_stdout_is_byte_identical(fake, oracle, options):
    got, want = psql_copy(fake.dsn, options), psql_copy(oracle.dsn, options)
    assert len(want) > 100_000
    if got != want:
        at = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b) if len(got) == len(want) else None
        pytest.fail(f"COPY output differs (fakepm {len(got)} bytes, PostgreSQL {len(want)}; first at {at}): "
                    f"{got[at - 40:at + 40] if at else got[-80:]!r} vs {want[at - 40:at + 40] if at else want[-80:]!r}")


# ------------------------------------------------------------------------------ errors mid-stream
def _failing_rows(n_ok: int, how: str):
    def rows():
        for i in range(1, n_ok + 1):
            yield (i, f"row-{i}")
        if how == "raise":
            raise PgError("22012", "division by zero")
        if how == "short row":
            yield (n_ok + 1,)  # one value for two columns: an error, never a short DataRow
        yield ("not a number", "bad")  # cannot be encoded as int8
        yield (n_ok + 2, "never sent")
    return rows


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("how", ["raise", "bad value", "short row"])
def test_rows_before_a_failure_reach_the_client_then_the_error(binary, how):
    n_ok = 1234  # not a multiple of a batch
    with FakePostgres() as pg:
        pg.on("SELECT id, name FROM failing").reply(columns={"id": "int8", "name": "text"},
                                                    rows=_failing_rows(n_ok, how))
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            got = []
            with pytest.raises(psycopg.Error) as err:
                for row in conn.cursor(binary=binary).stream("SELECT id, name FROM failing"):
                    got.append(row)
            assert got == [(i, f"row-{i}") for i in range(1, n_ok + 1)]
            if how == "raise":
                assert err.value.sqlstate == "22012" and "division by zero" in str(err.value)
            elif how == "short row":
                assert err.value.sqlstate == "XX000"
                assert "a row has 1 values for the 2 columns (id, name)" in str(err.value)
            else:
                assert err.value.sqlstate == "XX000"
                assert "'not a number'" in str(err.value) and "'id'" in str(err.value)
            assert conn.execute("SELECT 1").fetchone() == (1,)  # the session goes on


@pytest.mark.parametrize("how", ["bad value", "short row"])
def test_copy_to_a_source_failing_mid_stream_sends_the_rows_before_it(how):
    n_ok = 777
    with FakePostgres() as pg:
        pg.on("SELECT id, name FROM failing").reply(columns={"id": "int8", "name": "text"},
                                                    rows=_failing_rows(n_ok, how))
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            lines = []
            with pytest.raises(psycopg.Error) as err:
                with conn.cursor().copy("COPY (SELECT id, name FROM failing) TO STDOUT") as cp:
                    for row in cp.rows():
                        lines.append(row)
            assert lines == [(str(i), f"row-{i}") for i in range(1, n_ok + 1)]
            assert err.value.sqlstate == "XX000"
            if how == "short row":  # never a line with fewer fields
                assert "a row has 1 values for the 2 columns (id, name)" in str(err.value)


# ------------------------------------------------------------------------------ zones and coerce()
ZONED = [  # (value given to the rule, the same instant as a PostgreSQL literal)
    (dt.datetime(2024, 3, 10, 1, 59, 59, 500000, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
     "2024-03-10 01:59:59.5-08"),
    (dt.datetime(2024, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))), "2024-01-01 00:00+05:30"),
    (dt.datetime(1999, 12, 31, 23, 59, 59, 999999), "1999-12-31 23:59:59.999999+00"),  # naive: the session zone
    (dt.datetime(1, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))), "0001-01-01 11:00+00"),
    (dt.date(2024, 2, 29), "2024-02-29 00:00+00"),
    ("2024-06-01 12:34:56.78+02", "2024-06-01 12:34:56.78+02"),
]


@pytest.mark.realpg
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_values_in_other_zones_and_coerced_values_match_postgresql(oracle, binary):
    sql = "SELECT at FROM zoned"
    real_sql = "SELECT at FROM (VALUES " + ", ".join(f"({i}, timestamptz '{lit}')" for i, (_, lit) in
                                                      enumerate(ZONED)) + ") AS v(i, at) ORDER BY i"
    with FakePostgres() as pg:
        pg.on(sql).reply(columns={"at": "timestamptz"}, rows=lambda: iter([(v,) for v, _ in ZONED] * 3))
        got = psycopg_raw(pg.dsn, binary, sql)
    want = psycopg_raw(oracle.dsn, binary, real_sql) * 3
    assert got == want


# ------------------------------------------------------------------------------ cancel
def test_cancel_stops_an_endless_generated_result():
    def endless():
        i = 0
        while True:
            i += 1
            yield (i, "x" * 50)

    with FakePostgres() as pg:
        pg.on("SELECT id, pad FROM endless").reply(columns={"id": "int8", "pad": "text"}, rows=endless)
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            seen = 0
            with pytest.raises(psycopg.errors.QueryCanceled):
                for row in conn.cursor().stream("SELECT id, pad FROM endless"):
                    seen += 1
                    assert row[0] == seen  # in order, none skipped across batches
                    if seen == 20_000:
                        conn.cancel_safe(timeout=10)
                    assert seen < 5_000_000, "the cancel was not honoured"
            assert seen >= 20_000
            assert conn.execute("SELECT 1").fetchone() == (1,)
