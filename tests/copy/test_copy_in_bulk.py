"""COPY FROM's bulk decoding (protocol/copybulk.py) gives exactly what the careful path gives.

Sans-I/O: hypothesis builds COPY streams (text, csv, binary) of plain rows mixed with escapes,
NULLs, CSV quotes, CRs, bad values, wrong field counts, infinities, end markers and junk, cuts
them at arbitrary places, and compares the decoder with the bulk paths (eager and lazy) against
the same decoder with them switched off: the same rows (same types, same tzinfo) or the same
error (SQLSTATE, message, line, column, text).

Over sockets: psycopg 3, psycopg2 and psql load data whose big plain stretches take the bulk
path and whose odd rows do not; a bad value deep in the stream is reported like PostgreSQL 15
does (same SQLSTATE, message and CONTEXT line).
"""

import datetime as dt
import io
import os
import struct
import subprocess

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.protocol import copyformat
from fakepm.protocol.copybulk import CopyRows, RowBlock
from fakepm.protocol.copyformat import CopyDataError, CopyDecoder, CopyOptions, RowTyper
from fakepm.protocol.types import REGISTRY
from realpg import need_program

UTC = dt.timezone.utc
LAYOUTS = {
    "bench": ("int8", "text", "timestamptz"),
    "one": ("int8",),
    "mixed": ("int4", "timestamp", "bool", "varchar", "int2"),
}


# ------------------------------------------------------------------------------ the oracle
def _outcome(options, typenames, chunks, *, bulk: bool, lazy: bool = False):
    types = [REGISTRY.by_name(t) for t in typenames]
    names = [f"c{i}" for i in range(len(types))]
    saved = copyformat.text_block, copyformat.binary_rows
    if not bulk:
        copyformat.text_block = lambda *a: None
        copyformat.binary_rows = lambda typer, data, pos: (None, pos)
    try:
        dec = CopyDecoder(options, len(types), names, RowTyper(options, types, names), lazy=lazy)
        got = CopyRows() if lazy else []
        add = got.add if lazy else got.extend
        try:
            for c in chunks:
                add(dec.feed(c))
            add(dec.finish())
        except CopyDataError as e:
            return ("error", e.sqlstate, e.message, e.line, e.column, e.text, e.hint)
    finally:
        copyformat.text_block, copyformat.binary_rows = saved
    rows = got.rows() if lazy else got
    # repr: the same values of the same types (an int is not a bool, utc is not a +00 offset)
    return ("rows", len(rows), [repr(r) for r in rows], dec.line)


def assert_same(options, typenames, chunks):
    careful = _outcome(options, typenames, chunks, bulk=False)
    assert _outcome(options, typenames, chunks, bulk=True) == careful
    assert _outcome(options, typenames, chunks, bulk=True, lazy=True) == careful
    return careful


def cut(data: bytes, points) -> list:
    points = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


# ------------------------------------------------------------------------------ text and csv
ODD = [b"", b"x", b" 7 ", b"+5", b"-0", b"1_000", b"9223372036854775807", b"9223372036854775808",
       b"-9223372036854775809", b"32768", b"\xff\xfe", b"\xc3\xbc", b"\xd9\xa1", b"infinity", b"-infinity",
       b"2024-01-01 00:00:00.1234567+00", b"2024-01-01 00:00:00.5", b"2024-02-30 00:00:00",
       b"2024-01-01 10:00:00+05:30", b"2024-01-01T00:00:00Z", b"2024-01-01", b"0001-01-01 00:00:00+01",
       b"9999-12-31 23:59:59-01", b"t", b"yes", b"NULL", b"a b", b"\xe2\x9c\x93", b"1.5", b"0x10"]
ESCAPED = [b"\\N", b"a\\tb", b"\\\\", b"\\x41", b"\\101", b"\\n", b"\\."]


def _plain_value(typename: str):
    if typename.startswith("int"):
        bits = {"int2": 16, "int4": 32, "int8": 64}[typename]
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1).map(lambda i: b"%d" % i)
    if typename in ("timestamptz", "timestamp"):
        zones = st.sampled_from([None, UTC, dt.timezone(dt.timedelta(hours=2))])
        return st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                            timezones=zones).map(lambda d: str(d).encode())
    if typename == "bool":
        return st.sampled_from([b"t", b"f", b"true", b"false"])
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\\\t\n\r,\"")).map(
        lambda s: s.encode())


