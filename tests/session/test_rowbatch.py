"""session/rowbatch: a batch of rows encoded column by column is byte-identical to encode_row per row.

Bytes in, bytes out: RowBatchEncoder.encode(rows) against the per-row encoder (encode_row, which
frames with messages.data_row) for arbitrary rows of the core types in text and binary, NULLs,
values that need coerce() (naive datetimes, ints for text...), and rows that cannot be encoded
(the rows before the bad one come back with the per-row error).
"""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from hypothesis import given, settings, strategies as st

from fakepm import strategies as fst
from fakepm.answers.result import make_columns
from fakepm.protocol import messages as m
from fakepm.protocol.errors import PgError
from fakepm.session.encode import encode_row
from fakepm.session.rowbatch import RowBatchEncoder, take_rows

CORE = {"i8": "int8", "i4": "int4", "i2": "int2", "t": "text", "ts": "timestamp", "tz": "timestamptz",
        "b": "bool", "f": "float8", "n": "numeric", "d": "date", "by": "bytea", "v": "varchar"}
COLUMNS = make_columns(CORE)


def per_row(columns, formats, rows) -> bytes:
    batcher = RowBatchEncoder(columns, formats)  # the same encoders; framed one row at a time
    return b"".join(encode_row(batcher.encoders, r, columns) for r in rows)


@settings(max_examples=150, deadline=None)
@given(rows=fst.rows(CORE, min_size=1, max_size=40), fmt=st.sampled_from([0, 1]))
def test_batch_equals_per_row_for_core_types(rows, fmt):
    formats = (fmt,) * len(COLUMNS)
    data, n, err = RowBatchEncoder(COLUMNS, formats).encode(rows)
    assert err is None and n == len(rows)
    assert data == per_row(COLUMNS, formats, rows)
    assert len(m.split_backend_stream(data)) == len(rows)


@settings(max_examples=60, deadline=None)
@given(rows=fst.rows({"a": "int8", "b": "timestamptz"}, min_size=1, max_size=30, nulls=False),
       formats=st.tuples(st.sampled_from([0, 1]), st.sampled_from([0, 1])))
def test_mixed_formats_without_nulls(rows, formats):
    cols = make_columns({"a": "int8", "b": "timestamptz"})
    assert RowBatchEncoder(cols, formats).encode(rows)[0] == per_row(cols, formats, rows)


def test_datarow_layout_by_hand():
    cols = make_columns({"id": "int8", "name": "text"})
    data, n, err = RowBatchEncoder(cols, (0, 0)).encode([(1, "a"), (22, None), (333, "")])
    assert (n, err) == (3, None)
    assert data == (b"D" + struct.pack("!ih", 4 + 2 + 4 + 1 + 4 + 1, 2) + struct.pack("!i", 1) + b"1"
                    + struct.pack("!i", 1) + b"a"
                    + b"D" + struct.pack("!ih", 4 + 2 + 4 + 2 + 4, 2) + struct.pack("!i", 2) + b"22" + b"\xff\xff\xff\xff"
                    + b"D" + struct.pack("!ih", 4 + 2 + 4 + 3 + 4, 2) + struct.pack("!i", 3) + b"333"
                    + struct.pack("!i", 0))


