"""Read the COPY data the recorder saw (text, csv, binary) back into rows of natural values.

Only what recording COPY ... TO STDOUT needs: the statement's target/source and format
options (from the COPY grammar of answers/copyspec.py), and a reader for complete data.
(Serving COPY is the COPY room's job.)
"""

from __future__ import annotations

import csv
import io
import struct
from dataclasses import dataclass

from ..answers.copyspec import parse_copy
from ..answers.selectlist import quote_ident
from ..protocol.errors import PgError
from .tracker import decode_value

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
@dataclass
class CopyOptions:
    table: str | None = None
    columns: list | None = None
    source_select: str | None = None  # a SELECT with the same columns (to ask upstream for types)
    format: str = "text"
    delimiter: str | None = None
    null: str | None = None
    header: bool = False


def parse_copy_options(sql: str) -> CopyOptions:
    """The target/source and data format of a COPY statement, read by the COPY grammar
    (answers/copyspec.py); defaults when it is not a COPY fakepm can parse."""
    try:
        st = parse_copy(sql)
    except PgError:
        return CopyOptions()
    opts = CopyOptions()
    if st.query is not None:
        opts.source_select = st.query
    else:
        opts.table = quote_ident(st.table) if st.schema is None else f"{quote_ident(st.schema)}.{quote_ident(st.table)}"
        cols = [quote_ident(c) for c in st.columns or ()]
        opts.columns = cols or None
        opts.source_select = f"SELECT {', '.join(cols) if cols else '*'} FROM {opts.table}"
    given = st.given
    opts.format = st.options.format
    opts.delimiter = given.get("delimiter")
    opts.null = given.get("null")
    opts.header = bool(st.options.header)
    return opts


_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _text_field(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != "\\" or i + 1 >= len(raw):
            out.append(c)
            i += 1
            continue
        n = raw[i + 1]
        if n in _ESCAPES:
            out.append(_ESCAPES[n])
            i += 2
        elif n in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and raw[j] in "01234567":
                j += 1
            out.append(chr(int(raw[i + 1:j], 8)))
            i = j
        elif n == "x" and i + 2 < len(raw) and raw[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            while j < len(raw) and j < i + 4 and raw[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(raw[i + 2:j], 16)))
            i = j
        else:
            out.append(n)
            i += 2
    return "".join(out)


def _split_text_line(line: str, delim: str) -> list[str]:
    fields, cur, i = [], [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            cur.append(line[i:i + 2])
            i += 2
            continue
        if c == delim:
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    fields.append("".join(cur))
    return fields


def _text_rows(data: bytes, opts: CopyOptions) -> list[list]:
    delim = opts.delimiter or "\t"
    null = "\\N" if opts.null is None else opts.null
    rows = []
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for k, line in enumerate(lines):
        if line == "\\.":
            break
        if k == 0 and opts.header:
            continue
        rows.append([None if f == null else _text_field(f) for f in _split_text_line(line, delim)])
    return rows


def _csv_rows(data: bytes, opts: CopyOptions) -> list[list]:
    null = "" if opts.null is None else opts.null
    reader = csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline=""), delimiter=opts.delimiter or ",")
    rows = []
    for k, rec in enumerate(reader):
        if k == 0 and opts.header:
            continue
        if rec == ["\\."]:
            break
        rows.append([None if f == null else f for f in rec])
    return rows


def _binary_rows(data: bytes) -> list[list]:
    if not data.startswith(_SIGNATURE):
        raise ValueError("COPY BINARY data does not start with the PGCOPY signature")
    pos = len(_SIGNATURE) + 4
    (ext,) = struct.unpack_from("!i", data, pos)
    pos += 4 + ext
    rows = []
    while pos + 2 <= len(data):
        (n,) = struct.unpack_from("!h", data, pos)
        pos += 2
        if n == -1:
            break
        row = []
        for _ in range(n):
            (ln,) = struct.unpack_from("!i", data, pos)
            pos += 4
            if ln < 0:
                row.append(None)
            else:
                row.append(data[pos:pos + ln])
                pos += ln
        rows.append(row)
    return rows


def parse_copy_data(data: bytes, sql: str, columns, opts: CopyOptions | None = None) -> list[list]:
    """Rows of natural values; `columns` = [(name, type OID, typmod)] or None (values stay str/bytes)."""
    opts = opts or parse_copy_options(sql)
    if opts.format == "binary":
        raw_rows, fmt = _binary_rows(data), 1
    elif opts.format == "csv":
        raw_rows, fmt = _csv_rows(data, opts), 0
    else:
        raw_rows, fmt = _text_rows(data, opts), 0
    if not columns:
        return raw_rows
    out = []
    for row in raw_rows:
        vals = []
        for (_, oid, _), v in zip(columns, row):
            if v is None:
                vals.append(None)
            else:
                vals.append(decode_value(oid, fmt, v if isinstance(v, bytes) else v.encode()))
        out.append(vals)
    return out
