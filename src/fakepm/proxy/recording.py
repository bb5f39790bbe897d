"""A recording: what a real PostgreSQL answered, message by message, as readable YAML.

The recorder (proxy/record.py) keeps every backend message it relayed, attributed to the
frontend message it answers; `fakepm serve` replays them (proxy/replay.py) and the client gets
the same bytes. This module is the format: backend frames <-> "parts" (plain data YAML can
hold), entries, and the index replay looks answers up in. Sans-I/O; no sockets here.

An entry is one answered frontend unit, in recorded order:

    - query: SELECT 1, 2                    # a simple Query (the whole text as sent)
      columns: [{name: "?column?", type: int4, len: 4}, {name: "?column?", type: int4, len: 4}]
      rows: [["1", "2"]]                    # values as the server sent them (text; !!binary for binary)
      tag: SELECT 1
    - parse: SELECT $1::int                 # a Parse whose outcome was an error at least once
      types: [0]                            # the OIDs the client declared (omitted when none)
      error: {severity: ERROR, code: 42P01, message: ...}
    - describe: SELECT $1::int              # Describe of a statement: ParameterDescription + columns
      param_types: [23]
      columns: [...]
    - bind: SELECT $1::int                  # Bind (+ Describe of the portal, Execute)
      params: ["1"]                         # as bound: text, !!binary for binary, null
      rows: [["1"]]
      tag: SELECT 1
      tx: T                                 # ReadyForQuery's status after it (I when omitted)

Parts (a reply is a list of them; one per kind of message, consecutive DataRows, CopyData,
notices and ParameterStatus grouped): columns, param_types, no_data, rows, tag, error,
notices, empty, suspended, status (ParameterStatus), notify, copy_in / copy_out / copy_both,
copy_data, copy_done, function_result, message (any other: {type, body}). A reply whose parts
come in the usual order is written flat into its entry (as above); others as `reply: [...]`.
"""

from __future__ import annotations

import struct
import threading
from typing import Any, Iterable

from ..protocol.types import REGISTRY

_I16 = struct.Struct("!h")
_U16 = struct.Struct("!H")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_FIELD = struct.Struct("!IhIhih")

# error/notice field codes <-> names (PostgreSQL's order: S V C M D H P p q W s t c d n F L R)
FIELD_NAMES = {
    "S": "severity", "V": "severity_nonlocalized", "C": "code", "M": "message", "D": "detail", "H": "hint",
    "P": "position", "p": "internal_position", "q": "internal_query", "W": "where", "s": "schema_name",
    "t": "table_name", "c": "column_name", "d": "data_type_name", "n": "constraint_name", "F": "file",
    "L": "line", "R": "routine",
}
FIELD_CODES = {v: k for k, v in FIELD_NAMES.items()}

# the order of parts written flat into an entry (a reply in another order is a `reply:` list)
FLAT_ORDER = ("notices", "param_types", "columns", "no_data", "copy_in", "copy_out", "copy_both", "rows",
              "copy_data", "copy_done", "function_result", "tag", "empty", "suspended", "error", "status",
              "notify")
PART_KEYS = frozenset(FLAT_ORDER) | {"message"}
ENTRY_KINDS = ("query", "parse", "describe", "bind", "call")
ENTRY_KEYS = frozenset(ENTRY_KINDS) | {"types", "params", "param_formats", "result_formats", "tx", "reply",
                                       "steps", "after", "described", "bind_error", "copy_received", "repeat", "c"}
TX = ("I", "T", "E")


class RecordingError(ValueError):
    """A recording that cannot be replayed: `where` is the entry's index (0-based) or None."""

    def __init__(self, message: str, where: int | None = None):
        super().__init__(message)
        self.where = where


# ------------------------------------------------------------------------------ values
def value_out(raw: bytes | None, binary: bool = False) -> Any:
    """Wire bytes as YAML can hold them exactly: text (str) unless binary or not UTF-8 (bytes)."""
    if raw is None:
        return None
    if not binary:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return bytes(raw)
        if "\x00" not in text:
            return text
    return bytes(raw)


def value_in(v: Any) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, bool):
        return b"t" if v else b"f"
    return str(v).encode("utf-8")  # a hand-written number


# ------------------------------------------------------------------------------ frames -> parts
def _cstr(body: bytes, pos: int) -> tuple[str, int]:
    end = body.index(b"\0", pos)
    return body[pos:end].decode("utf-8", "replace"), end + 1


_TYPE_OUT: dict = {}