def test_values_needing_coerce_encode_as_the_registry_does():
    cols = make_columns({"id": "int8", "name": "text", "at": "timestamptz", "ts": "timestamp"})
    rows = [("7", 12, dt.datetime(2024, 1, 1, 5), dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
            (8.0, True, dt.date(2024, 2, 29), "2024-03-01 10:00:00.5"),
            (9, "x", float("inf"), float("-inf"))]
    for fmt in (0, 1):
        formats = (fmt,) * 4
        data, n, err = RowBatchEncoder(cols, formats).encode(rows)
        assert (n, err) == (3, None)
        assert data == per_row(cols, formats, rows)


def test_a_bad_value_returns_the_rows_before_it_and_the_per_row_error():
    cols = make_columns({"id": "int8", "name": "text"})
    rows = [(1, "a"), (2, "b"), ("not a number", "c"), (4, "d")]
    data, n, err = RowBatchEncoder(cols, (0, 0)).encode(rows)
    assert n == 2 and data == per_row(cols, (0, 0), rows[:2])
    with pytest.raises(PgError) as ref:
        encode_row(RowBatchEncoder(cols, (0, 0)).encoders, rows[2], cols)
    assert isinstance(err, PgError) and (err.code, err.message) == (ref.value.code, ref.value.message)
    assert err.code == "XX000" and "'not a number'" in err.message and "'id'" in err.message


def test_a_row_of_another_length_is_an_error_after_the_rows_before_it():
    cols = make_columns({"id": "int8", "name": "text"})
    for bad in [(2,), (2, "b", "extra")]:
        data, good, err = RowBatchEncoder(cols, (0, 0)).encode([(1, "a"), bad, (3, "c")])
        assert (data, good) == (per_row(cols, (0, 0), [(1, "a")]), 1)
        assert err.code == "XX000" and f"a row has {len(bad)} values for the 2 columns (id, name)" in err.message
    assert RowBatchEncoder(cols, (0, 0)).encode([])[:2] == (b"", 0)


def test_take_rows_keeps_the_rows_before_a_failing_source():
    def source():
        yield 1
        yield 2
        raise ValueError("boom")

    it = source()
    batch, failure = take_rows(it, 10)
    assert batch == [1, 2] and isinstance(failure, ValueError)
    assert take_rows(iter(range(5)), 3) == ([0, 1, 2], None)
    assert take_rows(iter(range(2)), 3) == ([0, 1], None)


# ------------------------------------------------------------------------------ COPY TO framing
from fakepm.protocol.copyformat import CopyEncoder, CopyOptions  # noqa: E402
from fakepm.protocol.types import REGISTRY  # noqa: E402
from fakepm.session.rowbatch import CopyOutFramer  # noqa: E402

COPY_TYPES = {"i8": "int8", "t": "text", "tz": "timestamptz", "i4": "int4", "by": "bytea", "f": "float8"}


def copy_per_row(enc: CopyEncoder, rows) -> bytes:
    return b"".join(m.copy_data(enc.row(r)) for r in rows)


@settings(max_examples=120, deadline=None)
@given(rows=fst.rows(COPY_TYPES, min_size=1, max_size=30, nulls=False) | fst.rows(COPY_TYPES, min_size=1, max_size=5), fmt=st.sampled_from(["text", "binary"]),
       delimiter=st.sampled_from(["\t", ",", "|"]))
def test_copy_out_batch_equals_one_copydata_per_row(rows, fmt, delimiter):
    opts = CopyOptions(format=fmt, delimiter=delimiter) if fmt == "text" else CopyOptions(format=fmt)
    enc = CopyEncoder(opts, [REGISTRY.by_name(t) for t in COPY_TYPES.values()], list(COPY_TYPES))
    framed = CopyOutFramer(enc).frame(rows)
    if framed is None:  # a NULL or a value needing escapes: the caller goes row by row
        assert any(None in r for r in rows) or fmt == "text"
        return
    assert framed == copy_per_row(enc, rows)
    assert len(m.split_backend_stream(framed)) == len(rows)


def test_copy_out_framer_takes_plain_batches_and_declines_irregular_ones():
    types = [REGISTRY.by_name(t) for t in ("int8", "text", "timestamptz")]
    rows = [(i, f"name-{i}", dt.datetime(2024, 1, 1, 0, 0, i % 60, (i % 3) * 10, tzinfo=dt.timezone.utc))
            for i in range(50)]
    for fmt in ("text", "binary"):
        enc = CopyEncoder(CopyOptions(format=fmt), types, ["id", "name", "at"])
        assert CopyOutFramer(enc).frame(rows) == copy_per_row(enc, rows)
    text = CopyEncoder(CopyOptions(format="text"), types, ["id", "name", "at"])
    assert CopyOutFramer(text).frame(rows + [(1, "tab\there", None)]) is None  # NULL
    assert CopyOutFramer(text).frame([(1, "back\\slash", rows[0][2])]) is None  # needs an escape
    assert CopyOutFramer(text).frame([(1, "x", "not a time")]) is None  # row by row names the error
    assert CopyOutFramer(CopyEncoder(CopyOptions(format="csv"), types, ["id", "name", "at"])).frame(rows) is None


# ------------------------------------------------------------------------------ whole-column encoders
def _column_encoder(type_name: str):
    raw = REGISTRY.by_name(type_name).encode_text.__wrapped__
    return raw, raw.column


whole_seconds = st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=120, deadline=None)
@given(col=st.lists(whole_seconds, min_size=1, max_size=40), aware=st.booleans())
def test_timestamp_column_encoders_equal_the_value_encoder(col, aware):
    name = "timestamptz" if aware else "timestamp"
    if aware:
        col = [d.replace(tzinfo=dt.timezone.utc) for d in col]
    raw, column = _column_encoder(name)
    assert column(tuple(col)) == list(map(raw, col))


def test_timestamp_column_encoders_decline_what_they_do_not_cover():
    _, tz_column = _column_encoder("timestamptz")
    _, ts_column = _column_encoder("timestamp")
    utc = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert tz_column((utc, utc.replace(microsecond=5))) is None  # a fraction: trimmed value by value
    assert tz_column((utc, utc.astimezone(dt.timezone(dt.timedelta(hours=2))))) is None  # another zone
    assert tz_column((utc, float("inf"))) is None
    assert tz_column((utc.replace(tzinfo=None),)) is None  # naive for timestamptz: coerce()
    assert ts_column((utc,)) is None and ts_column((dt.date(2024, 1, 1),)) is None


@settings(max_examples=120, deadline=None)
@given(col=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40),
       name=st.sampled_from(["int8", "int4", "int2", "oid"]))
def test_integer_column_encoders_equal_the_value_encoder_or_decline(col, name):
    raw, column = _column_encoder(name)
    try:
        expected = list(map(raw, col))
    except Exception:  # noqa: BLE001 - out of range for this type: the column encoder declines too
        expected = None
    assert column(tuple(col)) == expected
    assert column((1, True)) is None and column((1, 2.0)) is None
