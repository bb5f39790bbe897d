"""Bulk COPY FROM decoding: whole CopyData chunks typed column by column, at C speed where it can.

The careful decoder (copyformat.CopyDecoder + RowTyper) walks lines and fields one by one and
knows every PostgreSQL error. This module only takes the *usual* case and gives up (returns
None / no rows) on anything else, so the careful path redoes that input with the exact rows or
the exact error (SQLSTATE, message, CONTEXT line and column). Results are identical by
construction: each column goes through the type registry's own bulk decoders
(``decode_*.column`` / ``decode_binary.unpack``, protocol/types.py), which raise when unsure.

Text/CSV (:func:`text_block`): a block of complete lines with no backslash except in NULL fields
(so no escapes, no ``\\.``), no CR and, for CSV, no quote. It is cut into fields with two C-level
splits, checked to hold exactly one field per column on every line, and each column is decoded
with one call.

Binary (:func:`binary_rows`): a row walker generated for the column layout (one
``struct.unpack_from`` per run of fixed-width columns up to the next variable-width field), so
a row costs a few bytecodes; it stops at the first row it does not expect (NULL in a fixed-width
column, a wrong length, the trailer, a row cut by the chunk boundary), and the careful loop goes
on from there.
"""

from __future__ import annotations

import struct
import threading
from functools import partial
from typing import Callable

__all__ = ["text_block", "binary_rows", "RowBlock", "CopyRows"]

_NL = b"\n"


def _split_columns(block: bytes, delim: bytes, ncols: int) -> list | None:
    """block (lines without their last newline) -> ncols lists of field bytes, or None unless
    every line has exactly ncols fields."""
    nlines = block.count(_NL) + 1
    if ncols == 1:
        return None if delim in block else [block.split(_NL)]
    # every newline becomes delim + newline, so each piece holds at most one newline, at its
    # start: the pieces that start a line are exactly those holding one
    flat = block.replace(_NL, delim + _NL).split(delim)
    if len(flat) != ncols * nlines:
        return None
    starts = b"".join(flat[ncols::ncols])
    if starts.count(_NL) != nlines - 1:
        return None
    first = starts.split(_NL)
    first[0] = flat[0]
    return [first] + [flat[j::ncols] for j in range(1, ncols)]


def _decode_column(column_fn: Callable | None, fast: Callable, col: list) -> list:
    """One column through the registry: its bulk decoder, else its fast one per value (raises
    when a value needs the careful path)."""
    if column_fn is not None:
        try:
            return column_fn(col)
        except Exception:  # noqa: BLE001 - unsure: value by value below
            pass
    return list(map(fast, col))


def _text_plan(typer) -> list:
    plan = getattr(typer, "_bulk_text_plan", None)
    if plan is None:
        plan = [(getattr(dec, "column", None) if dec is not None else None, fast)
                for dec, fast in zip(typer._decoders, typer._fast)]
        typer._bulk_text_plan = plan
    return plan


def text_block(typer, block: bytes, delim: bytes, null: bytes, escapes: bool) -> "RowBlock | None":
    """The typed rows of a text/CSV block whose lines need no careful scan (see the module
    docstring), or None: the caller then takes the careful path for the block.

    A field equal to the NULL string is None. ``escapes`` (text format): a backslash outside a
    NULL field (``\\N``) is an escape (or ``\\.``): a few such lines are typed one by one
    (:func:`_escaped_block`), more send the block to the careful path."""
    backslashes = block.count(b"\\") if escapes else 0
    if backslashes and b"\\" not in null:
        return None
    # a NULL string with a backslash cannot occur in a block without one
    check_null = not escapes or backslashes or b"\\" not in null
    plan = _text_plan(typer)
    cols = _split_columns(block, delim, len(plan))
    if cols is None:
        return None
    nulls = [col.count(null) for col in cols] if check_null else [0] * len(cols)
    escaped = backslashes - sum(nulls) * null.count(b"\\")
    if escaped:
        # a backslash outside a NULL field: an escape; a few such lines are typed one by one
        return _escaped_block(typer, block, delim, null) if 0 < escaped * 8 < len(cols[0]) else None
    out = []
    try:
        for (column_fn, fast), col, k in zip(plan, cols, nulls):
            if k:
                it = iter(_decode_column(column_fn, fast, [f for f in col if f != null]))
                out.append([None if f == null else next(it) for f in col])
            else:
                out.append(_decode_column(column_fn, fast, col))
    except Exception:  # noqa: BLE001 - a bad value: the careful path raises PostgreSQL's error
        return None
    return RowBlock(out, None, len(cols[0]))


