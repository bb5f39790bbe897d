"""DataRows for a batch of rows at once: typed column by column, framed with one join.

A streamed result (a generator rule, a large handler answer) is encoded a batch of rows at a
time: one `map` of each column's encoder over the batch's values (instead of one Python call
per value through a per-row loop), value lengths by `map(len, ...)`, and the 4-byte length
words and DataRow headers looked up in small dicts (values of a column tend to have few
distinct lengths) instead of one `struct.pack` per value. The pieces of every row are then
joined into one bytes object (interleaved into one flat list by slice assignment, C-level).

The output is byte-identical to encoding each row with `encode.encode_row` (tests pin it):
the fast path calls the registry's encoder *without* its coerce() fallback (the same function
the registry calls first, so a value it accepts encodes the same), and anything irregular
(a NULL, a value needing coerce(), a row of the wrong length, a value that cannot be encoded)
goes to a slower path for that batch: first the registry's full encoders column by column,
and if a value still fails, row by row with `encode_row`, so the rows before the bad one are
returned and its error (XX000 naming the value and the column) is exactly the per-row one.
"""

from __future__ import annotations

import struct
from itertools import islice
from operator import add
from typing import Sequence

from ..answers.result import Column
from .encode import encode_row, row_encoders

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_NULL = b"\xff\xff\xff\xff"  # length -1: SQL NULL


class _Words(dict):
    """int -> its 4-byte big-endian length word, made on first use (bounded: cleared when large)."""

    __slots__ = ()

    def __missing__(self, n: int) -> bytes:
        if len(self) >= 4096:  # values of ever new lengths must not grow it forever
            self.clear()
        w = self[n] = _I32.pack(n)
        return w


class _Headers(dict):
    """Summed length of a row's variable-width values -> its message header (type byte, message
    length, field count), for one summed length of the fixed-width ones."""

    __slots__ = ("tag", "fixed", "count")

    def __init__(self, tag: bytes, ncolumns: int, fixed_values: int):
        super().__init__()
        self.tag = tag
        # the length word itself, the field count, one length per field, the fixed-width values
        self.fixed = 4 + 2 + 4 * ncolumns + fixed_values
        self.count = _I16.pack(ncolumns)

    def __missing__(self, payload: int) -> bytes:
        if len(self) >= 4096:
            self.clear()
        h = self[payload] = self.tag + _I32.pack(self.fixed + payload) + self.count
        return h


def _interleave(parts: list, nrows: int) -> bytes:
    """b"".join of parts[0][0], parts[1][0], ..., parts[0][1], ...: every part has nrows items
    (slice assignment into one flat list: cheaper than zip + chain)."""
    k = len(parts)
    flat = [b""] * (k * nrows)
    for i, part in enumerate(parts):
        flat[i::k] = part
    return b"".join(flat)


class RowFramer:
    """Frames rows given column by column as messages laid out like DataRow: type byte, length,
    field count, then a length word (-1: NULL) and the bytes of each field. DataRow (b"D") and a
    binary COPY row in a CopyData (b"d") share this layout."""

    __slots__ = ("tag", "ncolumns", "_by_fixed")

    def __init__(self, tag: bytes, ncolumns: int):
        self.tag = tag
        self.ncolumns = ncolumns
        self._by_fixed: dict = {}  # summed length of the fixed-width columns -> _Headers

    def frame(self, nrows: int, columns) -> bytes:
        """columns: per column (values, their lengths, their length words or None to make them
        from the lengths: no NULL in that column). Returns the nrows messages joined."""
        words = _WORDS.__getitem__
        parts: list = [None]  # the headers go first, once the row sizes are known
        sizes = None  # per row: the summed lengths of the columns whose length varies
        fixed = 0  # the summed lengths of the columns whose values all have one length
        for values, lengths, prefixes in columns:
            if prefixes is None:
                first = lengths[0]
                if lengths.count(first) == nrows:  # fixed width (binary int8, whole-second timestamps...)
                    fixed += first
                    parts.append([words(first)] * nrows)
                    parts.append(values)
                    continue
                prefixes = list(map(words, lengths))
            sizes = lengths if sizes is None else list(map(add, sizes, lengths))
            parts.append(prefixes)
            parts.append(values)
        headers = self._by_fixed.get(fixed)
        if headers is None:
            if len(self._by_fixed) >= 64:
                self._by_fixed.clear()
            headers = self._by_fixed[fixed] = _Headers(self.tag, self.ncolumns, fixed)
        parts[0] = [headers[0]] * nrows if sizes is None else list(map(headers.__getitem__, sizes))
        return _interleave(parts, nrows)


