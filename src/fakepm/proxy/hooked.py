"""Proxy hooks on the relay: what a session decodes when `ProxyHooks` are installed.

Without hooks the relay only looks at frame headers (proxy/link.py). With hooks every
message is decoded with the shared codecs: the client's go through the Tracker (which reply
answers which message, for `on_exchange` and the recorder), `on_query` may rewrite a
statement or answer it here, and the upstream's messages are offered to `on_row` (DataRow
values) and `on_change` (pgoutput tuples inside a replication stream) before they are
re-encoded for the client. Hooks run on the server's I/O thread: they must not block.
"""

from __future__ import annotations

import dataclasses

import struct

from ..answers.result import Result
from ..protocol import messages as m
from ..protocol import pgoutput as po
from ..protocol.errors import PgError
from ..protocol.replication import XLogData, decode_replication_message
from .hooks import ColumnInfo, ConnInfo
from .tracker import Tracker, decode_value, encode_value, type_name


_HDR = struct.Struct("!Bi")


class HookError(Exception):
    """A hook raised or returned something the relay cannot use; the text names the hook."""


class HookedSession:
    """One relayed session's view for its hooks."""

    def __init__(self, hooks: list, info: ConnInfo, errors: list):
        self.hooks = hooks
        self.info = info
        self.errors = errors  # the backend's list of problems (Proxy.errors)
        # hooks that read raw frames (the recorder: `raw_frames = True`, `open_tap(conn)`) get them
        # through a tap; the others need messages decoded, and the Tracker only for on_exchange
        self.taps: list = []
        self._raw = [h for h in hooks if getattr(h, "raw_frames", False)]
        decoded = [h for h in hooks if not getattr(h, "raw_frames", False)]
        self.pgoutput: po.PgoutputDecoder | None = None
        self._rows = any(_overrides(h, "on_row") for h in decoded)
        self._changes = any(_overrides(h, "on_change") for h in decoded)
        self._decode = self._rows or self._changes or any(_overrides(h, "on_exchange") for h in decoded)
        self.tracker = Tracker(self._exchange) if self._decode else None
        self._queries = any(_overrides(h, "on_query") for h in hooks)
        # only raw-frame taps: the relay's fast path may run, handing them the frames it relayed
        self.taps_only = not self._decode and not self._queries

    # ------------------------------------------------------------------ lifecycle
    def connected(self) -> None:
        for h in self._raw:
            tap = h.open_tap(self.info)
            if tap is not None:
                self.taps.append(tap)
        for h in self.hooks:
            h.on_connect(self.info)

    def _tap_failed(self, tap, e: Exception) -> None:
        self.errors.append(f"connection #{self.info.id}: {type(tap).__name__}: {type(e).__name__}: {e}")
        self.taps = [t for t in self.taps if t is not tap]  # it lost its place in the conversation

    def disconnected(self) -> None:
        for h in self.hooks:
            try:
                h.on_disconnect(self.info)
            except Exception as e:  # noqa: BLE001 - the connection is gone anyway
                self.errors.append(f"{type(h).__name__}.on_disconnect: {type(e).__name__}: {e}")

    # ------------------------------------------------------------------ client -> upstream
    def on_query(self, sql: str):
        """(local answer or None, the SQL to send) after every hook's on_query."""
        if not self._queries:
            return None, sql
        for h in self.hooks:
            try:
                r = h.on_query(sql, self.info)
            except Exception as e:  # noqa: BLE001 - reported, and the client gets a FATAL naming it
                self.errors.append(f"connection #{self.info.id}: {type(h).__name__}.on_query: {type(e).__name__}: {e}")
                raise HookError(f"{type(h).__name__}.on_query raised {type(e).__name__}: {e}") from None
            if r is None:
                continue
            if isinstance(r, str):
                sql = r
                continue
            if isinstance(r, (Result, PgError)):
                return r, sql
            raise HookError(f"{type(h).__name__}.on_query returned {r!r}: expected None, a str, a Result "
                            "(see fakepm.proxy.answer) or a PgError")
        return None, sql

    def client_frames(self, data: bytes, end: int) -> None:
        """Frames data[:end] the relay's fast path forwarded (whole frames), for the taps."""
        pos = 0
        unpack = _HDR.unpack_from
        while pos < end:
            kind, length = unpack(data, pos)
            nxt = pos + 1 + length
            body = data[pos + 5:nxt]
            for tap in self.taps:
                try:
                    tap.client(data[pos:pos + 1], body)
                except Exception as e:  # noqa: BLE001
                    self._tap_failed(tap, e)
            pos = nxt

    def client(self, t: bytes, body: bytes) -> None:
        """A message forwarded to the upstream, as the taps and the Tracker must see it."""
        for tap in self.taps:
            try:
                tap.client(t, body)
            except Exception as e:  # noqa: BLE001 - a recorder's bug must not break the relay
                self._tap_failed(tap, e)
        if self.tracker is None:
            return
        try:
            msg = m.decode_frontend(t, body)
        except m.ProtocolViolation:
            return
        self.tracker.client(msg)

    # ------------------------------------------------------------------ upstream -> client
    def frame(self, kind: int, body: bytes, raw: bytes) -> bytes:
        """One upstream frame: the bytes the client gets instead (the same when unchanged)."""
        for tap in self.taps:
            try:
                tap.server(kind, body)
            except Exception as e:  # noqa: BLE001 - a recorder's bug must not break the relay
                self._tap_failed(tap, e)
        if not self._decode:
            if kind == 90:
                self.info.transaction_status = chr(body[0])
            return raw
        t = bytes((kind,))
        try:
            msg = m.decode_backend(t, body)
        except m.ProtocolViolation:
            return raw
        tracker = self.tracker
        if kind == 68 and self._rows and not tracker.copy_both:
            new = self._row(msg)
            if new is not None:
                msg, raw = new, new.encode()
        elif kind == 100 and self._changes and tracker.copy_both:
            payload = self._replication(msg.data)
            if payload is not None:
                msg = m.CopyData(payload)
                raw = msg.encode()
        elif kind == 90:
            self.info.transaction_status = msg.status
        if tracker is not None:
            tracker.server(msg)
        return raw

    def _row(self, msg: m.DataRow) -> m.DataRow | None:
        if self.tracker is None:
            return None
        fields = self.tracker.row_fields()
        if len(fields) != len(msg.values):
            return None
        cols = [ColumnInfo(f.name, type_name(f.type_oid, f.type_modifier), f.type_oid, f.table_oid) for f in fields]
        row = [decode_value(f.type_oid, f.format, v) for f, v in zip(fields, msg.values)]
        changed = False
        for h in self.hooks:
            new = h.on_row(cols, row, self.info)
            if new is not None:
                row, changed = list(new), True
        if not changed:
            return None
        return m.DataRow(tuple(encode_value(f.type_oid, f.format, v) for f, v in zip(fields, row)))

    def _replication(self, data: bytes) -> bytes | None:
        """Rewrite Insert/Update/Delete tuples inside an XLogData's pgoutput payload; None = unchanged."""
        if not data or data[:1] != b"w":
            return None
        try:
            xlog = decode_replication_message(data)
            if self.pgoutput is None:
                self.pgoutput = po.PgoutputDecoder()
            msg = self.pgoutput.decode(xlog.payload)
        except ValueError:
            return None  # not pgoutput (another plugin): relayed untouched
        if not isinstance(msg, (po.Insert, po.Update, po.Delete)):
            return None
        rel = self.pgoutput.relations.get(msg.relid)
        if rel is None:
            return None
        kw = {}
        for name in ("new", "key", "old"):  # key/old: identity columns may hold the value too
            tup = getattr(msg, name, None)
            if tup is not None:
                changed = self._tuple(rel, tup)
                if changed is not None:
                    kw[name] = changed
        if not kw:
            return None
        payload = dataclasses.replace(msg, **kw).encode()
        return XLogData(xlog.wal_start, xlog.wal_end, xlog.send_time, payload).encode()

    def _tuple(self, rel: po.Relation, tup) -> tuple | None:
        cols = [c.name for c in rel.columns]
        if len(cols) != len(tup):
            return None
        values = []
        for c, v in zip(rel.columns, tup):
            if isinstance(v, po.TextValue):
                values.append(decode_value(c.type_oid, 0, v.data))
            elif isinstance(v, po.BinaryValue):
                values.append(decode_value(c.type_oid, 1, v.data))
            else:
                values.append(None)
        orig = list(values)
        changed = False
        relation = f"{rel.namespace}.{rel.name}"
        for h in self.hooks:
            new = h.on_change(relation, cols, values, self.info)
            if new is not None:
                values, changed = list(new), True
        if not changed:
            return None
        out = []
        for c, old, before, after in zip(rel.columns, tup, orig, values):
            if after == before and (after is not None or not isinstance(old, (po.TextValue, po.BinaryValue))):
                out.append(old)
            elif after is None:
                out.append(None)
            elif isinstance(old, po.BinaryValue):
                out.append(po.BinaryValue(encode_value(c.type_oid, 1, after)))
            else:
                out.append(po.TextValue(encode_value(c.type_oid, 0, after)))
        return tuple(out)

    def _exchange(self, ex) -> None:
        for h in self.hooks:
            try:
                h.on_exchange(ex, self.info)
            except Exception as e:  # noqa: BLE001 - a logging hook must not break the relay
                self.errors.append(f"{type(h).__name__}.on_exchange: {type(e).__name__}: {e}")


def _overrides(hook, name: str) -> bool:
    from .hooks import ProxyHooks

    return getattr(type(hook), name, None) is not getattr(ProxyHooks, name)