def _escaped_block(typer, block: bytes, delim: bytes, null: bytes) -> "RowBlock | None":
    """A text block with a few escaped lines: the stretches between them in bulk, each escaped
    line through RowTyper.lines (the careful per-line typing). None on any doubt (a ``\\.``
    line, a bad value): the careful path redoes the block."""
    pieces: list = []  # RowBlocks and typed row tuples, in order
    cur = 0
    i = block.find(b"\\")
    while i >= 0:
        start = block.rfind(_NL, 0, i) + 1
        end = block.find(_NL, i)
        if end < 0:
            end = len(block)
        line = block[start:end]
        i = block.find(b"\\", end)
        if all(f == null for f in line.split(delim) if b"\\" in f):
            continue  # only NULL fields: the bulk stretch takes it
        if line == b"\\.":
            return None
        if start > cur:
            got = text_block(typer, block[cur:start - 1], delim, null, True)
            if got is None:
                return None
            pieces.append(got)
        try:
            pieces += typer.lines(0, [line], delim, null, False)
        except Exception:  # noqa: BLE001 - the careful path raises PostgreSQL's error
            return None
        cur = end + 1
    if cur <= len(block):
        got = text_block(typer, block[cur:], delim, null, True)
        if got is None:
            return None
        pieces.append(got)
    cols: list = [[] for _ in typer._fast]
    n = 0
    for piece in pieces:
        if piece.__class__ is RowBlock:
            for col, part in zip(cols, piece.columns):
                col += part
            n += piece.n
        else:
            for col, v in zip(cols, piece):
                col.append(v)
            n += 1
    return RowBlock(cols, None, n)


# ------------------------------------------------------------------------------ binary
_WALKERS: dict = {}


