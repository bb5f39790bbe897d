"""protocol/copyformat.py, sans-I/O: bytes in, rows out (and back), every chunk split.

Expected bytes were produced by a real PostgreSQL 15 for the same rows (table t(a int, b text)
holding (1, E'a\\tb\\\\c\\nd'), (NULL, ''), (2, 'q"x,y'), (3, '\\.'), (4, NULL)).
"""

import pytest

from fakepm.protocol.copyformat import (
    CopyDataError,
    CopyDecoder,
    CopyOptionError,
    CopyOptions,
    decode_stream,
    encode_rows,
    python_encoding,
)
from fakepm.protocol.types import REGISTRY

INT4, TEXT = REGISTRY.by_name("int4"), REGISTRY.by_name("text")
TYPES, NAMES = [INT4, TEXT], ["a", "b"]
ROWS = [(1, "a\tb\\c\nd"), (None, ""), (2, 'q"x,y'), (3, "\\."), (4, None)]

PG_TEXT = b'1\ta\\tb\\\\c\\nd\n\\N\t\n2\tq"x,y\n3\t\\\\.\n4\t\\N\n'
PG_TEXT_HEADER = b"a\tb\n" + PG_TEXT
PG_CSV_HEADER = b'a,b\n1,"a\tb\\c\nd"\n,""\n2,"q""x,y"\n3,\\.\n4,\n'
PG_CSV_FORCE_QUOTE_ALL = b'"1","a\tb\\c\nd"\n,""\n"2","q""x,y"\n"3","\\."\n"4",\n'
PG_CSV_ONE_COLUMN = b'"a\tb\\c\nd"\n""\n"q""x,y"\n"\\."\n\n'
PG_PIPE_NIL = b'1|a\\tb\\\\c\\nd\nnil|\n2|q"x,y\n3|\\\\.\n4|nil\n'
PG_BINARY = (
    b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00"
    b"\x07a\tb\\c\nd\x00\x02\xff\xff\xff\xff\x00\x00\x00\x00\x00\x02\x00\x00\x00\x04\x00\x00\x00\x02\x00\x00"
    b'\x00\x05q"x,y\x00\x02\x00\x00\x00\x04\x00\x00\x00\x03\x00\x00\x00\x02\\.\x00\x02\x00\x00\x00\x04\x00'
    b"\x00\x00\x04\xff\xff\xff\xff\xff\xff"
)


def opts(direction="in", **given):
    return CopyOptions.build(given, direction=direction)


def splits(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    "options, data",
    [
        ({}, PG_TEXT),
        ({"header": True}, PG_TEXT_HEADER),
        ({"format": "csv", "header": True}, PG_CSV_HEADER),
        ({"format": "csv", "force_quote": "*"}, PG_CSV_FORCE_QUOTE_ALL),
        ({"delimiter": "|", "null": "nil"}, PG_PIPE_NIL),
        ({"format": "binary"}, PG_BINARY),
    ],
    ids=["text", "text-header", "csv-header", "csv-force-quote", "pipe-nil", "binary"],
)
def test_encode_is_byte_identical_to_postgres_and_decodes_back_at_any_split(options, data):
    assert encode_rows(opts("out", **options), TYPES, NAMES, ROWS) == data
    in_options = {k: v for k, v in options.items() if k != "force_quote"}
    for size in (1, 2, 3, 5, 8, 13, len(data)):
        assert decode_stream(opts(**in_options), TYPES, NAMES, splits(data, size)) == ROWS, size


def test_csv_single_column_quotes_the_end_marker_and_empty_string():
    rows = [(r[1],) for r in ROWS]
    assert encode_rows(opts("out", format="csv"), [TEXT], ["b"], rows) == PG_CSV_ONE_COLUMN
    assert decode_stream(opts(format="csv"), [TEXT], ["b"], splits(PG_CSV_ONE_COLUMN, 1)) == rows


def test_text_end_marker_stops_the_data_and_octal_hex_escapes_decode():
    data = b"1\t\\x41\\101\\n\n\\.\n3\tignored\n"
    assert decode_stream(opts(), TYPES, NAMES, [data]) == [(1, "AA\n")]


def test_crlf_lines_are_accepted_but_mixed_endings_are_not():
    assert decode_stream(opts(), TYPES, NAMES, [b"1\tx\r\n2\ty\r\n"]) == [(1, "x"), (2, "y")]
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(), TYPES, NAMES, [b"1\tx\r\n2\ty\n"])
    assert (e.value.sqlstate, e.value.message, e.value.context("t")) == (
        "22P04", "literal newline found in data", "COPY t, line 2")


def test_undeclared_columns_keep_text_fields_of_any_count():
    assert decode_stream(opts(), None, [], [b"x\ty\tz\n\\N\n"]) == [("x", "y", "z"), (None,)]
    assert decode_stream(opts(format="binary"), None, [], [encode_rows(opts("out", format="binary"), [TEXT],
                                                                        ["b"], [("hi",)])]) == [(b"hi",)]


def test_csv_options_force_null_force_not_null_and_custom_quote_escape():
    o = opts(format="csv", force_not_null=("b",), force_null=("a",))
    assert decode_stream(o, TYPES, NAMES, [b'"",\n']) == [(None, "")]
    o = opts(format="csv", quote="'", escape="\\", null="nil")
    assert decode_stream(o, TYPES, NAMES, [b"1,'it\\'s, \\\\ ok'\nnil,nil\n"]) == [(1, "it's, \\ ok"), (None, None)]


