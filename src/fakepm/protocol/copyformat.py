"""COPY data formats (text, csv, binary), sans-I/O: rows <-> the bytes inside CopyData.

PostgreSQL's COPY chapter ("File Formats") is the spec; behaviour and messages were checked
against a real PostgreSQL 15.

* :class:`CopyOptions` - the options of one COPY (format, delimiter, null, header, quote,
  escape, force_quote/force_null/force_not_null, encoding), already validated.
* :class:`CopyDecoder` - incremental: ``feed(chunk)`` any slice of the stream (CopyData
  boundaries cut rows anywhere), ``finish()`` at CopyDone. Each returns the complete rows
  found so far as lists of *raw fields* (bytes, or None for NULL) - typing them is
  :class:`RowTyper`'s job. The text ``\\.`` end-of-data line and the binary trailer end
  the data; what follows is ignored (text) or rejected (binary), as PostgreSQL does.
* :class:`RowTyper` - raw fields -> natural Python values through the type registry
  (protocol/types.py); without a column type a field stays ``str`` (text/csv) or ``bytes``
  (binary).
* :class:`CopyEncoder` - natural values -> one CopyData payload per row (plus the header
  and, for binary, the trailer).

Bad input raises :class:`CopyDataError` carrying PostgreSQL's SQLSTATE, message and the
parts of its CONTEXT line (line number, column, the offending text); the session turns it
into an ErrorResponse with ``CONTEXT: COPY t, line 3, column b: "x"``.
"""

from __future__ import annotations

import codecs
import re
import struct
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Iterable, Sequence

from .copybulk import binary_rows, text_block
from .types import InvalidValue, PgType

__all__ = [
    "CopyOptions",
    "CopyOptionError",
    "CopyDataError",
    "CopyDecoder",
    "RowTyper",
    "CopyEncoder",
    "BINARY_SIGNATURE",
    "python_encoding",
    "encode_rows",
    "decode_stream",
]

BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BIN_HEADER = BINARY_SIGNATURE + b"\x00\x00\x00\x00\x00\x00\x00\x00"
_BIN_TRAILER = b"\xff\xff"
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")

# PostgreSQL encoding names (upper case, as pg_char_to_encoding normalises them) -> Python codecs
_ENCODINGS = {
    "UTF8": "utf-8", "UNICODE": "utf-8", "SQL_ASCII": "latin-1", "LATIN1": "latin-1", "LATIN2": "iso8859-2",
    "LATIN3": "iso8859-3", "LATIN4": "iso8859-4", "LATIN5": "iso8859-9", "LATIN6": "iso8859-10",
    "LATIN7": "iso8859-13", "LATIN8": "iso8859-14", "LATIN9": "iso8859-15", "LATIN10": "iso8859-16",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253", "WIN1254": "cp1254",
    "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257", "WIN1258": "cp1258", "WIN866": "cp866",
    "WIN874": "cp874", "KOI8R": "koi8-r", "KOI8U": "koi8-u", "EUC_JP": "euc-jp", "EUC_KR": "euc-kr",
    "EUC_CN": "gb2312", "SJIS": "shift-jis", "GBK": "gbk", "GB18030": "gb18030", "BIG5": "big5", "UHC": "cp949",
    "ISO_8859_5": "iso8859-5", "ISO_8859_6": "iso8859-6", "ISO_8859_7": "iso8859-7", "ISO_8859_8": "iso8859-8",
}


def python_encoding(name: str) -> str | None:
    """The Python codec for a PostgreSQL encoding name ('latin1', 'UTF-8', 'win1252'), or None."""
    key = re.sub(r"[^A-Za-z0-9]", "", name).upper()
    for pg, py in _ENCODINGS.items():
        if pg.replace("_", "") == key:
            return py
    return None


