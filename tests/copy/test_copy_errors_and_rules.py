"""COPY errors as PostgreSQL reports them, and rules that override the builtin COPY answer."""

import socket
import struct

import psycopg
import pytest

from fakepm import FakePostgres, PgError
from fakepm.answers.copyspec import CopyFault, CopySpec
from fakepm.answers.result import Result
from fakepm.protocol.copyformat import CopyOptions
from fakepm.protocol.types import REGISTRY


@pytest.fixture
def pg():
    with FakePostgres() as server:
        server.table("t", {"a": "int4", "b": "text"})
        yield server


def copy_in(pg, sql, data: bytes, autocommit=True):
    with psycopg.connect(pg.dsn, autocommit=autocommit) as conn:
        with conn.cursor().copy(sql) as cp:
            cp.write(data)


@pytest.mark.parametrize(
    "data, code, message, context",
    [
        (b"1\tx\n2\n", "22P04", 'missing data for column "b"', 'COPY t, line 2: "2"'),
        (b"1\tx\textra\n", "22P04", "extra data after last expected column", 'COPY t, line 1: "1\tx\textra"'),
        (b"1\tok\nzz\tx\n", "22P02", 'invalid input syntax for type integer: "zz"', 'COPY t, line 2, column a: "zz"'),
    ],
)
def test_bad_rows_are_answered_like_postgres_and_nothing_is_loaded(pg, data, code, message, context):
    with pytest.raises(psycopg.Error) as e:
        copy_in(pg, "COPY t FROM STDIN", data)
    d = e.value.diag
    assert (d.sqlstate, d.message_primary, d.context) == (code, message, context)
    rec = pg.copies[-1]
    assert rec.rows == [] and rec.count == 0 and rec.error.startswith(code)


def test_error_in_the_middle_of_a_big_copy_leaves_the_connection_usable(pg):
    data = b"".join(b"%d\tok\n" % i for i in range(50_000)) + b"bad\tx\n" + b"1\tafter\n" * 50_000
    with psycopg.connect(pg.dsn) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with conn.cursor().copy("COPY t FROM STDIN") as cp:
                for i in range(0, len(data), 10_000):
                    cp.write(data[i:i + 10_000])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pg.copies[-1].error == '22P02 invalid input syntax for type integer: "bad"'


def test_copy_fail_from_the_client_is_57014(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(RuntimeError):
            with conn.cursor().copy("COPY t FROM STDIN") as cp:
                cp.write(b"1\tx\n")
                raise RuntimeError("abort copy")
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pg.copies[-1].error == "57014 COPY from stdin failed: error from Python: RuntimeError - abort copy"
    assert pg.copies[-1].rows == []


def test_statement_errors_name_what_is_wrong(pg):
    for sql, code, message in [
        ("COPY t (a, zz) FROM STDIN", "42703", 'column "zz" of relation "t" does not exist'),
        ("COPY t FROM STDIN (FORMAT xml)", "22023", 'COPY format "xml" not recognized'),
        ("COPY t FROM STDIN (FORMAT binary, DELIMITER ',')", "42601", "cannot specify DELIMITER in BINARY mode"),
        ("COPY t FROM '/etc/passwd'", "0A000", "fakepm: COPY FROM a server file is not supported"),
    ]:
        with pytest.raises(psycopg.Error) as e:
            copy_in(pg, sql, b"")
        assert (e.value.diag.sqlstate, e.value.diag.message_primary) == (code, message)


def test_copy_to_an_undeclared_table_without_a_rule_is_unmatched(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as e:
            with conn.cursor().copy("COPY nosuch TO STDOUT") as cp:
                list(cp)
    assert e.value.diag.sqlstate == "FP000"
    with pytest.raises(AssertionError, match="COPY nosuch TO STDOUT"):
        pg.verify()


def test_copy_from_an_undeclared_table_keeps_text_fields(pg):
    copy_in(pg, "COPY loose FROM STDIN", b"1\tx\ty\n\\N\n")
    assert pg.copies[-1].rows == [("1", "x", "y"), (None,)]


def test_rules_override_the_builtin(pg):
    pg.on("COPY t FROM STDIN").error("42501", "permission denied for table t")
    pg.on("COPY events FROM STDIN (FORMAT csv)", columns={"id": "int8", "at": "timestamptz"}).reply(
        columns={"id": "int8", "at": "timestamptz"})
    pg.on("COPY t TO STDOUT").reply(columns={"a": "int4", "b": "text"}, rows=[[1, "from rule"]])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        copy_in(pg, "COPY t FROM STDIN", b"1\tx\n")
    copy_in(pg, "COPY events FROM STDIN (FORMAT csv)", b"7,2024-01-02 03:04:05+02\n")
    import datetime as dt

    assert pg.copies[-1].rows == [(7, dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.timezone.utc))]
    assert pg.copies[-1].columns == ["id", "at"]
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY t TO STDOUT") as cp:
            assert list(cp.rows()) == [("1", "from rule")]
    pg.verify()


def test_copy_in_inside_a_transaction_with_an_error_fails_the_transaction(pg):
    with psycopg.connect(pg.dsn) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(psycopg.errors.BadCopyFileFormat):
            with conn.cursor().copy("COPY t FROM STDIN") as cp:
                cp.write(b"1\n")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")


# ---------------------------------------------------------------------------------- fault seam
def test_fault_seam_copy_out_disconnects_after_n_rows(pg):
    spec = CopySpec(direction="out", table="t", names=("a",), types=(REGISTRY.by_name("int4"),),
                    options=CopyOptions(), rows=lambda: iter([(i,) for i in range(100)]),
                    fault=CopyFault(after_rows=3, disconnect=True))
    pg.on("COPY t TO STDOUT").respond(Result(copy=spec))
    got = []
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.OperationalError):
            with conn.cursor().copy("COPY t TO STDOUT") as cp:
                for row in cp.rows():
                    got.append(row)
    assert got == [("0",), ("1",), ("2",)]


