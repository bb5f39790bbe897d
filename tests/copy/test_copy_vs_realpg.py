"""fakepm's COPY next to a real PostgreSQL 15 and 18 (the oracles; fakepm announcing each one's
version): same rows, same options -> same bytes out; same bad input -> same SQLSTATE, message
and CONTEXT."""

import datetime as dt
import uuid
from decimal import Decimal

import psycopg
import pytest

from fakepm import FakePostgres

pytestmark = pytest.mark.realpg

COLUMNS = {"id": "int4", "name": "text", "price": "numeric", "at": "timestamptz", "day": "date", "ok": "bool",
           "blob": "bytea", "u": "uuid", "f": "float8", "tags": "text[]"}
DDL = ("CREATE TABLE IF NOT EXISTS items (id int4, name text, price numeric, at timestamptz, day date, ok bool, "
       "blob bytea, u uuid, f float8, tags text[])")
UTC = dt.timezone.utc
ROWS = [
    (1, 'plain "quoted", comma', Decimal("12.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
     dt.date(2024, 2, 29), True, b"\x00\xff\\", uuid.UUID(int=7), 0.1, ["a", "b c", None]),
    (2, "tab\tnewline\ncr\rbackslash\\ ✓", Decimal("-0.000001"), None, None, False, b"", None, -1e300, []),
    (None, "", None, dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), dt.date(1, 1, 1), None, None, None,
     float("inf"), None),
    (4, "\\.", Decimal("1e20"), None, None, None, None, None, None, ["{", "}", ","]),
]

OPTIONS = [
    "",
    "(FORMAT csv)",
    "(FORMAT csv, HEADER, FORCE_QUOTE *)",
    "(FORMAT csv, DELIMITER ';', NULL 'NULL', QUOTE '''', ESCAPE '\\')",
    "(FORMAT text, HEADER, DELIMITER '|', NULL '')",
    "(FORMAT binary)",
]


@pytest.fixture(scope="module")
def servers(oracle_pg):
    real_pg = oracle_pg
    with psycopg.connect(real_pg.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS items")
        c.execute(DDL)
        with c.cursor().copy("COPY items FROM STDIN (FORMAT binary)") as cp:
            cp.set_types(list(COLUMNS.values()))
            for r in ROWS:
                cp.write_row(r)
    with FakePostgres(version=real_pg.server_version) as fake:
        fake.table("items", COLUMNS, rows=ROWS)
        yield fake.dsn, real_pg.dsn
    with psycopg.connect(real_pg.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS items")


def copy_out(dsn: str, sql: str) -> bytes:
    with psycopg.connect(dsn, autocommit=True) as c:
        with c.cursor().copy(sql) as cp:
            return b"".join(bytes(b) for b in cp)


@pytest.mark.parametrize("options", OPTIONS)
def test_copy_to_stdout_is_byte_identical(servers, options):
    fake, real = servers
    sql = f"COPY items TO STDOUT {options}"
    assert copy_out(fake, sql) == copy_out(real, sql)


def test_copy_of_a_column_subset_is_byte_identical(servers):
    fake, real = servers
    sql = "COPY items (name, id) TO STDOUT (FORMAT csv, FORCE_QUOTE (id))"
    assert copy_out(fake, sql) == copy_out(real, sql)


BAD = [
    ("COPY items (id, name) FROM STDIN", b"1\tok\n2\n"),
    ("COPY items (id, name) FROM STDIN", b"1\tok\textra\n"),
    ("COPY items (id, day) FROM STDIN", b"1\t2024-02-30\n"),
    ("COPY items (id, ok) FROM STDIN (FORMAT csv)", b"1,maybe\n"),
    ("COPY items (id, price) FROM STDIN (FORMAT csv)", b'1,"12,5"\n'),
    ("COPY items (id, name) FROM STDIN (FORMAT csv)", b'1,"unterminated\n'),
    ("COPY items (id, name) FROM STDIN (FORMAT csv, HEADER match)", b"id,nom\n"),
    ("COPY items (id, name) FROM STDIN (FORMAT binary)", b"NOTPGCOPY"),
    ("COPY items (id, name) FROM STDIN", b"1\tx\r\n2\ty\n"),
    ("COPY items (id, name) FROM STDIN (FORMAT binary)",
     b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01"),
    ("COPY items (id, tags) FROM STDIN", b"1\t{a,b\n"),
    ("COPY items (id, u) FROM STDIN (FORMAT csv)", b"1,not-a-uuid\n"),
    ("COPY items (id, name) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (zz))", b""),
    ("COPY items (id, zz) FROM STDIN", b""),
    ("COPY items FROM STDIN (FORMAT csv, FORCE_QUOTE (id))", b""),
    # option errors PostgreSQL 18 words anew (fakepm answers in the announced version's words)
    ("COPY items FROM STDIN (QUOTE 'x')", b""),
    ("COPY items FROM STDIN (ESCAPE 'x')", b""),
    ("COPY items TO STDOUT (FORCE_QUOTE (id))", b""),
    ("COPY items FROM STDIN (FORCE_NOT_NULL (id))", b""),
    ("COPY items TO STDOUT (FORMAT csv, FORCE_NOT_NULL (id))", b""),
    ("COPY items FROM STDIN (FORCE_NULL (id))", b""),
    ("COPY items TO STDOUT (FORMAT csv, FORCE_NULL (id))", b""),
    ("COPY items FROM STDIN (DELIMITER ',', NULL 'a,b')", b""),
    ("COPY items FROM STDIN (FORMAT csv, NULL 'a\"b')", b""),
]


def diag_of(dsn: str, sql: str, data: bytes):
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            with c.cursor().copy(sql) as cp:
                if data:
                    cp.write(data)
        except psycopg.Error as e:
            d = e.diag
            return d.sqlstate, d.message_primary, d.context
    return None


@pytest.mark.parametrize("sql, data", BAD)
def test_bad_input_gets_the_same_error(servers, sql, data, oracle_pg):
    fake, real = servers
    expected = diag_of(real, sql, data)
    assert expected is not None
    assert diag_of(fake, sql, data) == expected


def _result(pgc, timeout=10.0):
    import select
    import time

    deadline = time.monotonic() + timeout
    while pgc.flush() != 0:
        assert time.monotonic() < deadline
        select.select([], [pgc.socket], [], 0.1)
    while pgc.is_busy():
        left = deadline - time.monotonic()
        assert left > 0, "no result in time"
        select.select([pgc.socket], [], [], left)
        pgc.consume_input()
    return pgc.get_result()


def copy_fail_diag(dsn: str, data: bytes):
    """libpq's PQputCopyEnd with an error message (CopyFail) after `data`."""
    from psycopg.pq import DiagnosticField as F

    with psycopg.connect(dsn, autocommit=True) as c:
        pgc = c.pgconn
        pgc.send_query(b"COPY items (id, name) FROM STDIN")
        assert _result(pgc).status == psycopg.pq.ExecStatus.COPY_IN
        if data:
            pgc.put_copy_data(data)
        pgc.put_copy_end(b"the client gave up")
        res = _result(pgc)
        out = tuple(res.error_field(f) for f in (F.SQLSTATE, F.MESSAGE_PRIMARY, F.CONTEXT))
        while _result(pgc) is not None:
            pass
        return out


@pytest.mark.parametrize("data", [b"", b"1\ta\n2\tb\n", b"1\ta\n2\t"])
def test_copy_fail_gets_the_same_error(servers, data):
    fake, real = servers
    expected = copy_fail_diag(real, data)
    assert expected[0] == b"57014"
    assert copy_fail_diag(fake, data) == expected
