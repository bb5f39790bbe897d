"""The fast paths of protocol/copyformat.py give the same bytes, rows and errors as the general ones.

Fast paths: encoders without coerce() (a row that fails is redone with it), columns whose text
output needs no escaping (unless the delimiter could occur in it), binary rows framed and typed in
one pass (a row cut by a CopyData boundary or holding a bad value is redone), text columns decoded
by bytes.decode (a bad byte is redone by the registry's decoder for PostgreSQL's message).
"""

import datetime as dt

import psycopg
import pytest

from fakepm.protocol.copyformat import CopyDataError, CopyOptions, decode_stream, encode_rows
from fakepm.protocol.types import REGISTRY

UTC = dt.timezone.utc
TYPES = [REGISTRY.by_name(n) for n in ("int8", "text", "timestamptz", "float8", "bool")]
NAMES = ["id", "name", "at", "x", "ok"]
ROWS = [
    (1, "plain", dt.datetime(2024, 1, 1, tzinfo=UTC), 1.5, True),
    (-2, "tab\there", dt.datetime(2024, 1, 1, 12, 30, 1, 120000, tzinfo=UTC), float("inf"), False),
    (None, None, None, None, None),
]
# values that need coerce(): a str for int8, an int for text, a naive and a +02 datetime, an int for float8
COERCED = [("3", 7, dt.datetime(2024, 1, 1, 2), 2, "t"),
           (4, "x", dt.datetime(2024, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))), 0.25, True)]


def test_text_output_with_minus_colon_or_space_delimiter_still_escapes_them():
    for delim in ("-", ":", " ", "I"):
        opts = CopyOptions.build({"delimiter": delim}, direction="out")
        data = encode_rows(opts, TYPES, NAMES, ROWS[1:2])
        assert data.count(b"\\" + delim.encode()) >= 1, (delim, data)
        assert decode_stream(CopyOptions.build({"delimiter": delim}), TYPES, NAMES, [data]) == ROWS[1:2]


@pytest.mark.parametrize("fmt", ["text", "binary", "csv"])
def test_rows_needing_coerce_encode_like_their_coerced_values(fmt):
    opts = CopyOptions.build({"format": fmt}, direction="out")
    coerced = [tuple(t.coerce(v) for t, v in zip(TYPES, r)) for r in COERCED]
    assert encode_rows(opts, TYPES, NAMES, COERCED) == encode_rows(opts, TYPES, NAMES, coerced)
    assert coerced[0][2] == dt.datetime(2024, 1, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_bad_value_in_a_row_still_raises_the_registry_error(fmt):
    opts = CopyOptions.build({"format": fmt}, direction="out")
    with pytest.raises(ValueError, match="bigint"):
        encode_rows(opts, TYPES, NAMES, [("nope", "a", None, None, None)])


def test_binary_rows_decode_at_every_split_point():
    opts = CopyOptions.build({"format": "binary"}, direction="out")
    data = encode_rows(opts, TYPES, NAMES, ROWS * 3)
    inn = CopyOptions.build({"format": "binary"})
    for cut in range(len(data)):
        assert decode_stream(inn, TYPES, NAMES, [data[:cut], data[cut:]]) == ROWS * 3, cut


def test_binary_bad_utf8_in_a_text_column_is_postgres_error_with_line_and_column():
    opts = CopyOptions.build({"format": "binary"}, direction="out")
    data = encode_rows(opts, TYPES[:2], NAMES[:2], [(1, "ok"), (2, "ok")])
    data = data[:-4] + b"o\xff" + data[-2:]  # the second row's name (before the trailer): same length
    with pytest.raises(CopyDataError) as e:
        decode_stream(CopyOptions.build({"format": "binary"}), TYPES[:2], NAMES[:2], [data])
    assert (e.value.sqlstate, e.value.line, e.value.column) == ("22021", 2, "name")


def test_text_bad_utf8_is_reported_by_the_registry_decoder():
    with pytest.raises(CopyDataError) as e:
        decode_stream(CopyOptions.build({}), TYPES[:2], NAMES[:2], [b"1\tok\n2\to\xff\n"])
    assert (e.value.sqlstate, e.value.line, e.value.column) == ("22021", 2, "name")
    assert "0xff" in e.value.message


@pytest.mark.parametrize("bad, code, column", [(b"12x\tn\n", "22P02", "id"), (b"1\n", "22P04", None),
                                               (b"1\tn\tx\n", "22P04", None)])
def test_text_block_typed_by_column_reports_the_bad_line(bad, code, column):
    good = b"".join(b"%d\tname-%d\n" % (i, i) for i in range(1, 50))
    rows = decode_stream(CopyOptions.build({}), TYPES[:2], NAMES[:2], [good])
    assert rows[48] == (49, "name-49")
    with pytest.raises(CopyDataError) as e:
        decode_stream(CopyOptions.build({}), TYPES[:2], NAMES[:2], [good + bad + good])
    assert (e.value.sqlstate, e.value.line, e.value.column) == (code, 50, column)


# ------------------------------------------------------------------- COPY TO batches (real client)
def _copy_out_rows(pg, rows):
    from fakepm.answers.copyspec import CopySpec
    from fakepm.answers.result import Result

    spec = CopySpec(direction="out", table="t", names=("a",), types=(REGISTRY.by_name("int4"),),
                    options=CopyOptions(), rows=rows)
    pg.on("COPY t TO STDOUT").respond(Result(copy=spec))
    got = []
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as e:
            with conn.cursor().copy("COPY t TO STDOUT") as cp:
                for row in cp.rows():
                    got.append(row)
    return got, e.value


def test_copy_to_sends_every_row_before_a_row_that_cannot_be_encoded():
    from fakepm import FakePostgres

    with FakePostgres() as pg:
        got, err = _copy_out_rows(pg, lambda: iter([(i,) for i in range(300)] + [("x",)] + [(1,)] * 10))
    assert len(got) == 300 and got[-1] == ("299",)
    assert "row 301" in str(err)


def test_copy_to_sends_every_row_before_its_source_fails():
    from fakepm import FakePostgres, PgError

    def rows():
        yield from ((i,) for i in range(300))
        raise PgError("22012", "division by zero")

    with FakePostgres() as pg:
        got, err = _copy_out_rows(pg, rows)
    assert len(got) == 300
    assert isinstance(err, psycopg.errors.DivisionByZero)


@pytest.mark.parametrize("fmt", ["text", "binary", "csv"])
@pytest.mark.parametrize("batch", [ROWS[:1], ROWS[:2], ROWS, COERCED, ROWS[:1] * 5 + COERCED, [(1, "a\\b", None, 2.0, True)]])
def test_encoder_rows_by_column_equal_row_by_row(fmt, batch):
    from fakepm.protocol.copyformat import CopyEncoder

    enc = CopyEncoder(CopyOptions.build({"format": fmt}, direction="out"), TYPES, NAMES)
    assert enc.rows(batch) == [enc.row(r) for r in batch]


@pytest.mark.parametrize("fmt", ["text", "binary", "csv"])
def test_a_row_of_another_length_is_refused_not_written_short(fmt):
    from fakepm.protocol.copyformat import CopyDataError, CopyEncoder

    enc = CopyEncoder(CopyOptions.build({"format": fmt}, direction="out"), TYPES, NAMES)
    for batch in ([(1, "a", None, 2.0, True), (2, "b")], [(2, "b")]):
        with pytest.raises(CopyDataError, match="a row has 2 values for the 5 columns"):
            enc.rows(batch)
