"""The CopyBoth side of START_REPLICATION, sans-I/O: bytes in, bytes out, time passed in.

`LogicalStream` reads the WAL log from its start position and turns records into XLogData
('w') through a PgoutputWriter; it sends keepalives ('k') at start, around transactions,
while idle (`keepalive_interval`), asks for a reply at wal_sender_timeout/2 and gives up at
wal_sender_timeout (PostgreSQL's WalSndKeepaliveIfNecessary / WalSndCheckTimeOut: the socket
is closed without an ErrorResponse); a client 'r' with replyRequested gets a 'k' at once.
Every 'r'/'h' goes to `on_feedback`. The caller (a Session adapter or a unit test) calls
`start()`, then `receive()` for each client frame and `poll()` whenever time passed or the
WAL grew, and sleeps until `deadline`.
"""

from __future__ import annotations

import struct
from typing import Callable

from ..protocol import messages as m
from ..protocol.errors import PgError, fatal
from ..protocol.replication import (
    HotStandbyFeedback,
    StandbyStatusUpdate,
    decode_replication_message,
    to_pg_timestamp,
)
from .encoder import PgoutputWriter
from .wal import Marker, Slot, WalLog

COPY_BOTH = m.CopyBothResponse(0, ()).encode()
_KEEPALIVE = struct.Struct(">cQqB")
_SEND_TIME = struct.Struct(">q")
BATCH_BYTES = 1 << 20  # stop filling the output after this much; poll() again right away


def _standby_message(body: bytes):
    """A client CopyData on a replication stream as PostgreSQL 15's walsender reads it
    (ProcessStandbyMessage): the message, a PgError (an ERROR: the stream ends, the connection
    goes back to commands), or None for a type it does not take (it hangs up silently).
    Bytes after a status update or feedback are ignored, as the walsender never checks them."""
    if not body:
        return PgError("08P01", "no data left in message")
    need = {b"r": StandbyStatusUpdate.SIZE, b"h": HotStandbyFeedback.SIZE}.get(body[:1])
    if need is None:
        return None
    if len(body) < need:
        return PgError("08P01", "insufficient data left in message")
    return decode_replication_message(body[:need])


class _Stream:
    """What logical and physical streams share: replies, pings, the timeout, the end."""

    def __init__(self, *, slot: Slot | None, now: float, clock: Callable[[], float], timeout: float,
                 keepalive_interval: float, on_feedback: Callable[[dict], None] | None = None, start_lsn: int = 0):
        self.slot = slot
        self.clock = clock  # wall clock (Unix seconds) for sendTime
        self.timeout = timeout  # wal_sender_timeout in seconds, 0 = off
        self.keepalive_interval = keepalive_interval  # idle keepalive period, 0 = off
        self.on_feedback = on_feedback
        self.start_lsn = start_lsn
        self.sent_ptr = start_lsn
        self.write = self.flush = self.apply = 0
        self.last_reply = now
        self.last_send = now
        self.ping_sent = False
        self.state = "streaming"  # streaming | done (client CopyDone) | closed
        self.close_reason: str | None = None
        self.error: PgError | None = None  # sent (by the adapter) before closing
        self.more = False

    # ------------------------------------------------------------------ output helpers
    def keepalive(self, reply: bool = False) -> bytes:
        return m.copy_data(_KEEPALIVE.pack(b"k", self.sent_ptr, to_pg_timestamp(self.clock()), 1 if reply else 0))

    # ------------------------------------------------------------------ input
    def receive(self, type_byte: bytes, body: bytes, now: float) -> bytes:
        if self.state != "streaming":
            return b""
        self.last_reply = now  # any client message counts as a reply (walsender.c)
        self.ping_sent = False
        if type_byte == b"d":
            msg = _standby_message(body)
            if msg is None or isinstance(msg, PgError):  # what PostgreSQL 15 does, see _standby_message
                return self._fail(msg) if msg is not None else self._hang_up(body)
            if isinstance(msg, StandbyStatusUpdate):
                self.write, self.flush, self.apply = msg.write, msg.flush, msg.apply
                self._feedback({"kind": "standby_status", "write": msg.write, "flush": msg.flush,
                                "apply": msg.apply, "clock": msg.clock, "reply_requested": msg.reply_requested})
                self._advance_slot(msg.flush)
                if msg.reply_requested:
                    self.last_send = now
                    return self.keepalive(False)
                return b""
            if isinstance(msg, HotStandbyFeedback):
                self._feedback({"kind": "hot_standby_feedback", "clock": msg.clock, "xmin": msg.xmin,
                                "epoch": msg.epoch, "catalog_xmin": msg.catalog_xmin,
                                "catalog_epoch": msg.catalog_epoch})
                return b""
            return self._hang_up(body)
        if type_byte == b"c":
            self.state = "done"
            return b""
        if type_byte == b"X":
            self.state = "closed"
            self.close_reason = "client sent Terminate"
            return b""
        # walsender.c ProcessRepliesIfAny: any other message (CopyFail too) is FATAL
        return self._fail(fatal("08P01", f'invalid standby message type "{type_byte.decode("latin-1")}"'))

    def _hang_up(self, body: bytes) -> bytes:
        """PostgreSQL logs an unknown standby message (COMMERROR) and exits: no ErrorResponse."""
        self.state = "closed"
        self.close_reason = f"unexpected standby message type {body[:1]!r}"
        return b""

    def _fail(self, err: PgError) -> bytes:
        self.state = "closed"
        self.error = err
        self.close_reason = f"{err.code} {err.message}"
        return b""

    def _feedback(self, data: dict) -> None:
        if self.on_feedback is not None:
            self.on_feedback(data)

    def _advance_slot(self, flush: int) -> None:
        pass

    # ------------------------------------------------------------------ time
    def _timers(self, now: float, out: list) -> None:
        if self.timeout > 0:
            if now - self.last_reply >= self.timeout:
                self.state = "closed"
                self.close_reason = "terminating walsender process due to replication timeout"
                return
            if not self.ping_sent and now - self.last_reply >= self.timeout / 2:
                self.ping_sent = True
                out.append(self.keepalive(True))
        if self.keepalive_interval > 0 and not out and now - self.last_send >= self.keepalive_interval:
            out.append(self.keepalive(False))

    @property
    def deadline(self) -> float | None:
        if self.state != "streaming":
            return None
        times = []
        if self.timeout > 0:
            times.append(self.last_reply + self.timeout)
            if not self.ping_sent:
                times.append(self.last_reply + self.timeout / 2)
        if self.keepalive_interval > 0:
            times.append(self.last_send + self.keepalive_interval)
        return min(times) if times else None