_WORDS = _Words()  # shared by every batch encoder: lengths are lengths


class RowBatchEncoder:
    """Encodes batches of rows (lists of sequences of natural values) into joined DataRows."""

    __slots__ = ("columns", "encoders", "_raw", "_column_encoders", "_n", "_framer")

    def __init__(self, columns: Sequence[Column], formats: Sequence[int], style=None):
        self.columns = columns
        self.encoders = row_encoders(columns, formats, style)  # the registry's, with coerce()
        self._raw = [getattr(e, "__wrapped__", e) for e in self.encoders]  # without coerce()
        # the registry's whole-column encoders where a type has one (None: not for this column)
        self._column_encoders = [getattr(r, "column", None) for r in self._raw]
        self._n = len(columns)
        self._framer = RowFramer(b"D", self._n)

    def encode(self, rows: list) -> tuple[bytes, int, Exception | None]:
        """(the DataRows of rows joined, how many rows they are, the error that stopped it or None).

        When a row cannot be encoded the rows before it are returned with its error (a PgError
        naming the value, as `encode_row` raises it; anything else as it was raised)."""
        n = self._n
        if n and rows:
            try:
                if len(set(map(len, rows))) == 1 and len(rows[0]) == n:
                    return self._columnwise(rows), len(rows), None
            except Exception:  # noqa: BLE001 - redone row by row, which finds and names the bad value
                pass
        return self._row_by_row(rows)

    def _columnwise(self, rows: list) -> bytes:
        words = _WORDS.__getitem__
        columns = []
        for col, raw, enc, whole in zip(zip(*rows), self._raw, self.encoders, self._column_encoders):
            if None in col:
                values = [b"" if v is None else enc(v) for v in col]
                lengths = list(map(len, values))
                columns.append((values, lengths, [_NULL if v is None else words(k) for v, k in zip(col, lengths)]))
                continue
            values = whole(col) if whole is not None else None
            if values is None:
                try:
                    values = list(map(raw, col))
                except Exception:  # noqa: BLE001 - a value needing coerce(); a bad one raises again here
                    values = list(map(enc, col))
            columns.append((values, list(map(len, values)), None))
        return self._framer.frame(len(rows), columns)

    def _row_by_row(self, rows: list) -> tuple[bytes, int, Exception | None]:
        out = []
        encoders, columns = self.encoders, self.columns
        for row in rows:
            try:
                out.append(encode_row(encoders, row, columns))
            except Exception as e:  # noqa: BLE001 - the caller sends the rows before it, then raises it
                return b"".join(out), len(out), e
        return b"".join(out), len(out), None


def take_rows(it, n: int) -> tuple[list, Exception | None]:
    """Up to n rows from the iterator it, and the exception that stopped it early (the caller
    sends the rows taken, then raises it). Fewer than n rows and no exception: it is exhausted."""
    batch: list = []
    try:
        batch.extend(islice(it, n))  # C-level; rows taken before a failure stay in batch
    except Exception as e:  # noqa: BLE001 - raised by the caller after the rows before it
        return batch, e
    return batch, None


class _LineHeaders(dict):
    """Length of a text COPY line (without its newline) -> the header of its CopyData."""

    __slots__ = ()

    def __missing__(self, n: int) -> bytes:
        if len(self) >= 4096:
            self.clear()
        h = self[n] = b"d" + _I32.pack(4 + n + 1)
        return h


class CopyOutFramer:
    """COPY TO rows as CopyData messages, a batch at a time from copyformat.CopyEncoder.columns():
    text lines (fields joined by the delimiter, then a newline) or binary rows (DataRow's layout)."""

    __slots__ = ("encoder", "_binary", "_delim", "_rows", "_lines")

    def __init__(self, encoder):
        self.encoder = encoder
        self._binary = encoder.options.binary
        self._delim = encoder.options.delimiter.encode()
        self._rows = RowFramer(b"d", len(encoder.types))
        self._lines = _LineHeaders()

    def frame(self, rows: list) -> bytes | None:
        """The CopyData messages of rows joined; None when they must be encoded row by row."""
        cols = self.encoder.columns(rows)
        if cols is None:
            return None
        if self._binary:
            return self._rows.frame(len(rows), [(c, list(map(len, c)), None) for c in cols])
        lines = list(map(self._delim.join, zip(*cols)))
        n = len(lines)
        return _interleave([list(map(self._lines.__getitem__, map(len, lines))), lines, [b"\n"] * n], n)