def test_encoding_option_transcodes_latin1():
    o = opts(encoding="latin1")
    assert decode_stream(o, TYPES, NAMES, [b"1\tcaf\xe9\n"]) == [(1, "café")]
    assert encode_rows(opts("out", encoding="LATIN1"), TYPES, NAMES, [(1, "café")]) == b"1\tcaf\xe9\n"
    assert python_encoding("win1252") == "cp1252" and python_encoding("nosuch") is None


@pytest.mark.parametrize(
    "data, code, message, context",
    [
        (b"1\tx\n2\n", "22P04", 'missing data for column "b"', 'COPY t, line 2: "2"'),
        (b"1\tx\textra\n", "22P04", "extra data after last expected column", 'COPY t, line 1: "1\tx\textra"'),
        (b"zz\tx\n", "22P02", 'invalid input syntax for type integer: "zz"', 'COPY t, line 1, column a: "zz"'),
    ],
)
def test_text_errors_match_postgres(data, code, message, context):
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(), TYPES, NAMES, splits(data, 2))
    assert (e.value.sqlstate, e.value.message, e.value.context("t")) == (code, message, context)


def test_csv_errors_match_postgres():
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(format="csv"), TYPES, NAMES, [b'1,"abc\n'])
    assert (e.value.sqlstate, e.value.message, e.value.context("t")) == (
        "22P04", "unterminated CSV quoted field", 'COPY t, line 1: "1,"abc\n"')
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(format="csv", header="match"), TYPES, NAMES, [b"a,c\n1,x\n"])
    assert e.value.message == 'column name mismatch in header line field 2: got "c", expected "b"'


@pytest.mark.parametrize(
    "data, message, context",
    [
        (b"PGCOPX", "COPY file signature not recognized", None),
        (PG_BINARY[:19] + b"\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01", "row field count is 1, expected 2",
         "COPY t, line 1"),
        (PG_BINARY[:19] + b"\x00\x02\x00\x00\x00\x04\x00\x00", "unexpected EOF in COPY data", "COPY t, line 1"),
        (PG_BINARY + b"x", "received copy data after EOF marker", "COPY t, line 6"),
    ],
)
def test_binary_errors(data, message, context):
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(format="binary"), TYPES, NAMES, [data])
    assert (e.value.sqlstate, e.value.message, e.value.context("t")) == ("22P04", message, context)


def test_binary_short_int_is_reported_like_postgres_with_the_column():
    data = PG_BINARY[:19] + b"\x00\x02\x00\x00\x00\x02\x00\x01\xff\xff\xff\xff\xff\xff"
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(format="binary"), TYPES, NAMES, [data])
    # PostgreSQL 15: 08P01 "insufficient data left in message", CONTEXT: COPY t, line 1, column a
    assert (e.value.sqlstate, e.value.message, e.value.context("t")) == (
        "08P01", "insufficient data left in message", "COPY t, line 1, column a")


def test_decoder_keeps_partial_rows_until_complete():
    dec = CopyDecoder(opts(), 2, NAMES)
    assert dec.feed(b"1\tab") == []
    assert [r[1] for r in dec.feed(b"c\n2\t")] == [[b"1", b"abc"]]
    assert [r[1] for r in dec.finish()] == [[b"2", b""]]


@pytest.mark.parametrize(
    "given, direction, code, message",
    [
        ({"delimiter": ",,"}, "in", "0A000", "COPY delimiter must be a single one-byte character"),
        ({"format": "binary", "delimiter": ","}, "in", "42601", "cannot specify DELIMITER in BINARY mode"),
        ({"quote": '"'}, "in", "0A000", "COPY quote available only in CSV mode"),
        ({"format": "csv", "force_quote": ("a",)}, "in", "0A000", "COPY force quote only available using COPY TO"),
        ({"format": "csv", "force_null": ("a",)}, "out", "0A000", "COPY force null only available using COPY FROM"),
        ({"format": "xml"}, "in", "22023", 'COPY format "xml" not recognized'),
        ({"delimiter": "\\"}, "in", "22023", 'COPY delimiter cannot be "\\"'),
        ({"format": "csv", "null": ","}, "in", "0A000", "COPY delimiter must not appear in the NULL specification"),
        ({"format": "csv", "header": "match"}, "out", "0A000", 'cannot use "match" with HEADER in COPY TO'),
        ({"encoding": "nosuch"}, "in", "22023", 'argument to option "encoding" must be a valid encoding name'),
    ],
)
def test_option_errors_match_postgres(given, direction, code, message):
    with pytest.raises(CopyOptionError) as e:
        CopyOptions.build(given, direction=direction)
    assert (e.value.sqlstate, e.value.message) == (code, message)


def test_bulk_path_reports_the_right_line_among_identical_and_escaped_lines():
    data = b"1\tx\n" * 3 + b"2\ta\\tb\n" + b"\\N\t\\N\n" + b"q\tz\n" + b"1\tx\n"
    with pytest.raises(CopyDataError) as e:
        decode_stream(opts(), TYPES, NAMES, [data])
    assert e.value.context("t") == 'COPY t, line 6, column a: "q"'
    assert decode_stream(opts(), TYPES, NAMES, [data.replace(b"q\tz\n", b"")]) == [
        (1, "x"), (1, "x"), (1, "x"), (2, "a\tb"), (None, None), (1, "x")]
    assert decode_stream(opts(format="csv"), TYPES, NAMES, [b"1,\n,b\n"]) == [(1, None), (None, "b")]