def test_fault_seam_copy_in_errors_after_n_rows(pg):
    spec = CopySpec(direction="in", table="t", names=("a", "b"),
                    types=(REGISTRY.by_name("int4"), REGISTRY.by_name("text")), options=CopyOptions(),
                    fault=CopyFault(after_rows=2, error=PgError("53100", "could not extend file: No space left")))
    pg.on("COPY t FROM STDIN").respond(Result(copy=spec))
    with pytest.raises(psycopg.errors.DiskFull):
        copy_in(pg, "COPY t FROM STDIN", b"1\ta\n2\tb\n3\tc\n")
    assert pg.copies[-1].rows == []


# ---------------------------------------------------------------------------------- raw bytes
def _msg(t: bytes, body: bytes) -> bytes:
    return t + struct.pack("!i", len(body) + 4) + body


def _read_until_ready(sock) -> list:
    buf, out = b"", []
    while True:
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        buf += chunk
        while len(buf) >= 5:
            t, n = buf[:1], struct.unpack("!i", buf[1:5])[0]
            if len(buf) < n + 1:
                break
            out.append((t, buf[5:n + 1]))
            buf = buf[n + 1:]
            if t == b"Z":
                return out


def test_copy_in_response_formats_and_byte_at_a_time_copy_data(pg):
    sock = socket.create_connection(("127.0.0.1", pg.port), timeout=10)
    try:
        params = b"user\0postgres\0database\0postgres\0\0"
        sock.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
        _read_until_ready(sock)
        sock.sendall(_msg(b"Q", b"COPY t FROM STDIN (FORMAT binary)\0"))
        assert sock.recv(5 + 7) == _msg(b"G", b"\x01\x00\x02\x00\x01\x00\x01")
        from fakepm.protocol.copyformat import encode_rows

        data = encode_rows(CopyOptions(format="binary"), [REGISTRY.by_name("int4"), REGISTRY.by_name("text")],
                           ["a", "b"], [(1, "x"), (None, "é")])
        sock.sendall(b"".join(_msg(b"d", data[i:i + 1]) for i in range(len(data))) + _msg(b"H", b"")
                     + _msg(b"c", b""))
        msgs = _read_until_ready(sock)
        assert msgs == [(b"C", b"COPY 2\0"), (b"Z", b"I")]
        assert pg.copies[-1].rows == [(1, "x"), (None, "é")]
    finally:
        sock.close()


def test_copy_out_in_an_encoding_that_cannot_hold_a_character(pg):
    pg.table("u", {"s": "text"}, rows=[["café"], ["✓"]])
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY u TO STDOUT (ENCODING 'latin1')") as cp:
            first = bytes(next(iter(cp)))
            with pytest.raises(psycopg.Error) as e:
                list(cp)
    assert first == b"caf\xe9\n"
    assert (e.value.diag.sqlstate, e.value.diag.message_primary) == (
        "22P05", 'character with byte sequence 0xe2 0x9c 0x93 in encoding "UTF8" has no equivalent in encoding '
                 '"LATIN1"')


def test_a_rule_without_columns_on_copy_to_an_undeclared_table_sends_no_rows(pg):
    pg.on("COPY ghost (x) TO STDOUT").reply(tag="COPY 0")
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY ghost (x) TO STDOUT") as cp:
            assert list(cp) == []
    pg.verify()


def test_yaml_tables_type_copy_in_and_feed_copy_out(tmp_path):
    from decimal import Decimal

    path = tmp_path / "shop.yaml"
    path.write_text("tables:\n  public.products:\n    columns: {id: int4, name: text, price: \"numeric(10,2)\"}\n"
                    "    rows:\n      - [1, Widget, \"9.99\"]\n")
    with FakePostgres(path) as pg, psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY products TO STDOUT (FORMAT csv)") as cp:
            assert b"".join(bytes(b) for b in cp) == b"1,Widget,9.99\n"
        with conn.cursor().copy("COPY public.products (price, id) FROM STDIN") as cp:
            cp.write(b"2.50\t2\n")
        assert pg.copies[-1].rows == [(Decimal("2.50"), 2)]


def test_copy_from_where_is_kept_in_the_journal_not_evaluated(pg):
    copy_in(pg, "COPY t FROM STDIN WHERE a > 1", b"1\tx\n2\ty\n")
    rec = pg.copies[-1]
    assert rec.options["where"] == "a > 1"
    assert rec.rows == [(1, "x"), (2, "y")]  # fakepm does not filter: every row sent is journaled