def _make_walker(codes: tuple) -> Callable:
    """Generate the row walker for a layout: codes[j] is a struct code for a fixed-width column
    or None for a variable-width one. walk(data, pos) -> (one list per column, position after
    the rows). A row's fixed-width tail and the next row's head are read by one unpack_from."""
    ncols = len(codes)
    # segments: the struct before each variable-width field (and the tail after the last one)
    segs: list = [["!h", ["c"], [f"c != {ncols}"], []]]  # fmt, targets, conditions, value names
    var_cols: list = []
    for j, code in enumerate(codes):
        seg = segs[-1]
        if code is not None:
            seg[0] += "i" + code
            seg[1] += [f"l{j}", f"v{j}"]
            seg[2].append(f"l{j} != {struct.calcsize('!' + code)}")  # NULL or a bad length: careful path
            seg[3].append(f"v{j}")
        else:
            seg[0] += "i"
            seg[1].append(f"l{j}")
            var_cols.append(j)
            segs.append(["!", [], [], []])
    ns: dict = {"error": struct.error}

    def unpacker(name: str, fmt: str) -> int:
        st = struct.Struct(fmt)
        ns[name] = st.unpack_from
        return st.size

    def cond(conds: list) -> list:
        return [f"if {' or '.join(conds)}: break"] if conds else []

    appends = [f"a{j}(v{j})" for j in range(ncols)]
    head_fmt, head_targets, head_conds, head_vals = segs[0]
    head_size = unpacker("H", head_fmt)
    src = ["def walk(data, pos):",
           "    n = len(data)",
           "    cols = " + "[" + ", ".join("[]" for _ in range(ncols)) + "]",
           "    " + ", ".join(f"a{j}" for j in range(ncols)) + ", = [c.append for c in cols]"]
    if not var_cols:  # fixed-width rows: one unpack each
        body = [f"{', '.join(head_targets)}, = H(data, pos)", *cond(head_conds), f"pos += {head_size}", *appends]
        src += ["    try:", "        while True:"] + ["            " + x for x in body]
        src += ["    except error:", "        pass", "    return cols, pos"]
    else:
        tail_fmt, tail_targets, tail_conds, tail_vals = segs[-1]
        tail_size = unpacker("T", tail_fmt) if len(tail_fmt) > 1 else 0
        # the next row's head read with this row's tail; its values renamed until this row is stored
        next_targets = [t + "_n" if t in head_vals else t for t in head_targets]
        unpacker("TH", tail_fmt + head_fmt[1:])
        body = [*cond(head_conds), f"p = pos + {head_size}"]
        for k, j in enumerate(var_cols):
            body += [f"if l{j} < 0:",
                     f"    if l{j} != -1: break",
                     f"    v{j} = None",
                     "    q = p",
                     "else:",
                     f"    q = p + l{j}",
                     f"    v{j} = data[p:q]"]
            if k + 1 < len(var_cols):
                fmt, targets, conds, _ = segs[k + 1]
                size = unpacker(f"M{k}", fmt)
                body += [f"{', '.join(targets)}, = M{k}(data, q)", *cond(conds), f"p = q + {size}"]
        last = ([f"{', '.join(tail_targets)}, = T(data, q)"] if tail_size else ["if q > n: break"])
        body += ["try:",
                 f"    {', '.join(tail_targets + next_targets)}, = TH(data, q)",
                 "except error:",
                 *["    " + x for x in last + cond(tail_conds)],
                 f"    pos = q + {tail_size}",
                 *["    " + x for x in appends],
                 "    break",
                 *cond(tail_conds),
                 f"pos = q + {tail_size}",
                 *appends,
                 *[f"{v} = {v}_n" for v in head_vals]]
        src += ["    try:",
                f"        {', '.join(head_targets)}, = H(data, pos)",
                "    except error:",
                "        return cols, pos",
                "    try:",
                "        while True:"]
        src += ["            " + x for x in body]
        src += ["    except error:", "        pass", "    return cols, pos"]
    exec("\n".join(src), ns)  # noqa: S102 - generated from struct codes only
    return ns["walk"]


def _binary_plan(typer):
    plan = getattr(typer, "_bulk_binary_plan", None)
    if plan is None:
        codes, convert = [], []
        for dec, fast in zip(typer._decoders, typer._fast):
            unpack = getattr(dec, "unpack", None) if dec is not None else None
            if unpack is not None:
                code, column_fn, safe = unpack
                codes.append(code)
                convert.append(("fixed", column_fn, fast, struct.Struct("!" + code).pack, safe))
            else:
                codes.append(None)
                keep = dec is None and fast is bytes  # an untyped column keeps its bytes
                convert.append(("var", None if keep else getattr(dec, "column", None), None if keep else fast,
                                None, None))
        key = tuple(codes)
        walker = _WALKERS.get(key)
        if walker is None:
            walker = _WALKERS[key] = _make_walker(key)
        plan = typer._bulk_binary_plan = (walker, convert, key)
    return plan


def _fixed_column(column_fn: Callable, dec: Callable, pack: Callable, col: tuple) -> list:
    try:
        return column_fn(col)
    except Exception:  # noqa: BLE001 - e.g. an infinity: the registry's decoder value by value
        return [dec(pack(v)) for v in col]


_I16 = struct.Struct("!h").unpack_from
_I32 = struct.Struct("!i").unpack_from


def _odd_row(codes: tuple, data: bytes, pos: int):
    """One row the walker stopped at, when it is whole and merely unusual (a NULL in a
    fixed-width column): (raw values as the walker gives them, position after it), else None."""
    n = len(data)
    if n - pos < 2 or _I16(data, pos)[0] != len(codes):
        return None
    p = pos + 2
    vals = []
    for code in codes:
        if n - p < 4:
            return None
        ln = _I32(data, p)[0]
        p += 4
        if ln == -1:
            vals.append(None)
            continue
        if ln < 0 or n - p < ln:
            return None
        field = data[p:p + ln]
        p += ln
        if code is None:
            vals.append(field)
        elif ln != struct.calcsize("!" + code):
            return None  # a bad length: the careful path says which
        else:
            vals.append(struct.unpack("!" + code, field)[0])
    return vals, p