def _type_out(oid: int):
    """The registry's type for an OID when its name reads back as the same OID (else None: the OID is written)."""
    if oid not in _TYPE_OUT:
        t = REGISTRY.get_oid(oid)
        try:
            ok = t is not None and REGISTRY.by_name(t.name).oid == oid
        except Exception:  # noqa: BLE001
            ok = False
        _TYPE_OUT[oid] = t if ok else None
    return _TYPE_OUT[oid]


def _columns_out(body: bytes) -> list:
    n = _I16.unpack_from(body, 0)[0]
    pos = 2
    out = []
    for _ in range(n):
        end = body.index(b"\0", pos)
        name = body[pos:end].decode("utf-8", "replace")
        pos = end + 1
        table, attnum, oid, typlen, typmod, fmt = _FIELD.unpack_from(body, pos)
        pos += _FIELD.size
        t = _type_out(oid)
        col: dict = {"name": name, "type": t.name if t is not None else oid}
        if t is None or t.typlen != typlen:
            col["len"] = typlen
        if typmod != -1:
            col["typmod"] = typmod
        if table:
            col["table"] = table
        if attnum:
            col["attnum"] = attnum
        if fmt:
            col["format"] = fmt
        out.append(_Flow(col))
    return out


def _columns_in(cols: list) -> bytes:
    out = [_I16.pack(len(cols))]
    for c in cols:
        ty = c.get("type", "text")
        if isinstance(ty, int):
            oid, typlen = ty, c.get("len", -1)
        else:
            t = REGISTRY.by_name(ty)
            oid, typlen = t.oid, c.get("len", t.typlen)
        out.append(str(c.get("name", "?column?")).encode() + b"\0")
        out.append(_FIELD.pack(c.get("table", 0), c.get("attnum", 0), oid, typlen, c.get("typmod", -1),
                               c.get("format", 0)))
    return b"".join(out)


def _fields_out(body: bytes) -> dict:
    out: dict = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        code = chr(body[pos])
        end = body.index(b"\0", pos + 1)
        out[FIELD_NAMES.get(code, code)] = body[pos + 1:end].decode("utf-8", "replace")
        pos = end + 1
    return out


def _fields_in(fields: dict) -> bytes:
    out = []
    for k, v in fields.items():
        code = FIELD_CODES.get(k, k)
        out.append(code.encode() + str(v).encode("utf-8") + b"\0")
    out.append(b"\0")
    return b"".join(out)


def _copy_response_out(body: bytes) -> dict:
    fmt = body[0]
    n = _I16.unpack_from(body, 1)[0]
    cols = [_I16.unpack_from(body, 3 + 2 * i)[0] for i in range(n)]
    return _Flow({"format": fmt, "columns": _Flow(cols)})


def _copy_response_in(spec: dict) -> bytes:
    cols = spec.get("columns", [])
    return bytes([spec.get("format", 0)]) + _I16.pack(len(cols)) + b"".join(_I16.pack(c) for c in cols)


def frames_to_parts(frames: Iterable[tuple[int, bytes]], formats: tuple = ()) -> list[dict]:
    """Backend frames (type byte, body) -> parts. `formats`: result formats of the rows (per column,
    from Bind or a RowDescription in the same reply) so binary values are kept as bytes."""
    parts: list[dict] = []
    fmts = formats
    for kind, body in frames:
        k = chr(kind)
        last = parts[-1] if parts else None
        if k == "D":
            n = _I16.unpack_from(body, 0)[0]
            pos = 2
            row = []
            for i in range(n):
                ln = _I32.unpack_from(body, pos)[0]
                pos += 4
                if ln < 0:
                    row.append(None)
                    continue
                binary = bool(fmts[i] if i < len(fmts) else (fmts[0] if len(fmts) == 1 else 0))
                row.append(value_out(body[pos:pos + ln], binary))
                pos += ln
            if last is not None and "rows" in last:
                last["rows"].append(_Flow(row))
            else:
                parts.append({"rows": [_Flow(row)]})
        elif k == "d":
            binary = bool(fmts and fmts[0]) if isinstance(fmts, tuple) else False
            v = value_out(body, binary)
            if last is not None and "copy_data" in last:
                last["copy_data"].append(v)
            else:
                parts.append({"copy_data": [v]})
        elif k == "T":
            cols = _columns_out(body)
            fmts = tuple(c.get("format", 0) for c in cols)
            parts.append({"columns": cols})
        elif k == "C":
            parts.append({"tag": body[:-1].decode("utf-8", "replace")})
        elif k == "E":
            parts.append({"error": _fields_out(body)})
        elif k == "N":
            n = _fields_out(body)
            if last is not None and "notices" in last:
                last["notices"].append(n)
            else:
                parts.append({"notices": [n]})
        elif k == "S":
            name, pos = _cstr(body, 0)
            value, _ = _cstr(body, pos)
            if last is not None and "status" in last and name not in last["status"]:
                last["status"][name] = value
            else:
                parts.append({"status": {name: value}})
        elif k == "A":
            pid = _I32.unpack_from(body, 0)[0]
            channel, pos = _cstr(body, 4)
            payload, _ = _cstr(body, pos)
            item = _Flow([pid, channel, payload])
            if last is not None and "notify" in last:
                last["notify"].append(item)
            else:
                parts.append({"notify": [item]})
        elif k == "t":
            n = _U16.unpack_from(body, 0)[0]
            parts.append({"param_types": _Flow([_U32.unpack_from(body, 2 + 4 * i)[0] for i in range(n)])})
        elif k == "n":
            parts.append({"no_data": True})
        elif k == "I":
            parts.append({"empty": True})
        elif k == "s":
            parts.append({"suspended": True})
        elif k == "c":
            parts.append({"copy_done": True})
        elif k in ("G", "H", "W"):
            spec = _copy_response_out(body)
            fmts = (spec["format"],)
            parts.append({{"G": "copy_in", "H": "copy_out", "W": "copy_both"}[k]: spec})
        elif k == "V":
            ln = _I32.unpack_from(body, 0)[0]
            parts.append({"function_result": None if ln < 0 else bytes(body[4:4 + ln])})
        else:
            parts.append({"message": _Flow({"type": k, "body": bytes(body)})})
    return parts