class CopyOptionError(ValueError):
    """An invalid COPY option combination (PostgreSQL's SQLSTATE and message)."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


# PostgreSQL 18 words COPY's option errors anew, and gives three of them SQLSTATE 22023
# (compared with 15 and 18 here; 16 and 17 are taken to speak as 15, whose words this module raises)
_OPTION_WORDS_18 = {
    "COPY quote available only in CSV mode": ("0A000", "COPY QUOTE requires CSV mode"),
    "COPY escape available only in CSV mode": ("0A000", "COPY ESCAPE requires CSV mode"),
    "COPY force quote available only in CSV mode": ("0A000", "COPY FORCE_QUOTE requires CSV mode"),
    "COPY force not null available only in CSV mode": ("0A000", "COPY FORCE_NOT_NULL requires CSV mode"),
    "COPY force null available only in CSV mode": ("0A000", "COPY FORCE_NULL requires CSV mode"),
    "COPY force quote only available using COPY TO": ("0A000", "COPY FORCE_QUOTE cannot be used with COPY FROM"),
    "COPY force not null only available using COPY FROM": ("22023", "COPY FORCE_NOT_NULL cannot be used with COPY TO"),
    "COPY force null only available using COPY FROM": ("22023", "COPY FORCE_NULL cannot be used with COPY TO"),
    "COPY delimiter must not appear in the NULL specification":
        ("22023", "COPY delimiter character must not appear in the NULL specification"),
    "CSV quote character must not appear in the NULL specification":
        ("22023", "CSV quote character must not appear in the NULL specification"),
}


def option_error_as(major: int, sqlstate: str, message: str) -> tuple[str, str]:
    """A COPY option error (as this module raises it) in the words of PostgreSQL `major`."""
    if major >= 18:
        return _OPTION_WORDS_18.get(message, (sqlstate, message))
    return sqlstate, message


_MAX_DISPLAY = 100  # PostgreSQL's MAX_COPY_DATA_DISPLAY: bytes of the bad line/value in CONTEXT


class CopyDataError(ValueError):
    """Bad COPY data: SQLSTATE, message and where (line, column, the field or line text)."""

    def __init__(self, sqlstate: str, message: str, *, line: int = 0, column: str | None = None,
                 text: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.line = line
        self.column = column
        self.text = text
        self.hint = hint

    def context(self, table: str) -> str | None:
        """PostgreSQL's CONTEXT line: ``COPY t, line 3, column b: "x"``; None before the first line
        (a bad binary header is reported without one)."""
        if not self.line:
            return None
        out = f"COPY {table}"
        if self.line:
            out += f", line {self.line}"
        if self.column is not None:
            out += f", column {self.column}"
        if self.text is not None:
            text = self.text
            if len(text) > _MAX_DISPLAY:  # PostgreSQL shows 100 bytes (whole characters) and "..."
                raw = text.encode("utf-8", "surrogatepass")
                if len(raw) > _MAX_DISPLAY:
                    text = raw[:_MAX_DISPLAY].decode("utf-8", "ignore") + "..."
            out += f': "{text}"'
        return out


@dataclass(frozen=True)
class CopyOptions:
    """Validated options. Strings are str; `null`/`delimiter`... are as PostgreSQL stores them."""

    format: str = "text"  # text | csv | binary
    delimiter: str = "\t"
    null: str = "\\N"
    header: bool | str = False  # False | True | "match"
    quote: str = '"'
    escape: str = '"'
    force_quote: tuple | str = ()  # column names, or "*"
    force_not_null: tuple | str = ()
    force_null: tuple | str = ()
    encoding: str | None = None  # PostgreSQL encoding name as given
    freeze: bool = False

    @property
    def binary(self) -> bool:
        return self.format == "binary"

    @property
    def csv(self) -> bool:
        return self.format == "csv"

    @classmethod
    def build(cls, given: dict, *, direction: str = "in") -> "CopyOptions":
        """Options as parsed from the statement (name -> value; None = given without value), checked
        like PostgreSQL's ProcessCopyOptions. Raises CopyOptionError."""
        fmt = str(given.get("format", "text")).lower()
        if fmt not in ("text", "csv", "binary"):
            raise CopyOptionError("22023", f'COPY format "{fmt}" not recognized')
        csv = fmt == "csv"
        binary = fmt == "binary"
        if binary and "delimiter" in given:
            raise CopyOptionError("42601", "cannot specify DELIMITER in BINARY mode")
        if binary and "null" in given:
            raise CopyOptionError("42601", "cannot specify NULL in BINARY mode")
        delimiter = given.get("delimiter", "," if csv else "\t")
        null = given.get("null", "" if csv else "\\N")
        if len(delimiter.encode()) != 1:
            raise CopyOptionError("0A000", "COPY delimiter must be a single one-byte character")
        if delimiter in "\r\n":
            raise CopyOptionError("0A000", "COPY delimiter cannot be newline or carriage return")
        if "\r" in null or "\n" in null:
            raise CopyOptionError("0A000", "COPY null representation cannot use newline or carriage return")
        if not csv and delimiter in "\\.abcdefghijklmnopqrstuvwxyz0123456789":
            raise CopyOptionError("22023", f'COPY delimiter cannot be "{delimiter}"')
        header = given.get("header", False)
        if header is not False and binary:
            raise CopyOptionError("0A000", "cannot specify HEADER in BINARY mode")
        if header == "match" and direction == "out":
            raise CopyOptionError("0A000", 'cannot use "match" with HEADER in COPY TO')
        quote = given.get("quote")
        escape = given.get("escape")
        if quote is not None and not csv:
            raise CopyOptionError("0A000", "COPY quote available only in CSV mode")
        if escape is not None and not csv:
            raise CopyOptionError("0A000", "COPY escape available only in CSV mode")
        quote = '"' if quote is None else quote
        escape = quote if escape is None else escape
        if csv and len(quote.encode()) != 1:
            raise CopyOptionError("0A000", "COPY quote must be a single one-byte character")
        if csv and len(escape.encode()) != 1:
            raise CopyOptionError("0A000", "COPY escape must be a single one-byte character")
        if csv and delimiter == quote:
            raise CopyOptionError("0A000", "COPY delimiter and quote must be different")
        for opt, only, word in (("force_quote", "out", "force quote"), ("force_not_null", "in", "force not null"),
                                ("force_null", "in", "force null")):
            if opt in given:
                if not csv:
                    raise CopyOptionError("0A000", f"COPY {word} available only in CSV mode")
                if direction != only:
                    raise CopyOptionError(
                        "0A000", f"COPY {word} only available using COPY {'TO' if only == 'out' else 'FROM'}")
        if delimiter in null:
            raise CopyOptionError("0A000", "COPY delimiter must not appear in the NULL specification")
        if csv and quote in null:
            raise CopyOptionError("0A000", "CSV quote character must not appear in the NULL specification")
        encoding = given.get("encoding")
        if encoding is not None and python_encoding(encoding) is None:
            raise CopyOptionError("22023", 'argument to option "encoding" must be a valid encoding name')
        return cls(fmt, delimiter, null, header, quote, escape, given.get("force_quote", ()),
                   given.get("force_not_null", ()), given.get("force_null", ()), encoding,
                   bool(given.get("freeze", False)))

    def as_dict(self) -> dict:
        """The options in effect (for the journal)."""
        d = {"format": self.format}
        if not self.binary:
            d.update(delimiter=self.delimiter, null=self.null, header=self.header)
        if self.csv:
            d.update(quote=self.quote, escape=self.escape, force_quote=self.force_quote,
                     force_not_null=self.force_not_null, force_null=self.force_null)
        if self.encoding:
            d["encoding"] = self.encoding
        return d