class LogicalStream(_Stream):
    def __init__(self, *, wal: WalLog, writer: PgoutputWriter, **kw):
        super().__init__(**kw)
        self.wal = wal
        self.writer = writer
        self.index = 0
        self.paused_until: float | None = None
        self.messages_sent = 0

    def start(self, now: float) -> bytes:
        self.last_send = now
        return COPY_BOTH + self.keepalive(False)

    def _advance_slot(self, flush: int) -> None:
        if self.slot is not None and flush > self.slot.confirmed_flush:
            self.slot.confirmed_flush = flush

    def _unconfirmed(self) -> bool:
        return self.flush < self.sent_ptr and self.write < self.sent_ptr

    def poll(self, now: float) -> bytes:
        if self.state != "streaming":
            return b""
        out: list[bytes] = []
        size = 0
        sent_any = moved = False
        self.more = False
        records = self.wal.records
        while self.index < len(records) and self.state == "streaming":
            if self.paused_until is not None:
                if now < self.paused_until:
                    break
                self.paused_until = None
            if size > BATCH_BYTES:
                self.more = True
                break
            rec = records[self.index]
            self.index += 1
            if isinstance(rec, Marker):
                self._marker(rec, now, out)
                continue
            if rec.position < self.start_lsn:
                continue  # confirmed earlier: PostgreSQL skips what commits before the start point
            try:
                segments, count = self.writer.frames(rec)
            except PgError as e:
                self._fail(e)
                break
            if count:
                if not sent_any and self._unconfirmed():
                    out.append(self.keepalive(False))
                b = _SEND_TIME.pack(to_pg_timestamp(self.clock())).join(segments)
                size += len(b)
                out.append(b)
                self.messages_sent += count
                sent_any = True
            if rec.end_lsn > self.sent_ptr:
                self.sent_ptr = rec.end_lsn
                moved = True
        if self.state == "streaming":
            if (sent_any or moved) and not self.more and self._unconfirmed():
                out.append(self.keepalive(False))
            self._timers(now, out)
        if out:
            self.last_send = now
        return b"".join(out)

    def _marker(self, rec: Marker, now: float, out: list) -> None:
        if rec.position < self.start_lsn or (rec.once and rec.fired):
            return
        rec.fired = True
        if rec.kind == "pause":
            self.paused_until = now + float(rec.data)
        elif rec.kind == "keepalive":
            out.append(self.keepalive(bool(rec.data)))
        elif rec.kind == "fault":
            kind, detail = rec.data
            if kind == "disconnect":
                self.state = "closed"
                self.close_reason = "fakepm fault: disconnect"
            else:
                self._fail(detail)

    @property
    def deadline(self) -> float | None:
        d = super().deadline
        if self.state != "streaming":
            return None
        if self.more:
            return 0.0
        if self.paused_until is not None:
            d = self.paused_until if d is None else min(d, self.paused_until)
        return d

    def end(self) -> bytes:
        """After the client's CopyDone: our CopyDone and the COPY tag."""
        return m.COPY_DONE + m.command_complete("COPY 0")


class PhysicalStream(_Stream):
    """START_REPLICATION PHYSICAL: the shape only (there is no real WAL to send)."""

    def start(self, now: float) -> bytes:
        self.last_send = now
        return COPY_BOTH

    def _advance_slot(self, flush: int) -> None:
        if self.slot is not None and flush > self.slot.restart_lsn:
            self.slot.restart_lsn = flush

    def poll(self, now: float) -> bytes:
        if self.state != "streaming":
            return b""
        out: list[bytes] = []
        self._timers(now, out)
        if out:
            self.last_send = now
        return b"".join(out)

    def end(self) -> bytes:
        return m.COPY_DONE + m.command_complete("START_STREAMING")