def _frame(kind: bytes, body: bytes) -> bytes:
    return kind + _I32.pack(len(body) + 4) + body


def _data_row(row: list) -> bytes:
    out = [_I16.pack(len(row))]
    for v in row:
        raw = value_in(v)
        if raw is None:
            out.append(b"\xff\xff\xff\xff")
        else:
            out.append(_I32.pack(len(raw)))
            out.append(raw)
    return _frame(b"D", b"".join(out))


def part_to_bytes(part: dict) -> bytes:
    """One part -> the wire bytes of its message(s)."""
    (key, v), = part.items()
    if key == "rows":
        return b"".join(_data_row(r if isinstance(r, list) else [r]) for r in v)
    if key == "copy_data":
        return b"".join(_frame(b"d", value_in(c) or b"") for c in v)
    if key == "columns":
        return _frame(b"T", _columns_in(v))
    if key == "tag":
        return _frame(b"C", str(v).encode("utf-8") + b"\0")
    if key == "error":
        return _frame(b"E", _fields_in(v))
    if key == "notices":
        return b"".join(_frame(b"N", _fields_in(n)) for n in v)
    if key == "status":
        return b"".join(_frame(b"S", str(n).encode() + b"\0" + str(val).encode() + b"\0") for n, val in v.items())
    if key == "notify":
        return b"".join(_frame(b"A", _I32.pack(int(pid)) + str(ch).encode() + b"\0" + str(p).encode() + b"\0")
                        for pid, ch, p in v)
    if key == "param_types":
        return _frame(b"t", _U16.pack(len(v)) + b"".join(_U32.pack(int(o)) for o in v))
    if key == "no_data":
        return _frame(b"n", b"")
    if key == "empty":
        return _frame(b"I", b"")
    if key == "suspended":
        return _frame(b"s", b"")
    if key == "copy_done":
        return _frame(b"c", b"")
    if key in ("copy_in", "copy_out", "copy_both"):
        return _frame({"copy_in": b"G", "copy_out": b"H", "copy_both": b"W"}[key], _copy_response_in(v))
    if key == "function_result":
        raw = value_in(v)
        return _frame(b"V", b"\xff\xff\xff\xff" if raw is None else _I32.pack(len(raw)) + raw)
    if key == "message":
        return _frame(str(v["type"]).encode(), value_in(v.get("body")) or b"")
    raise RecordingError(f"unknown part {key!r}")


def parts_to_bytes(parts: list[dict]) -> bytes:
    return b"".join(part_to_bytes(p) for p in parts)


# ------------------------------------------------------------------------------ entries
def flatten(entry: dict, parts: list[dict]) -> dict:
    """Put a reply's parts into its entry: flat keys when each comes once and in FLAT_ORDER, else `reply:`."""
    keys = [next(iter(p)) for p in parts]
    order = [FLAT_ORDER.index(k) if k in FLAT_ORDER else -1 for k in keys]
    if -1 not in order and order == sorted(set(order)):
        for p in parts:
            entry.update(p)
    elif parts:
        entry["reply"] = parts
    return entry


