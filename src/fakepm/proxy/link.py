"""fakepm's end of one upstream session on a real PostgreSQL, sans-I/O: the relay's core.

The relay forwards a client's messages to its own upstream session and the upstream's
replies back to the client. Bytes go through untouched; this module only reads what it
must to keep three facts true:

* which replies the upstream still owes (a FIFO of `Owed`, one per forwarded message that
  gets a reply). PostgreSQL answers strictly in order, so the FIFO is exact; after an
  ErrorResponse in the extended protocol the server skips everything up to Sync, and so
  does the FIFO. When nothing is owed the session may answer a message itself without
  mixing its bytes into the upstream's (`idle`).
* the transaction status of the last ReadyForQuery;
* the fate of each statement the journal records (its tag or its error).

Upstream bytes are scanned frame by frame without being copied: DataRow and CopyData
frames (all of a large result) cost one header read each and are forwarded as part of
the chunk they arrived in. Replies to messages fakepm sent on its own (`silent`, e.g. the
ROLLBACK that mirrors a scripted failed COMMIT) are cut out of the stream.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Callable

_HDR = struct.Struct("!Bi")
_LEN = struct.Struct("!i").unpack_from

# frontend message kinds that get replies (their type letters)
QUERY, PARSE, BIND, DESCRIBE, EXECUTE, CLOSE, SYNC, FUNCTION = b"QPBDECSF"
_ENDS_GROUP = (QUERY, SYNC, FUNCTION)  # replies end with ReadyForQuery

FLUSH = b"H\x00\x00\x00\x04"
SYNC_MSG = b"S\x00\x00\x00\x04"


class Owed:
    """One forwarded message whose reply has not fully arrived."""

    __slots__ = ("kind", "entries", "index", "silent", "hide_ready")

    def __init__(self, kind: int, entries=None, silent: bool = False, hide_ready: bool = False):
        self.kind = kind
        self.entries = entries  # journal entries this reply completes (Query: one per statement)
        self.index = 0  # Query: the statement whose results are arriving
        self.silent = silent  # fakepm's own message: none of its reply reaches the client
        self.hide_ready = hide_ready  # one statement of a split Query: its ReadyForQuery is fakepm's to send


# replies that carry nothing to record share one object (the fast path makes one per message)
OWED_PARSE, OWED_BIND, OWED_DESCRIBE, OWED_CLOSE, OWED_SYNC, OWED_FUNCTION = (
    Owed(k) for k in (PARSE, BIND, DESCRIBE, CLOSE, SYNC, FUNCTION))


class EngineLink:
    """The upstream side of one relayed session.

    `forward(raw, owed)` queues bytes for the upstream; `take_output()` hands them to the
    I/O layer. `feed(data, send)` scans upstream bytes and passes what the client must see
    to `send` (whole chunks when nothing is cut out).
    """

    def __init__(self, on_error: Callable | None = None):
        self.owed: deque[Owed] = deque()
        self.status = "I"  # transaction status of the last ReadyForQuery
        self.skipping = False  # the upstream discards extended messages until Sync (it sent an error)
        self.copy_in = False  # the upstream waits for CopyData from the client
        self.copy_both = False  # a CopyBoth stream (replication) is running
        self.dirty = False  # something was forwarded since the last ReadyForQuery
        self.unflushed = False  # extended messages forwarded after the last Sync/Flush (no reply yet)
        self.statements: dict[str, tuple] = {}  # upstream prepared statements: name -> (sql, param oids)
        self.portals: dict[str, tuple] = {}  # upstream portals: name -> (sql, statement, Bind body or (params, formats))
        self.on_error = on_error  # callable(PgError, entry or None) for the journal and the transcript
        self.on_copy = None  # callable(direction, entry or None) -> a record with count/error, for pg.copies
        self._copy = None  # the record of the COPY running now
        # replication fault plans (`at: replication, after_rows: N`): the stream pauses after the
        # Nth XLogData so the session can apply them; the rest waits in _held
        self.xlog_marks: list | None = None  # sorted message counts still to pause at
        self.xlog_sent = 0  # XLogData messages relayed in this CopyBoth stream
        self.paused = False
        self._pause_after = False
        self._held: list = []
        # proxy hooks (proxy/hooked.py): every frame decoded and offered, callable(kind, body, raw) -> raw
        self.frame_hook: Callable | None = None
        self._fbuf = bytearray()
        self.fatal = False  # the upstream sent a FATAL error: it is closing
        self.broken = False  # the upstream sent a frame length below 4: its bytes are relayed unread
        self._out: list = []
        # scanner state across chunks
        self._left = 0  # bytes of the current frame still to come
        self._kind = 0  # its type
        self._keep: bytearray | None = None  # its bytes, when fakepm must read the frame
        self._drop = False  # the current frame is cut out of the client's stream
        self._hdr = b""  # a frame header split across chunks

    # ------------------------------------------------------------------ to the upstream
    def forward(self, raw: bytes, owed: Owed | None = None) -> None:
        self._out.append(raw)
        self.dirty = True
        if owed is not None:
            self.owed.append(owed)
            k = owed.kind
            if k in _ENDS_GROUP:
                self.unflushed = False
            else:
                self.unflushed = True

    def flush(self) -> None:
        """Ask for the replies to extended messages not yet followed by Sync (PostgreSQL holds
        them in its output buffer until Sync or Flush)."""
        if self.unflushed:
            self._out.append(FLUSH)
            self.unflushed = False

    def take_output(self) -> bytes:
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    @property
    def idle(self) -> bool:
        """Nothing is owed: a reply fakepm sends now cannot cut into one of the upstream's."""
        return not self.owed

    # ------------------------------------------------------------------ from the upstream
    def pause_at(self, marks: list) -> None:
        """A CopyBoth stream starts: pause after these XLogData counts (0: right away)."""
        self.xlog_marks = list(marks) or None
        if marks and marks[0] <= 0:
            self._pause_after = True

    def resume(self, send: Callable[[bytes], None]) -> None:
        """Go on after a pause (the session applied its replication faults)."""
        self.paused = False
        marks = self.xlog_marks
        if marks:
            while marks and marks[0] <= self.xlog_sent:
                marks.pop(0)
        held, self._held = self._held, []
        if held:
            self.feed(b"".join(held), send)

    def _pause(self, data: bytes, start: int, end: int, send) -> None:
        if start < end:
            send(data[start:end])
        self._pause_after = False
        self.paused = True
        if end < len(data):
            self._held.append(data[end:])

    def feed(self, data: bytes, send: Callable[[bytes], None]) -> None:
        if self.paused:
            self._held.append(data)
            return
        if self.broken:
            send(data)
            return
        if self.frame_hook is not None:
            self._feed_framed(data, send)
            return
        if self._hdr:  # a header held back from the previous chunk
            data = self._hdr + data
            self._hdr = b""
        n = len(data)
        pos = start = 0  # start: first byte not yet passed to send (or cut out)
        if self._left:  # the rest of a frame that began in an earlier chunk
            k = self._left if self._left < n else n
            if self._keep is not None:
                self._keep += data[:k]
            self._left -= k
            pos = k
            if self._drop:
                start = k
            if not self._left:
                self._drop = False
                if self._keep is not None:
                    body, self._keep = bytes(self._keep), None
                    self._frame(self._kind, body)
                if self._pause_after:
                    self._pause(data, start, pos, send)
                    return
        unpack = _HDR.unpack_from
        counting = self.xlog_marks is not None and self.copy_both
        owed = self.owed
        while pos < n:
            if n - pos < (6 if counting else 5):  # hold a split header back: the frame's fate is not known yet
                if start < pos:
                    send(data[start:pos])
                self._hdr = data[pos:]
                return
            kind, length = unpack(data, pos)
            if length < 4:  # not PostgreSQL's framing: relay the rest untouched, read nothing more
                self.broken = True
                send(data[start:])
                return
            end = pos + 1 + length
            if kind == 68 or kind == 100:  # DataRow, CopyData: nothing to read or decide
                if not counting and not (owed and owed[0].silent):
                    # a run of rows (or COPY data) going to the client: only their lengths matter
                    pos = end
                    while pos < n - 4:
                        k = data[pos]
                        ln = _LEN(data, pos + 1)[0]
                        if (k != 68 and k != 100) or ln < 4:
                            break
                        pos += 1 + ln
                    if pos > n:
                        self._left, self._keep = pos - n, None
                    continue
                if counting and kind == 100 and data[pos + 5] == 119:  # an XLogData ('w')
                    self.xlog_sent += 1
                    if self.xlog_marks and self.xlog_sent >= self.xlog_marks[0]:
                        self._pause_after = True
                if owed and owed[0].silent:
                    if start < pos:
                        send(data[start:pos])
                    if end > n:
                        self._left, self._drop, self._keep = end - n, True, None
                        start = n
                    else:
                        start = end
                elif end > n:
                    self._left, self._keep = end - n, None
                pos = end
                if self._pause_after and end <= n:
                    self._pause(data, start, end, send)
                    return
                continue
            drop = False
            if owed:
                head = owed[0]
                drop = head.silent or (kind == 90 and head.hide_ready)
            if drop and start < pos:
                send(data[start:pos])
            if end <= n:
                if drop:
                    start = end
                self._frame(kind, data[pos + 5:end])
            else:
                self._left, self._kind, self._keep, self._drop = end - n, kind, bytearray(data[pos + 5:]), drop
                if drop:
                    start = n
            pos = end
            if self._pause_after and end <= n:
                self._pause(data, start, end, send)
                return
            counting = self.xlog_marks is not None and self.copy_both
        if start < n:
            send(data if start == 0 else data[start:])

    def _feed_framed(self, data: bytes, send: Callable[[bytes], None]) -> None:
        """With proxy hooks: whole frames only, each offered to frame_hook (which may change it)."""
        buf = self._fbuf
        buf += data
        n = len(buf)
        pos = 0
        out = []
        unpack = _HDR.unpack_from
        while n - pos >= 5:
            kind, length = unpack(buf, pos)
            if length < 4:  # not PostgreSQL's framing: relay the rest untouched, read nothing more
                self.broken = True
                out.append(bytes(buf[pos:]))
                pos = n
                break
            end = pos + 1 + length
            if end > n:
                break
            body = bytes(buf[pos + 5:end])
            owed = self.owed
            silent = bool(owed) and owed[0].silent
            if not silent:  # fakepm's own messages are not the hooks' business
                raw = self.frame_hook(kind, body, bytes(buf[pos:end]))
                if raw and not self._drops(kind):
                    out.append(raw)
            if kind == 100 and self.xlog_marks is not None and self.copy_both and body[:1] == b"w":
                self.xlog_sent += 1
                if self.xlog_marks and self.xlog_sent >= self.xlog_marks[0]:
                    self._pause_after = True
            self._frame(kind, body)
            pos = end
            if self._pause_after:
                self._pause_after = False
                self.paused = True
                if pos < n:
                    self._held.append(bytes(buf[pos:]))
                pos = n
                break
        del buf[:pos]
        if out:
            send(b"".join(out))

    def _drops(self, kind: int) -> bool:
        """Is this frame cut out of the client's stream?"""
        owed = self.owed
        if not owed:
            return False
        head = owed[0]
        if head.silent:
            return True
        return kind == 90 and head.hide_ready

    def _frame(self, kind: int, body: bytes) -> None:
        owed = self.owed
        if kind == 90:  # ReadyForQuery
            self.status = chr(body[0]) if body else "I"
            self.skipping = False
            self.copy_in = False
            self.copy_both = False
            self.dirty = False
            while owed:
                o = owed.popleft()
                if o.kind in _ENDS_GROUP:
                    break
            return
        if not owed:
            if kind == 69:
                self._error(body, None)
            return
        head = owed[0]
        hk = head.kind
        if kind == 67 or kind == 73:  # CommandComplete, EmptyQueryResponse
            self.copy_in = False
            if self._copy is not None:
                rec, self._copy = self._copy, None
                words = body[:-1].split()
                if len(words) == 2 and words[0] == b"COPY" and words[1].isdigit():
                    rec.count = int(words[1])
            if hk == QUERY:
                entries = head.entries
                if entries and head.index < len(entries):
                    if kind == 67:
                        entries[head.index].tag = body[:-1].decode("utf-8", "replace")
                    head.index += 1
            elif hk == EXECUTE:
                if kind == 67 and head.entries:
                    head.entries[0].tag = body[:-1].decode("utf-8", "replace")
                owed.popleft()
        elif kind == 49 or kind == 50 or kind == 51:  # ParseComplete, BindComplete, CloseComplete
            owed.popleft()
        elif kind == 84 or kind == 110:  # RowDescription, NoData
            if hk == DESCRIBE:
                owed.popleft()
        elif kind == 115:  # PortalSuspended
            if hk == EXECUTE:
                owed.popleft()
        elif kind == 69:  # ErrorResponse
            self.copy_in = False
            rec, self._copy = self._copy, None
            entry = None
            if head.entries:
                i = head.index if hk == QUERY else 0
                if i < len(head.entries):
                    entry = head.entries[i]
            err = self._error(body, entry, head.silent)
            if rec is not None and err is not None:
                rec.error = f"{err.code} {err.message}"
            if hk not in _ENDS_GROUP:
                # the upstream now discards every extended message until Sync
                self.skipping = True
                while owed and owed[0].kind not in _ENDS_GROUP:
                    owed.popleft()
        elif kind == 71 or kind == 72 or kind == 87:  # CopyIn/CopyOut/CopyBothResponse
            if kind == 71:
                self.copy_in = True
            elif kind == 87:
                self.copy_both = True
                self.xlog_sent = 0
            if self.on_copy is not None:
                entries = head.entries
                i = head.index if hk == QUERY else 0
                entry = entries[i] if entries and i < len(entries) else None
                self._copy = self.on_copy("in" if kind == 71 else "out" if kind == 72 else "both", entry)

    def _error(self, body: bytes, entry, silent: bool = False):
        from ..protocol.messages import ErrorResponse

        try:
            err = ErrorResponse.decode(body).error
        except Exception:  # noqa: BLE001 - a malformed error still goes to the client untouched
            return None
        if err.is_fatal:
            self.fatal = True
        if entry is not None:
            entry.error = f"{err.code} {err.message}"
        if self.on_error is not None and not silent:
            self.on_error(err, entry)
        return err