# ---------------------------------------------------------------------------------------
# decoding

_TEXT_ESCAPES = {ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t",
                 ord("v"): b"\v"}
_HEX = b"0123456789abcdefABCDEF"


def _show(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _unescape_text(raw: bytes) -> bytes:
    """Text-format de-escaping: \\b \\f \\n \\r \\t \\v, \\ooo octal, \\xhh hex, \\c = c."""
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        j = raw.find(b"\\", i)
        if j < 0:
            out += raw[i:]
            break
        out += raw[i:j]
        if j + 1 >= n:
            break  # a lone trailing backslash is dropped (PostgreSQL does the same)
        c = raw[j + 1]
        i = j + 2
        if 48 <= c <= 55:  # octal: up to 3 digits
            val = c - 48
            for _ in range(2):
                if i < n and 48 <= raw[i] <= 55:
                    val = val * 8 + raw[i] - 48
                    i += 1
                else:
                    break
            out.append(val & 0xFF)
        elif c == 120 and i < n and raw[i] in _HEX:  # \x with 1-2 hex digits
            k = i + 1 if (i + 1 < n and raw[i + 1] in _HEX) else i
            out.append(int(raw[i:k + 1], 16))
            i = k + 1
        else:
            esc = _TEXT_ESCAPES.get(c)
            out += esc if esc is not None else bytes([c])
    return bytes(out)


def _split_text_fields(line: bytes, delim: int) -> list[bytes]:
    """Split on unescaped delimiters, keeping escapes for the caller (who compares with NULL first)."""
    fields = []
    start = i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == 92:  # backslash: skip the escaped byte
            i += 2
            continue
        if c == delim:
            fields.append(line[start:i])
            start = i + 1
        i += 1
    fields.append(line[start:])
    return fields


class CopyDecoder:
    """Incremental COPY FROM parser. Rows come out as (line_number, [raw field bytes | None])."""

    def __init__(self, options: CopyOptions, ncolumns: int | None, column_names: Sequence[str] = (),
                 typer: "RowTyper | None" = None, lazy: bool = False):
        self.options = options
        self.typer = typer  # given: feed()/finish() return typed row tuples instead of raw rows
        # lazy: rows typed in bulk come as one copybulk.RowBlock (checked, zipped when read) in
        # the returned list; copybulk.CopyRows collects them
        self.lazy = lazy
        self.ncolumns = ncolumns  # None: unknown (undeclared table) - any field count is kept
        self.column_names = list(column_names)
        self.line = 0  # lines (records) consumed, for CONTEXT
        self.ended = False  # saw \. or the binary trailer
        self._buf = bytearray()
        self._header_pending = bool(options.header) and not options.binary
        self._eol: bytes | None = None
        self._bin_header_done = False
        enc = python_encoding(options.encoding) if options.encoding else None
        self._transcode = None
        if enc not in (None, "utf-8") and not options.binary:
            self._transcode = codecs.getincrementaldecoder(enc)(errors="strict")
        self._delim = ord(options.delimiter)
        self._null = options.null.encode()
        self._quote = options.quote.encode()
        self._escape = options.escape.encode()
        self.rows_seen = 0

    # -- public ---------------------------------------------------------------------
    def feed(self, data: bytes) -> list:
        if self.ended:
            if self.options.binary and data:
                raise CopyDataError("22P04", "received copy data after EOF marker", line=self.line)
            return []
        if self._transcode is not None:
            try:
                data = self._transcode.decode(data).encode("utf-8")
            except UnicodeDecodeError as e:
                raise CopyDataError("22021", f"invalid byte sequence for encoding \"{self.options.encoding}\": "
                                             f"0x{data[e.start:e.start + 1].hex()}", line=self.line + 1) from None
        if not self.options.binary and b"\x00" in data:
            # PostgreSQL refuses a NUL byte in text/CSV data (no encoding has it), naming its line
            nul = data.index(b"\x00")
            line = self.line + 1 + self._buf.count(b"\n") + data.count(b"\n", 0, nul)
            name = self.options.encoding if self._transcode is not None else "UTF8"
            raise CopyDataError("22021", f'invalid byte sequence for encoding "{name}": 0x00', line=line)
        self._buf += data
        if self.options.binary:
            return self._binary_rows(final=False)
        return self._text_rows(final=False)

    def finish(self) -> list:
        """CopyDone arrived: the rest of the buffer must be whole rows."""
        if self.ended:
            return []
        if self.options.binary:
            rows = self._binary_rows(final=True)
            if self._buf:  # a partial row (a missing trailer alone is accepted, as PostgreSQL does)
                raise CopyDataError("22P04", "unexpected EOF in COPY data", line=self.line + 1)
            return rows
        return self._text_rows(final=True)

    # -- text and csv -----------------------------------------------------------------
    def _bulk_rows(self) -> list | None:
        """Fast path: every complete line of the buffer at once (C-level splits), when nothing in
        it needs the careful scan (no CR, no CSV quotes, no header, no FORCE options)."""
        buf = self._buf
        last = buf.rfind(b"\n")
        o = self.options
        if last < 0 or self._header_pending or (o.csv and (o.force_not_null or o.force_null)):
            return None
        block = bytes(buf[:last])
        if b"\r" in block or (o.csv and self._quote in block):
            return None
        if self._eol is None:
            self._eol = b"\n"
        if self.typer is not None and self.typer.can_type_lines and (not o.csv or b"\\" not in block):
            # whole block column by column (protocol/copybulk.py); None: the line paths below
            typed = text_block(self.typer, block, bytes((self._delim,)), self._null, not o.csv)
            if typed is not None:
                del buf[:last + 1]
                self.line += typed.n
                return [typed] if self.lazy else typed.rows()
        lines = block.split(b"\n")
        del buf[:last + 1]
        if b"\\." in block and b"\\." in lines:
            lines = lines[:lines.index(b"\\.")]
            self.ended = True
            buf.clear()
        first = self.line + 1
        self.line += len(lines) + (1 if self.ended else 0)
        delim, null, d = bytes((self._delim,)), self._null, self._delim
        if self.typer is not None and self.typer.can_type_lines:
            return self.typer.lines(first, lines, delim, null, o.csv, b"\\" not in block)
        if o.csv:
            return self._typed([(first + k, [None if f == null else f for f in line.split(delim)], line)
                                for k, line in enumerate(lines)])
        plain_null = b"\\" not in null  # else a line without a backslash cannot hold a NULL
        rows = []
        for k, line in enumerate(lines):
            if b"\\" in line:
                fields = [None if f == null else (_unescape_text(f) if b"\\" in f else f)
                          for f in _split_text_fields(line, d)]
            elif plain_null:
                fields = [None if f == null else f for f in line.split(delim)]
            else:
                fields = line.split(delim)
            rows.append((first + k, fields, line))
        return self._typed(rows)

    def _typed(self, raw: list) -> list:
        return self.typer.rows(raw) if self.typer is not None and raw else raw

    def _text_rows(self, final: bool) -> list:
        rows = self._bulk_rows() if not self.ended else None  # already typed when a typer is set
        if rows is None:
            return self._typed(self._scan_rows(final))
        if final:
            rows += self._typed(self._scan_rows(final))
        return rows

    def _scan_rows(self, final: bool) -> list:
        # scan with an index and cut the consumed prefix once: deleting per line is quadratic
        data = bytes(self._buf)
        pos, n = 0, len(data)
        rows = []
        csv = self.options.csv
        quote = self._quote
        delim_b = bytes((self._delim,))
        while not self.ended and pos < n:
            nl = data.find(b"\n", pos)
            if self._eol is None and nl >= 0:
                self._eol = b"\r\n" if nl > pos and data[nl - 1] == 13 else b"\n"
            if csv and quote in data[pos:nl if nl >= 0 else n]:
                fields, end, line = self._scan_csv(data, pos, final)
                if end < 0:
                    break
                pos = end
                self.line += self._quoted_eols
            else:
                if nl < 0:
                    if not final:
                        break
                    line, pos = data[pos:], n
                else:
                    line, pos = data[pos:nl], nl + 1
                if line.endswith(b"\r"):
                    if csv or self._eol == b"\r\n":
                        line = line[:-1]
                    else:
                        raise CopyDataError("22P04", "literal carriage return found in data", line=self.line + 1,
                                            hint='Use "\\r" to represent carriage return.')
                elif self._eol == b"\r\n" and not csv and nl >= 0:
                    raise CopyDataError("22P04", "literal newline found in data", line=self.line + 1,
                                        hint='Use "\\n" to represent newline.')
                fields = None
            self.line += 1
            if line == b"\\.":
                self.ended = True
                pos = n
                break
            if fields is None:
                if csv:
                    fields = self._csv_plain_fields(line, delim_b)
                elif b"\\" in line:
                    null = self._null
                    fields = [None if f == null else (_unescape_text(f) if b"\\" in f else f)
                              for f in _split_text_fields(line, self._delim)]
                else:
                    null = self._null
                    fields = [None if f == null else f for f in line.split(delim_b)]
            if self._header_pending:
                self._header_pending = False
                if self.options.header == "match":
                    self._check_header(line, fields)
                continue
            rows.append((self.line, fields, line))
        del self._buf[:pos]
        return rows

    def _csv_plain_fields(self, line: bytes, delim_b: bytes) -> list:
        null = self._null
        parts = line.split(delim_b)
        if self.options.force_not_null:
            return self._csv_nulls(parts, [False] * len(parts))
        return [None if f == null else f for f in parts]

    def _scan_csv(self, data: bytes, start: int, final: bool):
        """One CSV record from data[start:] (quoted fields may hold newlines and delimiters).

        Returns (fields, end index, record text), or (None, -1, None) when more data is needed."""
        delim, quote, escape = self._delim, self._quote[0], self._escape[0]
        # PostgreSQL counts the line ends inside quotes as lines (the CONTEXT line number is
        # physical), by its end-of-line byte: CR until the first record has ended, or for CRLF
        eol_byte = 10 if self.line and self._eol == b"\n" else 13
        self._quoted_eols = 0
        fields: list = []
        quoted_flags: list = []
        cur = bytearray()
        quoted = in_quotes = False
        i, n = start, len(data)
        while True:
            if i >= n:
                if not final:
                    return None, -1, None
                if in_quotes:
                    raise CopyDataError("22P04", "unterminated CSV quoted field",
                                        line=self.line + 1 + self._quoted_eols, text=_show(data[start:]))
                end = n
                break
            c = data[i]
            if in_quotes:
                if c == escape:
                    if i + 1 >= n:
                        if not final:
                            return None, -1, None  # the next byte decides: "" or a closing quote
                    elif data[i + 1] == quote or data[i + 1] == escape:
                        cur.append(data[i + 1])
                        i += 2
                        continue
                if c == quote:
                    in_quotes = False
                else:
                    cur.append(c)
                    if c == eol_byte:
                        self._quoted_eols += 1
                i += 1
                continue
            if c == quote:
                in_quotes = quoted = True
            elif c == delim:
                fields.append(bytes(cur))
                quoted_flags.append(quoted)
                cur.clear()
                quoted = False
            elif c == 10:
                end = i + 1
                break
            else:
                cur.append(c)
            i += 1
        if cur.endswith(b"\r") and not quoted:
            del cur[-1:]
        fields.append(bytes(cur))
        quoted_flags.append(quoted)
        text = data[start:end].rstrip(b"\n").rstrip(b"\r")
        return self._csv_nulls(fields, quoted_flags), end, text

    def _csv_nulls(self, fields: list, quoted: list) -> list:
        opts = self.options
        null = self._null
        names = self.column_names
        fnn = set(names) if opts.force_not_null == "*" else set(opts.force_not_null or ())
        fn = set(names) if opts.force_null == "*" else set(opts.force_null or ())
        out = []
        for i, (f, q) in enumerate(zip(fields, quoted)):
            name = names[i] if i < len(names) else None
            if f == null and ((not q and name not in fnn) or (q and name in fn)):
                out.append(None)
            else:
                out.append(f)
        return out

    def _check_header(self, line: bytes, fields) -> None:
        got = fields
        names = self.column_names
        if self.ncolumns is not None and len(got) != len(names):
            raise CopyDataError("22P04", f"wrong number of fields in header line: got {len(got)}, "
                                         f"expected {len(names)}", line=self.line, text=_show(line))
        for i, (g, want) in enumerate(zip(got, names)):
            if g is None:
                raise CopyDataError("22P04", f'column name mismatch in header line field {i + 1}: got null value '
                                             f'("{self.options.null}"), expected "{want}"', line=self.line,
                                    text=_show(line))
            if _show(g) != want:
                raise CopyDataError("22P04", f'column name mismatch in header line field {i + 1}: '
                                             f'got "{_show(g)}", expected "{want}"', line=self.line, text=_show(line))

    # -- binary ---------------------------------------------------------------------
    def _binary_rows(self, final: bool) -> list:
        buf = self._buf
        rows = []
        pos = 0
        if not self._bin_header_done:
            head = bytes(buf[:11])
            if head != BINARY_SIGNATURE[:len(head)] or (final and len(head) < 11):
                raise CopyDataError("22P04", "COPY file signature not recognized")
            if len(buf) < 19:
                if final:
                    raise CopyDataError("22P04", "invalid COPY file header (missing flags)" if len(buf) < 15
                                        else "invalid COPY file header (missing length)")
                return rows
            flags = _I32.unpack_from(buf, 11)[0]
            if flags & (1 << 16):
                raise CopyDataError("22P04", "invalid COPY file header (WITH OIDS)")
            if (flags >> 16) & 0x7FFF:
                raise CopyDataError("22P04", "unrecognized critical flags in COPY file header")
            ext = _I32.unpack_from(buf, 15)[0]
            if ext < 0:
                raise CopyDataError("22P04", "invalid COPY file header (missing length)")
            if len(buf) < 19 + ext:
                if final:
                    raise CopyDataError("22P04", "invalid COPY file header (wrong length)")
                return rows
            pos = 19 + ext
            self._bin_header_done = True
        data = bytes(buf)  # slicing immutable bytes makes one object per field, not two
        n = len(data)
        ncols = self.ncolumns
        unpack16, unpack32 = _I16.unpack_from, _I32.unpack_from
        line = self.line
        append = rows.append
        typer = self.typer
        decs = typer._fast if typer is not None and ncols is not None else None
        untyped = typer is not None and decs is None
        if decs is not None:  # whole rows of the usual layout at speed (protocol/copybulk.py)
            fast, pos = binary_rows(typer, data, pos)
            if fast is not None:
                rows += [fast] if self.lazy else fast.rows()
                line += fast.n
        while n - pos >= 2:
            count = unpack16(data, pos)[0]
            if decs is not None and count == ncols:
                # fast path: frame and type in one pass; anything unusual (a row cut by the
                # CopyData boundary, a bad length, a bad value) is redone below for the exact outcome
                p = pos + 2
                vals = []
                add = vals.append
                try:
                    for dec in decs:
                        ln = unpack32(data, p)[0]
                        p += 4
                        if ln >= 0:
                            end = p + ln
                            if end > n:
                                raise _Redo
                            add(dec(data[p:end]))
                            p = end
                        elif ln == -1:
                            add(None)
                        else:
                            raise _Redo
                except Exception:  # noqa: BLE001 - struct.error when short, _Redo, decode errors
                    pass
                else:
                    line += 1
                    append(tuple(vals))
                    pos = p
                    continue
            if count == -1:
                self.ended = True
                pos += 2
                if pos < n:
                    self.line = line
                    raise CopyDataError("22P04", "received copy data after EOF marker", line=line + 1)
                break
            p = pos + 2
            fields = []
            add = fields.append
            for _ in range(count):
                if n - p < 4:
                    break
                ln = unpack32(data, p)[0]
                p += 4
                if ln < 0:
                    if ln == -1:
                        add(None)
                        continue
                    self.line = line
                    raise CopyDataError("22P03", "invalid field size", line=line + 1)
                if n - p < ln:
                    break
                add(data[p:p + ln])
                p += ln
            if len(fields) < count:
                break  # the row continues in the next CopyData
            line += 1
            if ncols is not None and count != ncols:
                self.line = line
                raise CopyDataError("22P04", f"row field count is {count}, expected {ncols}", line=line)
            if decs is None:
                append((line, fields, None))
            else:  # typed right away; a bad value is redone by row() for the exact error
                try:
                    append(tuple([None if f is None else dec(f) for dec, f in zip(decs, fields)]))
                except Exception:  # noqa: BLE001
                    self.line = line
                    append(typer.row(line, fields, None))
            pos = p
        self.line = line
        if pos:
            del buf[:pos]
        return typer.rows(rows) if untyped and rows else rows


class _Redo(Exception):
    """A fast path gives up on a row: the general path redoes it (and raises the exact error)."""


def _utf8(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class RowTyper:
    """Raw fields -> typed row tuples, checking the field count like PostgreSQL."""

    def __init__(self, options: CopyOptions, types: Sequence[PgType | None] | None,
                 names: Sequence[str] = ()):
        self.options = options
        self.types = list(types) if types is not None else None
        self.names = list(names)
        binary = options.binary
        if self.types is None:
            self._decoders = self._fast = None
        else:
            self._decoders = [
                (t.decode_binary if binary else t.decode_text) if t is not None else None for t in self.types
            ]
            keep = bytes if binary else _utf8
            # bound decoders, C-level where the registry offers one (fast); errors are redone by row()
            self._fast = [getattr(d, "fast", d) if d is not None else keep for d in self._decoders]

    @property
    def can_type_lines(self) -> bool:
        return self._fast is not None and not self.options.binary

    def lines(self, first: int, lines: list, delim: bytes, null: bytes, csv: bool, plain: bool = False) -> list:
        """Type whole lines (text/csv without quotes or CRs) in one pass, without intermediate
        field lists; a line that fails is redone by row() for PostgreSQL's exact error.
        ``plain``: no line holds a backslash."""
        decs = self._fast
        n = len(decs)
        check_null = csv or b"\\" not in null  # else a line without a backslash holds no NULL
        if plain and not check_null and lines:
            # no escapes, no NULLs: type column by column (map over C-level decoders where the
            # registry has them); any surprise falls back to the line loop below
            split = [line.split(delim) for line in lines]
            if set(map(len, split)) == {n}:
                try:
                    return list(zip(*[list(map(dec, col)) for dec, col in zip(decs, zip(*split))]))
                except Exception:  # noqa: BLE001 - redone line by line for the exact error
                    pass
        out = []
        append = out.append
        for line in lines:
            if not csv and b"\\" in line:
                fields = [None if f == null else (_unescape_text(f) if b"\\" in f else f)
                          for f in _split_text_fields(line, delim[0])]
                # lines.index finds the first identical line: it would have failed the same way
                append(self.rows([(first + lines.index(line), fields, line)])[0])
                continue
            parts = line.split(delim)
            try:
                if len(parts) != n:
                    raise ValueError
                if check_null:
                    append(tuple([None if f == null else dec(f) for dec, f in zip(decs, parts)]))
                else:
                    append(tuple([dec(f) for dec, f in zip(decs, parts)]))
            except Exception:  # noqa: BLE001 - row() raises the precise CopyDataError
                fields = [None if f == null else f for f in parts] if check_null else parts
                append(self.row(first + lines.index(line), fields, line))
        return out

    def rows(self, batch: list) -> list:
        """Type a batch of (line, fields, text) at speed; the first bad row is redone by row() for
        PostgreSQL's exact error."""
        decs = self._fast
        if decs is None:  # undeclared columns: text fields (str) or, in binary, bytes
            if self.options.binary:
                return [tuple(r[1]) for r in batch]
            return [tuple([None if f is None else f.decode("utf-8", "replace") for f in r[1]]) for r in batch]
        n = len(decs)
        out = []
        append = out.append
        for r in batch:
            fields = r[1]
            try:
                if len(fields) != n:
                    raise ValueError
                append(tuple([None if f is None else dec(f) for dec, f in zip(decs, fields)]))
            except Exception:  # noqa: BLE001 - row() raises the precise CopyDataError
                append(self.row(*r))
        return out

    def row(self, line: int, fields: list, text: bytes | None) -> tuple:
        decs = self._decoders
        binary = self.options.binary
        if decs is None:
            if binary:
                return tuple(fields)
            return tuple(None if f is None else f.decode("utf-8", "replace") for f in fields)
        n = len(decs)
        if len(fields) != n and not binary:
            if len(fields) < n:
                raise CopyDataError("22P04", f'missing data for column "{self.names[len(fields)]}"', line=line,
                                    text=_show(text or b""))
            raise CopyDataError("22P04", "extra data after last expected column", line=line, text=_show(text or b""))
        out = []
        for i, (dec, f) in enumerate(zip(decs, fields)):
            if f is None:
                out.append(None)
            elif dec is None:
                out.append(f if binary else f.decode("utf-8", "replace"))
            else:
                try:
                    out.append(dec(f))
                except (InvalidValue, ValueError, TypeError, UnicodeDecodeError, struct.error, OverflowError) as e:
                    code = getattr(e, "sqlstate", None) or ("22P03" if binary else "22P02")
                    msg = str(e) if not binary or code != "22P03" else \
                        "incorrect binary data format"
                    if isinstance(e, UnicodeDecodeError):
                        code, msg = "22021", 'invalid byte sequence for encoding "UTF8"'
                    raise CopyDataError(code, msg, line=line, column=self.names[i],
                                        text=None if binary else _show(f)) from None
        return tuple(out)


# ---------------------------------------------------------------------------------------
# encoding

_TEXT_OUT_ESC = {
    "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
}


_BIN_NULL = b"\xff\xff\xff\xff"
_DIGITS = b"0123456789"
# type name -> every byte its text output can hold (none needs COPY text escaping)
_ESCAPE_FREE = {
    **dict.fromkeys(("int2", "int4", "int8"), _DIGITS + b"-"),
    **dict.fromkeys(("oid", "xid", "cid"), _DIGITS),
    "bool": b"tf",
    **dict.fromkeys(("timestamp", "timestamptz", "date"), _DIGITS + b"-:. +infinity"),
    **dict.fromkeys(("float4", "float8"), _DIGITS + b"-+.eNaInfity"),
    "uuid": _DIGITS + b"abcdef-",
}


class CopyEncoder:
    """Rows of natural values -> CopyData payloads for COPY TO / CopyOut (escaping works on the
    UTF-8 bytes the type registry produces; ENCODING transcodes the finished line)."""

    def __init__(self, options: CopyOptions, types: Sequence[PgType], names: Sequence[str] = ()):
        self.options = options
        self.types = list(types)
        self.names = list(names)
        binary = options.binary
        self._enc = [t.encode_binary if binary else t.encode_text for t in self.types]
        # the registry's encoders without the coerce() fallback: a row that fails is redone with _enc
        self._raw = [getattr(e, "__wrapped__", e) for e in self._enc]
        self._whole = [getattr(e, "column", None) for e in self._raw]  # the registry's column encoders
        d = options.delimiter.encode()
        self._delim = d
        # columns whose text output never holds a byte that text COPY escapes (nor the delimiter)
        self._safe = [t.name in _ESCAPE_FREE and d not in _ESCAPE_FREE[t.name] for t in self.types]
        self._count = _I16.pack(len(self.types))
        self._null = options.null.encode()
        esc = {k.encode(): v.encode() for k, v in _TEXT_OUT_ESC.items()}
        esc.setdefault(d, b"\\" + d)
        self._text_search = re.compile(b"[" + re.escape(b"".join(esc)) + b"]").search
        self._text_sub = partial(re.compile(b"[" + re.escape(b"".join(esc)) + b"]").sub, lambda m: esc[m.group()])
        enc = python_encoding(options.encoding) if options.encoding else "utf-8"
        self._transcode = enc if enc != "utf-8" else None
        self._binary = binary
        self._plain_text = options.format == "text" and self._transcode is None
        if options.csv:
            fq = options.force_quote
            self._force = [True] * len(names) if fq == "*" else [n in set(fq or ()) for n in names]
            q, e = options.quote.encode(), options.escape.encode()
            self._quote = q
            self._csv_search = re.compile(b"[" + re.escape(d + q + b"\r\n") + b"]").search
            self._csv_esc = partial(re.compile(b"[" + re.escape(q + e) + b"]").sub, lambda m: e + m.group())

    def columns(self, rows: list) -> list | None:
        """The payload values of rows column by column (a map of each column's encoder), when the
        rows can be written from them as they are: text (UTF-8) or binary, no NULL, no value that
        needs escaping or coerce(). None: the batch must go row by row (row() names any error)."""
        n = len(self._raw)
        if n and rows and (self._plain_text or self._binary) and set(map(len, rows)) == {n}:  # C-level check
            try:
                cols = list(zip(*rows))
                if not any(None in c for c in cols):
                    out = [(whole(c) if whole is not None else None) or list(map(enc, c))
                           for enc, whole, c in zip(self._raw, self._whole, cols)]
                    if self._binary:
                        return out
                    search = self._text_search
                    if not any(search(b"".join(c)) for c, safe in zip(out, self._safe) if not safe):
                        return out
            except Exception:  # noqa: BLE001 - redone row by row
                pass
        return None

    def rows(self, rows: list) -> list:
        """row() for each of rows, typed column by column (columns()) when it can be; otherwise
        row by row, with row()'s errors."""
        out = self.columns(rows)
        if out is None:
            return [self.row(r) for r in rows]
        if self._binary:
            pack = _I32.pack
            out = [[pack(len(b)) + b for b in c] for c in out]
            return list(map(b"".join, zip(repeat(self._count, len(rows)), *out)))
        return [line + b"\n" for line in map(self._delim.join, zip(*out))]

    def header(self) -> bytes:
        """What comes before the first row (binary signature; or the HEADER line)."""
        if self.options.binary:
            return _BIN_HEADER
        if self.options.header:
            return self._line([n.encode() for n in self.names], header=True)
        return b""

    def trailer(self) -> bytes:
        return _BIN_TRAILER if self.options.binary else b""

    def row(self, row: Sequence) -> bytes:
        if len(row) != len(self._raw):  # zip would write a short line (or drop values) silently
            names = f" ({', '.join(self.names)})" if self.names else ""
            raise CopyDataError("XX000", f"fakepm: a row has {len(row)} values for the {len(self._raw)} "
                                         f"columns{names}: {row!r:.200}")
        if self._plain_text:  # the hot path: text format, UTF-8, one pass over the values
            search, sub, null = self._text_search, self._text_sub, self._null
            try:
                return self._delim.join([null if v is None else (enc(v) if safe else
                                                                 (sub(b) if search(b := enc(v)) else b))
                                         for enc, safe, v in zip(self._raw, self._safe, row)]) + b"\n"
            except Exception:  # noqa: BLE001 - a value needing coerce(), or a bad one: redone below
                return self._delim.join([null if v is None else (sub(b) if search(b := enc(v)) else b)
                                         for enc, v in zip(self._enc, row)]) + b"\n"
        if self._binary:
            if len(row) == len(self._raw):
                pack = _I32.pack
                try:
                    return self._count + b"".join([_BIN_NULL if v is None else pack(len(b := enc(v))) + b
                                                   for enc, v in zip(self._raw, row)])
                except Exception:  # noqa: BLE001 - redone below with coerce() and the exact error
                    pass
            parts = [_I16.pack(len(row))]
            for enc, v in zip(self._enc, row):
                if v is None:
                    parts.append(b"\xff\xff\xff\xff")
                else:
                    b = enc(v)
                    parts.append(_I32.pack(len(b)))
                    parts.append(b)
            return b"".join(parts)
        return self._line([None if v is None else enc(v) for enc, v in zip(self._enc, row)])

    def _line(self, values: list, header: bool = False) -> bytes:
        if self.options.csv:
            line = self._csv_line(values, header)
        else:
            search, sub, null = self._text_search, self._text_sub, self._null
            line = self._delim.join([null if v is None else (sub(v) if search(v) else v) for v in values]) + b"\n"
        if self._transcode is not None:
            try:
                line = line.decode("utf-8").encode(self._transcode)
            except UnicodeEncodeError as e:
                seq = " ".join(f"0x{b:02x}" for b in e.object[e.start].encode("utf-8"))
                raise CopyDataError("22P05", f'character with byte sequence {seq} in encoding "UTF8" has no '
                                             f'equivalent in encoding "{self.options.encoding.upper()}"') from None
        return line

    def _csv_line(self, values: list, header: bool) -> bytes:
        null, q = self._null, self._quote
        out = []
        single = len(values) == 1
        for i, v in enumerate(values):
            if v is None:
                out.append(null)
                continue
            force = not header and i < len(self._force) and self._force[i]
            if force or v == null or self._csv_search(v) or (single and v == b"\\."):
                out.append(q + self._csv_esc(v) + q)
            else:
                out.append(v)
        return self._delim.join(out) + b"\n"


def encode_rows(options: CopyOptions, types: Sequence[PgType], names: Sequence[str], rows: Iterable) -> bytes:
    """The whole COPY TO stream for rows (tests and small outputs)."""
    enc = CopyEncoder(options, types, names)
    parts = [enc.header()]
    parts += [enc.row(r) for r in rows]
    parts.append(enc.trailer())
    return b"".join(parts)


def decode_stream(options: CopyOptions, types: Sequence[PgType] | None, names: Sequence[str],
                  chunks: Iterable[bytes]) -> list[tuple]:
    """Decode a whole COPY FROM stream given as chunks (tests and tools)."""
    dec = CopyDecoder(options, len(types) if types is not None else None, names, RowTyper(options, types, names))
    out = []
    for c in chunks:
        out += dec.feed(c)
    out += dec.finish()
    return out