def unflatten(entry: dict) -> list[dict]:
    """An entry's reply as parts (the inverse of flatten)."""
    if "reply" in entry:
        return list(entry["reply"])
    return [{k: entry[k]} for k in FLAT_ORDER if k in entry]


def check_entry(e: Any, i: int) -> None:
    """Raise RecordingError when entry `i` cannot be replayed."""
    if not isinstance(e, dict):
        raise RecordingError(f"statements item {i + 1} must be a mapping, got {type(e).__name__}", i)
    kinds = [k for k in ENTRY_KINDS if k in e]
    if len(kinds) != 1:
        raise RecordingError(f"statements item {i + 1} needs exactly one of {', '.join(ENTRY_KINDS)}", i)
    unknown = [k for k in e if k not in ENTRY_KEYS and k not in PART_KEYS]
    if unknown:
        raise RecordingError(f"statements item {i + 1}: unknown key {unknown[0]!r}", i)
    if "repeat" in e and (not isinstance(e["repeat"], int) or isinstance(e["repeat"], bool) or e["repeat"] < 1):
        raise RecordingError(f"statements item {i + 1}: repeat must be a count (1, 2, ...)", i)
    if "tx" in e and e["tx"] not in TX:
        raise RecordingError(f"statements item {i + 1}: tx must be I, T or E, got {e['tx']!r}", i)
    try:
        for steps in _all_replies(e):
            for part in steps:
                if not isinstance(part, dict) or len(part) != 1:
                    raise RecordingError("a reply part is a mapping with one key")
                (k, v), = part.items()
                if k in ("rows", "copy_data") and isinstance(v, list):
                    if id(v) not in _CHECKED:  # shared (aliased) results are checked once
                        for row in v:
                            if k == "rows" and not isinstance(row, list):
                                raise RecordingError("rows must be lists of values")
                        _CHECKED.add(id(v))
                    continue
                part_to_bytes(part)
    except (RecordingError, ValueError, TypeError, KeyError, AttributeError, struct.error) as err:
        raise RecordingError(f"statements item {i + 1}: cannot rebuild the reply: {err}", i) from None


_CHECKED: set = set()  # ids of row lists checked during one load (cleared by Index)


def _all_replies(e: dict):
    yield unflatten(e)
    for s in e.get("steps") or ():
        yield unflatten(s)
    if "after" in e:
        yield list(e["after"])
    if e.get("bind_error") is not None:
        yield [{"error": e["bind_error"]}]


# ------------------------------------------------------------------------------ the index
def shape_key(sql: str) -> str:
    """The SQL with its constants (strings, numbers) replaced by `?`: what `match: shape` compares."""
    from ..sql import iter_tokens

    out = []
    for t in iter_tokens(sql):
        if t.kind in ("s", "n", "b"):
            out.append("?")
        else:
            out.append(str(t.value) if t.kind != "q" else '"' + str(t.value) + '"')
    return " ".join(out)


class Entry:
    """One recorded entry ready to replay: its key, its replies as bytes (built on first use)."""

    __slots__ = ("index", "data", "used", "_cache")

    def __init__(self, index: int, data: dict):
        self.index = index
        self.data = data
        self.used = False
        self._cache: dict = {}

    def reply(self) -> bytes:
        b = self._cache.get("reply")
        if b is None:
            b = self._cache["reply"] = parts_to_bytes(unflatten(self.data))
        return b

    def parts(self) -> list[dict]:
        return unflatten(self.data)

    def step(self, i: int) -> list[dict] | None:
        """The reply to the i-th Describe-of-the-portal or Execute after Bind (None past the last)."""
        steps = self.data.get("steps")
        if steps is not None:
            return unflatten(steps[i]) if i < len(steps) else None
        parts = self.parts()
        if self.data.get("described"):
            return parts[:1] if i == 0 else parts[1:] if i == 1 else None
        return parts if i == 0 else None

    @property
    def tx(self) -> str | None:
        return self.data.get("tx")


def _b(v) -> bytes | None:
    return value_in(v)


def entry_key(e: dict) -> tuple:
    """The exact key an entry answers: kind, SQL text as sent, declared types, bound values, formats."""
    if "query" in e:
        return ("query", e["query"])
    if "parse" in e:
        return ("parse", e["parse"], tuple(e.get("types") or ()))
    if "describe" in e:
        return ("describe", e["describe"], tuple(e.get("types") or ()))
    if "bind" in e:
        return ("bind", e["bind"], tuple(e.get("types") or ()), tuple(_b(p) for p in e.get("params") or ()),
                tuple(e.get("param_formats") or ()), tuple(e.get("result_formats") or ()))
    return ("call", _b(e["call"]))


