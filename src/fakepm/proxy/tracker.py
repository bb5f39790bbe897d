"""Which backend reply answers which frontend message: a relay's view of one conversation.

Sans-I/O. Feed it every frontend message (`client(msg)`) and every backend message
(`server(msg)`) in the order they cross the proxy; it turns them into `Exchange`s (one per
executed statement: SQL, bound parameters, result columns, raw rows, tag, error, notices,
COPY data) and hands each finished one to `on_exchange`.

PostgreSQL answers frontend messages strictly in order, so a FIFO of pending operations is
enough to attribute replies; after an ErrorResponse in the extended protocol the server skips
everything up to Sync, and so does the FIFO.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ..sql import split_statements
from ..protocol import messages as m
from ..protocol.errors import PgError
from ..protocol.types import REGISTRY, InvalidValue, format_type


def type_name(oid: int, typmod: int = -1) -> str:
    """A column type as the scenario format writes it ("int4", "numeric(10,2)"); unknown OIDs -> text."""
    t = REGISTRY.get_oid(oid)
    if t is None:
        return "text"
    if typmod < 0:  # the short canonical names ("int4", "timestamptz", "text[]") read best in YAML
        return t.elem.name + "[]" if t.is_array else t.name
    base = t.elem if t.is_array else t
    try:
        text = format_type(base, typmod)
    except Exception:  # noqa: BLE001 - a name is always better than a crash in a recorder
        text = base.display
    if text.startswith(base.display):  # "character varying(20)" -> "varchar(20)"
        text = base.name + text[len(base.display):]
    return text + ("[]" if t.is_array else "")


def decode_value(oid: int, fmt: int, raw: bytes | None) -> Any:
    """Wire bytes -> natural Python value through the type registry (unknown types: text as str)."""
    if raw is None:
        return None
    t = REGISTRY.get_oid(oid)
    try:
        if t is not None:
            return t.decode_binary(raw) if fmt == 1 else t.decode_text(raw)
    except (InvalidValue, ValueError):
        pass
    return raw if fmt == 1 else raw.decode("utf-8", "replace")


def encode_value(oid: int, fmt: int, value: Any) -> bytes | None:
    """Natural value -> wire bytes in the given format (the inverse of decode_value)."""
    if value is None:
        return None
    t = REGISTRY.get_oid(oid)
    if t is None:
        return value if isinstance(value, bytes) else str(value).encode()
    return t.encode_binary(value) if fmt == 1 else t.encode_text(value)


@dataclass
class Exchange:
    """One executed statement as it crossed the proxy."""

    sql: str
    protocol: str = "simple"  # simple | extended
    raw_params: tuple = ()
    param_formats: tuple = ()
    param_oids: tuple = ()
    fields: tuple = ()  # FieldDescription, formats as actually sent
    has_rows: bool = False  # a RowDescription came (even with zero rows)
    rows: list = field(default_factory=list)  # tuples of bytes | None
    tag: str | None = None
    error: PgError | None = None
    notices: list = field(default_factory=list)
    copy: str | None = None  # "in" | "out" | "both"
    copy_format: int = 0
    copy_data: list = field(default_factory=list)  # bytes chunks
    empty: bool = False

    def params(self) -> list:
        """Bound parameters as natural values (decoded by the types the server declared)."""
        out = []
        for i, raw in enumerate(self.raw_params):
            fmt = self.param_formats[i] if len(self.param_formats) > 1 else (self.param_formats[0] if self.param_formats else 0)
            oid = self.param_oids[i] if i < len(self.param_oids) else 0
            out.append(decode_value(oid, fmt, raw))
        return out

    def param_type_names(self) -> list:
        return [type_name(o) if o else "text" for o in self.param_oids[: len(self.raw_params)]]

    def natural_rows(self) -> list:
        return [
            [decode_value(f.type_oid, f.format, v) for f, v in zip(self.fields, row)] for row in self.rows
        ]


@dataclass
class _Statement:
    sql: str
    param_oids: tuple = ()
    fields: tuple | None = None


@dataclass
class _Portal:
    statement: _Statement
    params: tuple
    param_formats: tuple
    result_formats: tuple
    fields: tuple | None = None
    exchange: Exchange | None = None  # kept across PortalSuspended


def _with_formats(fields: tuple, formats: tuple) -> tuple:
    if not formats:
        return fields
    out = []
    for i, f in enumerate(fields):
        fmt = formats[0] if len(formats) == 1 else (formats[i] if i < len(formats) else 0)
        out.append(m.FieldDescription(f.name, f.type_oid, f.type_size, f.type_modifier, fmt, f.table_oid,
                                      f.column_attnum))
    return tuple(out)


class Tracker:
    def __init__(self, on_exchange: Callable[[Exchange], None] | None = None):
        self.on_exchange = on_exchange or (lambda ex: None)
        self.statements: dict[str, _Statement] = {}
        self.portals: dict[str, _Portal] = {}
        self.pending: deque = deque()
        self.current: Exchange | None = None
        self.copy_both = False
        self._orphan_notices: list = []
        self._suspended: list = []

    # ------------------------------------------------------------------ frontend
    def client(self, msg) -> None:
        if isinstance(msg, m.Query):
            stmts = split_statements(msg.sql) or [msg.sql]
            self.pending.append(["query", stmts, 0])
        elif isinstance(msg, m.Parse):
            st = _Statement(msg.sql, tuple(msg.param_oids))
            self.pending.append(["parse", msg.name, st])
            self.statements[msg.name] = st  # the server replaces it (or fails) in order
        elif isinstance(msg, m.Bind):
            # ops keep the objects current when the message was sent: a pipeline may rebind
            # the unnamed portal/statement before the server answers the earlier ones
            st = self.statements.get(msg.statement) or _Statement("")
            portal = _Portal(st, msg.params, msg.param_formats, msg.result_formats)
            self.portals[msg.portal] = portal
            self.pending.append(["bind", msg.portal, portal])
        elif isinstance(msg, m.Describe):
            target = self.statements.get(msg.name) if msg.kind == "S" else self.portals.get(msg.name)
            self.pending.append(["describe", msg.kind, msg.name, target])
        elif isinstance(msg, m.Execute):
            self.pending.append(["execute", msg.portal, self.portals.get(msg.portal)])
        elif isinstance(msg, m.Close):
            self.pending.append(["close"])
        elif isinstance(msg, m.Sync):
            self.pending.append(["sync"])
        elif isinstance(msg, m.CopyData):
            if self.current is not None and self.current.copy == "in":
                self.current.copy_data.append(msg.data)
        # Flush, CopyDone, CopyFail, FunctionCall, Terminate: no reply to attribute here

    # ------------------------------------------------------------------ backend
    def _front(self):
        return self.pending[0] if self.pending else None

    def _exchange(self) -> Exchange | None:
        """The exchange the next result message belongs to (created on first use)."""
        if self.current is not None:
            return self.current
        op = self._front()
        if op is None:
            return None
        if op[0] == "query":
            stmts, i = op[1], op[2]
            sql = stmts[i] if i < len(stmts) else (stmts[-1] if stmts else "")
            self.current = Exchange(sql, "simple")
        elif op[0] == "execute":
            portal = op[2]
            if portal is None:
                return None
            if portal.exchange is not None:
                self.current = portal.exchange
                portal.exchange = None
            else:
                st = portal.statement
                fields = portal.fields if portal.fields is not None else _with_formats(
                    st.fields or (), portal.result_formats)
                self.current = Exchange(st.sql, "extended", portal.params, portal.param_formats, st.param_oids,
                                        fields, has_rows=bool(fields))
        elif op[0] in ("parse", "bind"):
            st = op[2] if op[0] == "parse" else op[2].statement
            ex = Exchange(st.sql, "extended")
            if op[0] == "bind":
                p = op[2]
                ex.raw_params, ex.param_formats, ex.param_oids = p.params, p.param_formats, st.param_oids
            self.current = ex
        else:
            return None
        if self._orphan_notices:
            self.current.notices.extend(self._orphan_notices)
            self._orphan_notices = []
        return self.current

    def _finish(self) -> None:
        ex, self.current = self.current, None
        if ex is not None:
            self.on_exchange(ex)

    def row_fields(self) -> tuple:
        """Columns (with formats) of the DataRow about to be relayed."""
        ex = self._exchange()
        return ex.fields if ex is not None else ()

    def server(self, msg) -> None:
        if self.copy_both:
            return
        op = self._front()
        kind = op[0] if op else None
        if isinstance(msg, m.ParseComplete) and kind == "parse":
            self.pending.popleft()
        elif isinstance(msg, m.BindComplete) and kind == "bind":
            self.pending.popleft()
        elif isinstance(msg, m.CloseComplete) and kind == "close":
            self.pending.popleft()
        elif isinstance(msg, m.ParameterDescription) and kind == "describe":
            st = op[3]
            if st is not None and op[1] == "S":
                st.param_oids = tuple(msg.type_oids)
        elif isinstance(msg, (m.RowDescription, m.NoData)) and kind == "describe":
            fields = msg.fields if isinstance(msg, m.RowDescription) else ()
            if op[3] is not None:
                op[3].fields = fields  # a _Statement (S) or a _Portal (P)
            self.pending.popleft()
        elif isinstance(msg, m.RowDescription):
            ex = self._exchange()
            if ex is not None:
                ex.fields, ex.has_rows = msg.fields, True
        elif isinstance(msg, m.DataRow):
            ex = self._exchange()
            if ex is not None:
                ex.rows.append(msg.values)
        elif isinstance(msg, m.NoticeResponse):
            ex = self.current if self.current is not None else (
                self._exchange() if kind in ("query", "execute") else None)
            (ex.notices if ex is not None else self._orphan_notices).append(msg.notice)
        elif isinstance(msg, (m.CopyInResponse, m.CopyOutResponse)):
            ex = self._exchange()
            if ex is not None:
                ex.copy = "in" if isinstance(msg, m.CopyInResponse) else "out"
                ex.copy_format = msg.format
        elif isinstance(msg, m.CopyBothResponse):
            self.copy_both = True  # replication or a custom channel: relayed, not recorded
        elif isinstance(msg, m.CopyData):
            if self.current is not None and self.current.copy == "out":
                self.current.copy_data.append(msg.data)
        elif isinstance(msg, (m.CommandComplete, m.EmptyQueryResponse, m.PortalSuspended)):
            ex = self._exchange()
            if isinstance(msg, m.PortalSuspended):
                p = op[2] if kind == "execute" else None
                if p is not None:
                    p.exchange, self.current = ex, None
                    self._suspended.append(p)
            else:
                if ex is not None:
                    if isinstance(msg, m.CommandComplete):
                        ex.tag = msg.tag
                    else:
                        ex.empty = True
                self._finish()
            if kind == "query":
                op[2] += 1
            elif kind == "execute":
                self.pending.popleft()
        elif isinstance(msg, m.ErrorResponse):
            ex = self._exchange() if kind in ("query", "execute", "parse", "bind") else self.current
            if ex is not None:
                ex.error = msg.error
                self._finish()
            # the server skips to Sync (extended) or ends the Query
            while self.pending and self.pending[0][0] not in ("sync", "query"):
                self.pending.popleft()
        elif isinstance(msg, m.ReadyForQuery):
            if self.current is not None:
                self._finish()
            for p in self._suspended:  # suspended portals (a row limit) end with the Sync
                if p.exchange is not None:
                    self.current, p.exchange = p.exchange, None
                    self._finish()
            self._suspended = []
            if kind in ("sync", "query"):
                self.pending.popleft()