def _with_nulls(fn: Callable, col: list) -> list:
    """fn over the non-NULL values of col, NULLs kept in place."""
    it = iter(fn([v for v in col if v is not None]))
    return [None if v is None else next(it) for v in col]


def binary_rows(typer, data: bytes, pos: int) -> tuple["RowBlock | None", int]:
    """The rows of data[pos:] as far as the walker goes (rows with a NULL in a fixed-width
    column are read one by one in between), and the position after them; None (and pos
    unchanged) when there is none or a value needs the careful path."""
    walker, convert, codes = _binary_plan(typer)
    cols, end = walker(data, pos)
    while True:
        odd = _odd_row(codes, data, end)
        if odd is None:
            break
        for col, v in zip(cols, odd[0]):
            col.append(v)
        more, end = walker(data, odd[1])
        for col, m in zip(cols, more):
            col += m
    if not cols[0]:
        return None, pos
    out, later = [], []
    try:
        for (kind, column_fn, fast, pack, safe), col in zip(convert, cols):
            conv = None
            if kind == "fixed":
                if column_fn is not None:
                    holes = None in col
                    vals = [v for v in col if v is not None] if holes else col
                    if not vals:
                        pass
                    elif safe is not None and safe[0] <= min(vals) and max(vals) <= safe[1]:
                        # cannot fail: converted when the rows are read
                        conv = partial(_with_nulls, column_fn) if holes else column_fn
                    elif holes:
                        col = _with_nulls(partial(_fixed_column, column_fn, fast, pack), col)
                    else:
                        col = _fixed_column(column_fn, fast, pack, col)
            elif fast is None:
                pass
            elif None in col:
                col = [None if f is None else fast(f) for f in col]
            else:
                col = _decode_column(column_fn, fast, col)
            out.append(col)
            later.append(conv)
    except Exception:  # noqa: BLE001 - a bad value: the careful loop redoes these rows
        return None, pos
    return RowBlock(out, later, len(cols[0])), end


class RowBlock:
    """Rows held column by column, every value already checked, until they are read: ``rows()``
    zips them into tuples (after the deferred converters that cannot fail, e.g. int64
    microseconds -> datetime). Saves the tuples' time and memory while a COPY streams in."""

    __slots__ = ("columns", "convert", "n")

    def __init__(self, columns: list, convert: list | None, n: int):
        self.columns = columns
        self.convert = convert
        self.n = n

    def __len__(self) -> int:
        return self.n

    def rows(self) -> list:
        cols = self.columns
        if self.convert is not None and any(self.convert):
            cols = [c if f is None else f(c) for c, f in zip(cols, self.convert)]
        return list(zip(*cols))


class CopyRows:
    """The rows of one COPY FROM as they arrive: what a lazy CopyDecoder's feed()/finish() give
    (RowBlocks and row tuples), in order; ``rows()`` is the list of tuples."""

    __slots__ = ("parts", "n", "_lock", "_rows")

    def __init__(self):
        self.parts: list = []
        self.n = 0
        self._lock = threading.Lock()
        self._rows: list | None = None

    def __len__(self) -> int:
        return self.n

    def add(self, items: list) -> None:
        run: list = []
        for x in items:
            if x.__class__ is RowBlock:
                if run:
                    self.parts.append(run)
                    run = []
                self.parts.append(x)
                self.n += x.n
            else:
                run.append(x)
        if run:
            self.parts.append(run)
            self.n += len(run)

    def __reduce__(self):  # copy/deepcopy/pickle of a journal record: the plain list of rows
        return (list, (self.rows(),))

    def rows(self) -> list:
        """The list of row tuples (made once; any thread)."""
        with self._lock:
            if self._rows is None:
                out: list = []
                parts = self.parts
                for i, part in enumerate(parts):
                    out += part.rows() if part.__class__ is RowBlock else part
                    parts[i] = None  # each block freed once its tuples exist: memory peaks near one copy
                self._rows, self.parts = out, []
            return self._rows