def loose_key(key: tuple) -> tuple:
    """The key `match: shape` compares: constants out of the SQL, bound values ignored."""
    kind = key[0]
    if kind == "call":
        return key
    if kind == "bind":
        return ("bind", shape_key(key[1]), key[2], len(key[3]), key[4], key[5])
    return (kind, shape_key(key[1])) + key[2:]


class Index:
    """Recorded entries by exact key (replayed in recorded order, the last one repeating) and by
    shape (for `match: shape`): shared by every replaying connection, so it takes a lock."""

    def __init__(self, entries: list[dict], match: str = "shape"):
        self.match = match
        self.entries = [Entry(i, e) for i, e in enumerate(entries)]
        self.exact: dict[tuple, list[Entry]] = {}
        self.loose: dict[tuple, list[Entry]] = {}
        self.calls: dict[tuple, int] = {}
        self.by_conn: dict[tuple, list[Entry]] = {}  # (connection number, key): that connection's answers
        self.loose_pos: dict[tuple, int] = {}
        self.parse_keys: set = set()
        self.lock = threading.Lock()
        self.report: list[str] = []  # where a replay left the recorded path (bounded)
        self.foreign = 0  # answers taken from another connection's recording
        self.first_key: dict[int, tuple] = {}  # recorded connection -> the key of its first entry
        self.claimed: set[int] = set()
        self.offset = 0  # recorded connection number - replayed connection number, as last seen
        for en in self.entries:
            key = entry_key(en.data)
            times = max(1, int(en.data.get("repeat", 1)))  # `repeat: N`: answered N times in a row
            self.exact.setdefault(key, []).extend([en] * times)
            if en.data.get("c") is not None:
                self.by_conn.setdefault((en.data["c"], key), []).extend([en] * times)
                self.first_key.setdefault(en.data["c"], key)
            if key[0] == "parse":
                self.parse_keys.add(key)
            elif match == "shape":
                self.loose.setdefault(loose_key(key), []).append(en)

    def note(self, text: str) -> None:
        if len(self.report) < 1000:
            self.report.append(text)

    def claim(self, key: tuple, attempt: int | None) -> int | None:
        """The recorded connection a replayed one follows, chosen at its first statement: the one
        in the same place of the connection order (`attempt`, corrected by the shift seen so far)
        when it began with the same statement, else the nearest unclaimed one that did -- so a run
        that opens more or fewer connections than the recorded one (benchmarks calibrate their
        rounds) shifts the numbering once, not every later connection's answers."""
        with self.lock:
            if attempt is None:
                return None
            want = attempt + self.offset
            best = None
            for d in range(0, 64):
                for n in ((want + d, want - d) if d else (want,)):
                    if n not in self.claimed and self.first_key.get(n) == key:
                        best = n
                        break
                if best is not None:
                    break
            if best is not None:
                self.claimed.add(best)
                self.offset = best - attempt
            return best

    def take(self, key: tuple, conn: int | None = None) -> tuple[Entry | None, str]:
        """The next recorded answer for `key`: (entry, how) with how "exact", "shape" or "missing".
        The answers the same connection (by number, in connection order) got come first: another
        connection that left the recorded path does not shift this one's answers."""
        with self.lock:
            if conn is not None:
                ck = (conn, key)
                found = self.by_conn.get(ck)
                if found:
                    i = self.calls.get(ck, 0)
                    self.calls[ck] = i + 1
                    en = found[min(i, len(found) - 1)]
                    en.used = True
                    return en, "exact"
            found = self.exact.get(key)
            if found and conn is not None and self.by_conn:
                self.foreign += 1  # answered from another connection's recording (this one left its path)
                i = self.calls.get(key, 0)
                self.calls[key] = i + 1
                en = found[min(i, len(found) - 1)]
                en.used = True
                return en, "exact"
            if self.match != "shape":
                return None, "missing"
            lk = loose_key(key)
            group = self.loose.get(lk)
            if not group:
                return None, "missing"
            pos = self.loose_pos.get(lk, 0)
            while pos < len(group) and group[pos].used:
                pos += 1
            self.loose_pos[lk] = pos
            en = group[min(pos, len(group) - 1)]
            en.used = True
            return en, "shape"


class FlowList(list):
    """A list written on one line by the recorder's dumper."""


class FlowMap(dict):
    """A mapping written on one line by the recorder's dumper."""


def _Flow(x):
    return FlowMap(x) if isinstance(x, dict) else FlowList(x)