@st.composite
def text_stream(draw, typenames, csv: bool):
    ncols = len(typenames)
    lines = []
    for _ in range(draw(st.integers(0, 40))):
        fields = []
        for t in typenames:
            kind = draw(st.sampled_from(["plain"] * 8 + ["odd", "escaped", "null"]))
            if kind == "plain":
                f = draw(_plain_value(t))
            elif kind == "odd":
                f = draw(st.sampled_from(ODD))
            elif kind == "escaped":
                f = draw(st.sampled_from(ESCAPED))
            else:
                f = b"" if csv else b"\\N"
            if csv and (b"," in f or b'"' in f or draw(st.integers(0, 9)) == 0):
                f = b'"' + f.replace(b'"', b'""') + b'"'
            fields.append(f)
        shape = draw(st.sampled_from(["ok"] * 12 + ["fewer", "more", "blank", "quoted-newline"]))
        if shape == "fewer" and ncols > 1:
            fields.pop()
        elif shape == "more":
            fields.append(b"1")
        elif shape == "blank":
            fields = [b""]
        elif shape == "quoted-newline" and csv:
            fields[-1] = b'"two\nlines"'
        lines.append((b"," if csv else b"\t").join(fields))
    eol = draw(st.sampled_from([b"\n"] * 6 + [b"\r\n"]))
    tail = draw(st.sampled_from([b"", b"", b"\\.\n", b"\\.\njunk\tafter\n", b"\r", b"1"]))
    last_eol = draw(st.booleans())
    body = eol.join(lines) + (eol if lines and last_eol else b"")
    return body + tail


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("fmt", ["text", "csv"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_text_and_csv_bulk_decoding_equals_the_careful_path(layout, fmt, data):
    typenames = LAYOUTS[layout]
    stream = data.draw(text_stream(typenames, fmt == "csv"))
    points = data.draw(st.lists(st.integers(0, 1 << 20), max_size=6))
    options = CopyOptions.build({"format": fmt})
    assert_same(options, typenames, cut(stream, points))


def test_text_options_null_string_and_delimiter_are_honoured_in_bulk():
    # NULL '' in text: an empty field is NULL (the bulk path must notice and step aside)
    opts = CopyOptions.build({"format": "text", "null": "", "delimiter": "|"})
    out = assert_same(opts, ("int8", "text"), [b"1|a\n2|\n|c\n"])
    assert out[2] == ["(1, 'a')", "(2, None)", "(None, 'c')"]
    csv = CopyOptions.build({"format": "csv", "null": "NULL", "delimiter": ";"})
    out = assert_same(csv, ("int8", "text"), [b"1;a\n2;NULL\n3;\n"])
    assert out[2] == ["(1, 'a')", "(2, None)", "(3, '')"]


# ------------------------------------------------------------------------------ binary
I64 = struct.Struct("!q")


def _bin_field(typename: str, draw) -> bytes | None:
    kind = draw(st.sampled_from(["plain"] * 8 + ["null", "odd"]))
    t = REGISTRY.by_name(typename)
    if kind == "null":
        return None
    if kind == "odd":
        if typename in ("timestamptz", "timestamp"):
            return I64.pack(draw(st.sampled_from([(1 << 63) - 1, -(1 << 63), 1 << 62, -(1 << 62), 0])))
        return draw(st.sampled_from([b"", b"\x00\x01", b"\xff\xfe", b"\x00" * 9, b"\xc3", b"\x00" * 8]))
    if typename.startswith("int"):
        bits = {"int2": 16, "int4": 32, "int8": 64}[typename]
        return t.encode_binary(draw(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)))
    if typename in ("timestamptz", "timestamp"):
        micros = draw(st.integers(-63082281600000000, 252455615999999999))  # years 1..9999
        return I64.pack(micros)
    if typename == "bool":
        return draw(st.sampled_from([b"\x00", b"\x01", b"\x07"]))
    return draw(st.text(st.characters(blacklist_categories=("Cs",)))).encode()


@st.composite
def binary_stream(draw, typenames):
    parts = [copyformat.BINARY_SIGNATURE + b"\x00" * 8]
    for _ in range(draw(st.integers(0, 40))):
        fields = [_bin_field(t, draw) for t in typenames]
        shape = draw(st.sampled_from(["ok"] * 15 + ["fewer", "more", "badlen"]))
        if shape == "fewer":
            fields.pop()
        elif shape == "more":
            fields.append(b"x")
        row = struct.pack("!h", len(fields))
        for f in fields:
            row += b"\xff\xff\xff\xff" if f is None else struct.pack("!i", len(f)) + f
        if shape == "badlen":
            row = row[:2] + b"\xff\xff\xff\xfe" + row[6:]
        parts.append(row)
    parts.append(draw(st.sampled_from([b"\xff\xff", b"\xff\xff", b"", b"\xff\xffjunk", b"\x00"])))
    return b"".join(parts)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_binary_bulk_decoding_equals_the_careful_path(layout, data):
    typenames = LAYOUTS[layout]
    stream = data.draw(binary_stream(typenames))
    points = data.draw(st.lists(st.integers(0, 1 << 20), max_size=6))
    assert_same(CopyOptions.build({"format": "binary"}), typenames, cut(stream, points))


def test_every_cut_position_of_a_plain_stream_gives_the_same_rows():
    rows = [(i, f"name-{i}-ü", dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=i, microseconds=i))
            for i in range(6)]
    types = [REGISTRY.by_name(t) for t in LAYOUTS["bench"]]
    for fmt in ("text", "csv", "binary"):
        opts = CopyOptions.build({"format": fmt}, direction="out")
        data = copyformat.encode_rows(opts, types, ["a", "b", "c"], rows)
        whole = assert_same(CopyOptions.build({"format": fmt}), LAYOUTS["bench"], [data])
        assert whole[2] == [repr(r) for r in rows]
        for i in range(len(data) + 1):
            for j in range(i, len(data) + 1, 7):
                assert _outcome(CopyOptions.build({"format": fmt}), LAYOUTS["bench"],
                                [data[:i], data[i:j], data[j:]], bulk=True, lazy=True) == whole


def test_lazy_rows_are_blocks_until_read():
    opts = CopyOptions.build({"format": "binary"})
    types = [REGISTRY.by_name(t) for t in LAYOUTS["bench"]]
    at = dt.datetime(2024, 1, 1, tzinfo=UTC)
    data = copyformat.encode_rows(CopyOptions.build({"format": "binary"}, direction="out"), types, ["a", "b", "c"],
                                  [(1, "a", at), (2, "b", at)])
    dec = CopyDecoder(opts, 3, ["a", "b", "c"], RowTyper(opts, types, ["a", "b", "c"]), lazy=True)
    got = dec.feed(data) + dec.finish()
    assert [type(x) for x in got] == [RowBlock]
    store = CopyRows()
    store.add(got)
    assert len(store) == 2
    assert store.rows() == [(1, "a", at), (2, "b", at)]


# ------------------------------------------------------------------------------ real clients
COLUMNS = {"id": "int8", "name": "text", "at": "timestamptz"}
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def expected_rows(n: int) -> list:
    """Mostly plain rows (the bulk path) with escapes, NULLs, quotes and newlines now and then."""
    odd = ["tab\there", "new\nline", "back\\slash", 'say "hi", ok', "", None, "\\.", "cr\r"]
    rows = []
    for i in range(n):
        name = odd[i // 997 % len(odd)] if i % 997 == 500 else f"name-{i}-ünïcode"
        at = None if i % 1511 == 700 else T0 + dt.timedelta(seconds=i, microseconds=i % 3 * 250_000)
        rows.append((i if i % 2003 != 1000 else None, name, at))
    return rows


def text_data(rows) -> bytes:
    def field(v):
        if v is None:
            return "\\N"
        s = str(v)
        for ch, esc in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            s = s.replace(ch, esc)
        return s
    return "".join("\t".join(field(v) for v in r) + "\n" for r in rows).encode()


def csv_data(rows) -> bytes:
    def field(v):
        if v is None:
            return ""
        s = str(v)
        if s == "" or any(c in s for c in ',"\n\r') or s == "\\.":
            return '"' + s.replace('"', '""') + '"'
        return s
    return "".join(",".join(field(v) for v in r) + "\n" for r in rows).encode()


@pytest.fixture
def pg():
    with FakePostgres() as server:
        server.table("items", COLUMNS)
        yield server


def test_psycopg3_text_binary_and_csv_big_loads(pg):
    rows = expected_rows(12_000)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        cur = conn.cursor()
        with cur.copy("COPY items (id, name, at) FROM STDIN") as cp:
            data = text_data(rows)
            for i in range(0, len(data), 7001):  # odd-sized chunks cut rows anywhere
                cp.write(data[i:i + 7001])
        assert cur.rowcount == len(rows)
        with cur.copy("COPY items (id, name, at) FROM STDIN (FORMAT binary)") as cp:
            cp.set_types(["int8", "text", "timestamptz"])
            for r in rows:
                cp.write_row(r)
        with cur.copy("COPY items (id, name, at) FROM STDIN (FORMAT csv)") as cp:
            cp.write(csv_data(rows))
    text, binary, csv = pg.copies[-3:]
    assert (text.format, binary.format, csv.format) == ("text", "binary", "csv")
    for rec in (text, binary, csv):
        assert rec.ok and rec.count == len(rows)
        assert rec.rows == rows
        assert type(rec.rows) is list and rec.rows is rec.rows  # read once, kept
        assert all(r[2] is None or r[2].tzinfo is UTC for r in rec.rows)


def test_psycopg2_copy_expert_and_psql_copy(pg, tmp_path):
    psycopg2 = pytest.importorskip("psycopg2")
    rows = expected_rows(5_000)
    conn = psycopg2.connect(pg.dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.copy_expert("COPY items (id, name, at) FROM STDIN (FORMAT csv)", io.BytesIO(csv_data(rows)))
            cur.copy_expert("COPY items (id, name, at) FROM STDIN", io.BytesIO(text_data(rows)))
    finally:
        conn.close()
    assert [r.rows == rows for r in pg.copies[-2:]] == [True, True]
    need_program("psql", "Debian: postgresql-client")
    path = tmp_path / "items.txt"
    path.write_bytes(text_data(rows))  # psql sends 8 KiB CopyData chunks that cut rows
    r = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", pg.dsn, "-c", f"\\copy items from '{path}'"],
                       capture_output=True, timeout=30, env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    assert r.returncode == 0, r.stderr
    assert b"COPY 5000" in r.stdout
    assert pg.copies[-1].rows == rows


def _diag(dsn: str, sql: str, chunks: list):
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            with c.cursor().copy(sql) as cp:
                for chunk in chunks:
                    cp.write(chunk)
        except psycopg.Error as e:
            return e.diag.sqlstate, e.diag.message_primary, e.diag.context
    return None


def _binary(rows, bad_at: int, bad: bytes) -> bytes:
    out = [copyformat.BINARY_SIGNATURE + b"\x00" * 8]
    for i, r in enumerate(rows):
        name = r[1].encode()
        micros = (r[2] - dt.datetime(2000, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
        row = struct.pack("!hiqi", 3, 8, r[0], len(name)) + name + struct.pack("!iq", 8, micros)
        out.append(bad if i == bad_at else row)
    return b"".join(out) + b"\xff\xff"


BAD_DEEP = [
    ("text", 3000, b"30x0\tname\t2024-01-01 00:00:00+00\n"),
    ("text", 4999, b"4999\tname\t2024-13-01 00:00:00+00\n"),
    ("text", 2500, b"2500\tname\n"),
    ("text", 2500, b"99999999999999999999\tname\t2024-01-01 00:00:00+00\n"),
    ("csv", 3500, b'3500,"unterminated\n'),
    ("csv", 1234, b"1234,name,2024-01-01 00:00:00+00,extra\n"),
    ("binary", 3000, struct.pack("!hi", 3, 4) + b"\x00\x00\x00\x01" + struct.pack("!i", 1) + b"x"
     + struct.pack("!iq", 8, 0)),
    ("binary", 4000, struct.pack("!hiqi", 3, 8, 1, 2) + b"\xff\xfe" + struct.pack("!iq", 8, 0)),
    ("binary", 2000, struct.pack("!hiqi", 2, 8, 1, 1) + b"x"),
]


@pytest.mark.realpg
@pytest.mark.parametrize("fmt, bad_at, bad", BAD_DEEP)
def test_a_bad_value_deep_in_a_big_stream_is_reported_like_postgresql(oracle_pg, fmt, bad_at, bad):
    rows = [(i, f"name-{i}", T0 + dt.timedelta(seconds=i)) for i in range(5000)]
    if fmt == "binary":
        data = _binary(rows, bad_at, bad)
    else:
        lines = (text_data(rows) if fmt == "text" else csv_data(rows)).split(b"\n")
        lines[bad_at] = bad.rstrip(b"\n")
        data = b"\n".join(lines)
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    opt = "" if fmt == "text" else f" (FORMAT {fmt})"
    sql = "COPY items (id, name, at) FROM STDIN" + opt
    with psycopg.connect(oracle_pg.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS items; CREATE TABLE items (id int8, name text, at timestamptz)")
    expected = _diag(oracle_pg.dsn, sql, chunks)
    assert expected is not None
    assert f"line {bad_at + 1}" in expected[2] or "unterminated" in expected[1]  # that one runs to the end
    with FakePostgres(version=oracle_pg.server_version) as fake:
        fake.table("items", COLUMNS)
        assert _diag(fake.dsn, sql, chunks) == expected
        rec = fake.copies[-1]
        assert not rec.ok and rec.rows == []


CONTEXT_CASES = [
    ("COPY items (id, name) FROM STDIN (FORMAT csv)", b'1,"a\nb\nc"\n2,x\nzz,y\n'),  # 1st record's newlines
    ("COPY items (id, name) FROM STDIN (FORMAT csv)", b'1,"a\nb"\nqq,"c\nd"\n'),  # later ones count as lines
    ("COPY items (id, name) FROM STDIN (FORMAT csv)", b'1,"a\r\nb"\r\nqq,y\r\n'),
    ("COPY items (id, name) FROM STDIN", b"1\t" + b"x" * 150 + b"\textra\n"),  # CONTEXT: 100 bytes + ...
    ("COPY items (id, name) FROM STDIN", b"1" * 150 + b"\tname\n"),
    ("COPY items (id, name) FROM STDIN", b"1\t" + "ü".encode() * 120 + b"\textra\n"),  # whole characters
]


@pytest.mark.realpg
@pytest.mark.parametrize("sql, data", CONTEXT_CASES)
def test_context_line_numbers_and_long_text_like_postgresql(oracle_pg, sql, data):
    with psycopg.connect(oracle_pg.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS items; CREATE TABLE items (id int8, name text, at timestamptz)")
    expected = _diag(oracle_pg.dsn, sql, [data])
    assert expected is not None
    with FakePostgres(version=oracle_pg.server_version) as fake:
        fake.table("items", COLUMNS)
        assert _diag(fake.dsn, sql, [data]) == expected


@pytest.mark.parametrize("fmt, data", [
    ("text", b"1\t\\N\t2024-01-01 00:00:00+00\n\\N\tb\t\\N\n3\tc\t2024-01-01 00:00:01+00\n"),
    ("csv", b"1,,2024-01-01 00:00:00+00\n,b,\n3,c,2024-01-01 00:00:01+00\n"),
])
def test_nulls_stay_on_the_bulk_path(fmt, data):
    opts = CopyOptions.build({"format": fmt})
    types = [REGISTRY.by_name(t) for t in LAYOUTS["bench"]]
    dec = CopyDecoder(opts, 3, ["a", "b", "c"], RowTyper(opts, types, ["a", "b", "c"]), lazy=True)
    got = dec.feed(data)
    assert [type(x) for x in got] == [RowBlock]
    at = dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert got[0].rows() == [(1, None, at), (None, "b", None), (3, "c", at + dt.timedelta(seconds=1))]
    assert_same(opts, LAYOUTS["bench"], [data])
    # an escape next to the NULLs sends the block to the careful path, with the same rows
    escaped = data.replace(b"b", b"\\x62") if fmt == "text" else data
    assert _outcome(opts, LAYOUTS["bench"], [escaped], bulk=True)[2] == _outcome(opts, LAYOUTS["bench"], [data],
                                                                                 bulk=False)[2]


def test_binary_nulls_in_fixed_width_columns_stay_on_the_bulk_path():
    opts = CopyOptions.build({"format": "binary"})
    types = [REGISTRY.by_name(t) for t in LAYOUTS["bench"]]
    at = dt.datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(i if i % 3 else None, None if i % 5 == 0 else f"n{i}", None if i % 4 == 0 else at) for i in range(40)]
    data = copyformat.encode_rows(CopyOptions.build({"format": "binary"}, direction="out"), types, ["a", "b", "c"],
                                  rows)
    dec = CopyDecoder(opts, 3, ["a", "b", "c"], RowTyper(opts, types, ["a", "b", "c"]), lazy=True)
    got = dec.feed(data) + dec.finish()
    assert [type(x) for x in got] == [RowBlock]
    assert got[0].rows() == rows
    assert assert_same(opts, LAYOUTS["bench"], [data])[2] == [repr(r) for r in rows]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_few_escaped_lines_among_plain_ones_equal_the_careful_path(data):
    # > 8 plain lines per escaped one: the plain stretches stay in bulk, the escaped lines are typed alone
    typenames = LAYOUTS["bench"]
    lines = [b"%d\tname-%d\t2024-01-01 00:00:%02d+00" % (i, i, i % 60) for i in range(80)]
    for _ in range(data.draw(st.integers(1, 5))):
        fields = [data.draw(st.sampled_from([b"7", b"\\N", b"x"])),
                  data.draw(st.sampled_from(ESCAPED + [b"a\\\\b", b"tab\\there", b"\\N", b"plain"])),
                  data.draw(st.sampled_from([b"2024-01-01 00:00:00+00", b"\\N", b"2024-01-01\\t"]))]
        lines.insert(data.draw(st.integers(0, len(lines))), b"\t".join(fields))
    stream = b"\n".join(lines) + b"\n"
    points = data.draw(st.lists(st.integers(0, 1 << 20), max_size=3))
    assert_same(CopyOptions.build({"format": "text"}), typenames, cut(stream, points))


def test_escaped_lines_keep_the_rest_of_the_block_in_bulk():
    opts = CopyOptions.build({"format": "text"})
    types = [REGISTRY.by_name(t) for t in LAYOUTS["bench"]]
    lines = [b"%d\tn%d\t\\N" % (i, i) for i in range(40)]
    lines[7] = b"7\ttab\\there\t\\N"
    lines[39] = b"39\tback\\\\slash\t\\N"
    dec = CopyDecoder(opts, 3, ["a", "b", "c"], RowTyper(opts, types, ["a", "b", "c"]), lazy=True)
    got = dec.feed(b"\n".join(lines) + b"\n")
    assert [type(x) for x in got] == [RowBlock]
    rows = got[0].rows()
    assert rows[7] == (7, "tab\there", None) and rows[39] == (39, "back\\slash", None) and rows[8] == (8, "n8", None)
    assert len(rows) == 40 and dec.line == 40


def test_a_copy_record_reads_copies_and_compares_like_a_plain_one(pg):
    import copy
    import dataclasses
    import pickle

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with conn.cursor().copy("COPY items (id, name, at) FROM STDIN") as cp:
            cp.write(b"1\ta\t2024-01-01 00:00:00+00\n2\t\\N\t\\N\n")
    rec = pg.copies[-1]
    want = [(1, "a", T0), (2, None, None)]
    clone = copy.deepcopy(rec)
    assert clone.rows == want and clone == rec
    assert pickle.loads(pickle.dumps(rec)).rows == want
    assert dataclasses.asdict(rec)["rows"] == want
    assert dataclasses.replace(rec, count=5).rows == want
    assert rec.rows == want and type(rec.rows) is list


# A NUL byte in text or CSV data is refused as PostgreSQL refuses it (22021, naming the line
# that holds it), whichever CopyData message it arrives in.
NUL_CASES = [
    ("COPY nul_t FROM STDIN", [b"1\ta\n2\tb\x00c\n3\tc\n"]),
    ("COPY nul_t FROM STDIN", [b"1\ta\n2\tb\n", b"3\t", b"x\x00\n"]),
    ("COPY nul_t FROM STDIN (FORMAT csv)", [b'1,a\n2,"b\x00"\n']),
    ("COPY nul_t FROM STDIN (FORMAT csv, HEADER)", [b"id,name\n1,a\n", b"2,\x00\n"]),
]


@pytest.mark.parametrize("sql, chunks", NUL_CASES)
def test_nul_byte_is_refused_like_postgresql(oracle_pg, sql, chunks):
    with psycopg.connect(oracle_pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS nul_t (id int8, name text)")
    expected = _diag(oracle_pg.dsn, sql, chunks)
    assert expected[0] == "22021"
    with FakePostgres(version=oracle_pg.server_version) as pg:
        pg.table("nul_t", columns={"id": "int8", "name": "text"})
        assert _diag(pg.dsn, sql, chunks) == expected
        record = pg.copies[-1]
        assert record.rows == [] and record.error.startswith("22021 ")  # nothing kept from a failed COPY
