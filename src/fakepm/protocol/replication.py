"""The CopyData sub-protocol spoken inside START_REPLICATION (sans-I/O).

Once a walsender has answered START_REPLICATION with CopyBothResponse, every CopyData
message carries one of these payloads (PostgreSQL docs, "Streaming Replication
Protocol"; walsender.c ``XLogSendLogical``/``WalSndKeepalive``/``ProcessStandbyMessage``):

=====================  ====  ==========================================================  ====
message                dir   layout (big-endian; LSN = uint64; time = int64 us since     size
                             2000-01-01 UTC)
=====================  ====  ==========================================================  ====
XLogData               S->C  ``w`` walStart:u64 walEnd:u64 sendTime:i64 payload...        25+n
Primary keepalive      S->C  ``k`` walEnd:u64 sendTime:i64 replyRequested:u8              18
Standby status update  C->S  ``r`` write:u64 flush:u64 apply:u64 clock:i64                34
                             replyRequested:u8
Hot standby feedback   C->S  ``h`` clock:i64 xmin:u32 epoch:u32 catalog_xmin:u32          25
                             catalog_epoch:u32
=====================  ====  ==========================================================  ====

This module only turns those payloads into frozen dataclasses and back; framing them in
CopyData ('d') is the job of protocol.messages. Nothing here reads a clock: times are
plain integers (microseconds since :data:`PG_EPOCH`) that the caller passes in; use
:func:`to_pg_timestamp` / :func:`from_pg_timestamp` to convert.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import ClassVar, Union

__all__ = [
    "PG_EPOCH",
    "PG_EPOCH_UNIX",
    "USECS_PER_SEC",
    "INVALID_LSN",
    "format_lsn",
    "parse_lsn",
    "to_pg_timestamp",
    "from_pg_timestamp",
    "XLogData",
    "PrimaryKeepalive",
    "StandbyStatusUpdate",
    "HotStandbyFeedback",
    "ReplicationMessage",
    "decode_replication_message",
]

#: PostgreSQL's timestamp epoch (``POSTGRES_EPOCH_JDATE``): 2000-01-01 00:00:00 UTC.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: The same instant in Unix seconds.
PG_EPOCH_UNIX = 946_684_800
USECS_PER_SEC = 1_000_000
#: ``InvalidXLogRecPtr``; printed as ``0/0``.
INVALID_LSN = 0

_U64_MAX = 2**64 - 1
_LSN_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


# ---------------------------------------------------------------------------------------
# LSNs


def format_lsn(lsn: int) -> str:
    """Format an LSN the way PostgreSQL prints it (``%X/%X``): ``0x16B374D848`` -> ``16/B374D848``.

    Upper-case hex, no leading zeros in either half; 0 is ``0/0``.
    """
    if isinstance(lsn, bool) or not isinstance(lsn, int):
        raise TypeError(f"an LSN is an int, got {type(lsn).__name__}")
    if not 0 <= lsn <= _U64_MAX:
        raise ValueError(f"LSN {lsn} is outside 0..2**64-1")
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """Parse ``X/X`` as ``pg_lsn_in`` does: 1-8 hex digits, ``/``, 1-8 hex digits, nothing else.

    Accepts ``0/0``, ``0/00000000``, upper or lower case. Raises ValueError otherwise.
    """
    if not isinstance(text, str):
        raise TypeError(f"an LSN text is a str, got {type(text).__name__}")
    m = _LSN_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            f"invalid input syntax for type pg_lsn: {text!r} "
            "(expected 1-8 hex digits, '/', 1-8 hex digits, e.g. '16/B374D848')"
        )
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


# ---------------------------------------------------------------------------------------
# Timestamps (TimestampTz: int64 microseconds since 2000-01-01 UTC)


def to_pg_timestamp(value: Union[datetime, float, int]) -> int:
    """Microseconds since :data:`PG_EPOCH` for a datetime or Unix seconds (int or float).

    A naive datetime is taken as UTC. Floats are rounded to the nearest microsecond.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - PG_EPOCH) // timedelta(microseconds=1)
    if isinstance(value, bool):
        raise TypeError("to_pg_timestamp() takes a datetime or Unix seconds, not a bool")
    if isinstance(value, int):
        return (value - PG_EPOCH_UNIX) * USECS_PER_SEC
    if isinstance(value, float):
        return round(value * USECS_PER_SEC) - PG_EPOCH_UNIX * USECS_PER_SEC
    raise TypeError(
        f"to_pg_timestamp() takes a datetime or Unix seconds (int/float), got {type(value).__name__}"
    )


def from_pg_timestamp(usecs: int) -> datetime:
    """The aware (UTC) datetime for a TimestampTz in microseconds since :data:`PG_EPOCH`.

    Raises ValueError for values Python's datetime cannot hold (including PostgreSQL's
    ``-infinity``/``infinity``, INT64_MIN/INT64_MAX).
    """
    if isinstance(usecs, bool) or not isinstance(usecs, int):
        raise TypeError(f"a PostgreSQL timestamp is an int, got {type(usecs).__name__}")
    try:
        return PG_EPOCH + timedelta(microseconds=usecs)
    except OverflowError:
        raise ValueError(
            f"PostgreSQL timestamp {usecs} us is outside the range of datetime"
        ) from None


# ---------------------------------------------------------------------------------------
# Helpers


def _pack(fmt: str, value: object, what: str) -> bytes:
    try:
        return struct.pack(fmt, value)
    except struct.error:
        kinds = {">Q": "uint64", ">q": "int64", ">I": "uint32", ">B": "uint8"}
        raise ValueError(f"{what}={value!r} does not fit in {kinds.get(fmt, fmt)}") from None


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, got {type(value).__name__}")


# ---------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class XLogData:
    """``w``: WAL data. For logical replication ``payload`` is one pgoutput message.

    walsender puts the change's LSN in both ``wal_start`` and ``wal_end`` for logical
    streams (0/0 for Relation/Type), and the first payload byte's position / its flush
    position for physical ones.
    """

    wal_start: int
    wal_end: int
    send_time: int
    payload: bytes = b""

    TYPE: ClassVar[bytes] = b"w"
    HEADER_SIZE: ClassVar[int] = 25

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", _as_bytes(self.payload, "XLogData.payload"))

    def encode(self) -> bytes:
        return b"".join(
            (
                b"w",
                _pack(">Q", self.wal_start, "XLogData.wal_start"),
                _pack(">Q", self.wal_end, "XLogData.wal_end"),
                _pack(">q", self.send_time, "XLogData.send_time"),
                self.payload,
            )
        )


@dataclass(frozen=True)
class PrimaryKeepalive:
    """``k``: server keepalive; ``reply_requested`` asks for an immediate standby status update."""

    wal_end: int
    send_time: int
    reply_requested: bool = False

    TYPE: ClassVar[bytes] = b"k"
    SIZE: ClassVar[int] = 18

    def encode(self) -> bytes:
        return b"".join(
            (
                b"k",
                _pack(">Q", self.wal_end, "PrimaryKeepalive.wal_end"),
                _pack(">q", self.send_time, "PrimaryKeepalive.send_time"),
                b"\x01" if self.reply_requested else b"\x00",
            )
        )


@dataclass(frozen=True)
class StandbyStatusUpdate:
    """``r``: client progress. LSNs written / flushed / applied; ``clock`` is the client's time."""

    write: int
    flush: int
    apply: int
    clock: int
    reply_requested: bool = False

    TYPE: ClassVar[bytes] = b"r"
    SIZE: ClassVar[int] = 34

    def encode(self) -> bytes:
        return b"".join(
            (
                b"r",
                _pack(">Q", self.write, "StandbyStatusUpdate.write"),
                _pack(">Q", self.flush, "StandbyStatusUpdate.flush"),
                _pack(">Q", self.apply, "StandbyStatusUpdate.apply"),
                _pack(">q", self.clock, "StandbyStatusUpdate.clock"),
                b"\x01" if self.reply_requested else b"\x00",
            )
        )


@dataclass(frozen=True)
class HotStandbyFeedback:
    """``h``: physical standby's xmin / catalog_xmin with their epochs (walreceiver, hot_standby_feedback=on)."""

    clock: int
    xmin: int
    epoch: int
    catalog_xmin: int
    catalog_epoch: int

    TYPE: ClassVar[bytes] = b"h"
    SIZE: ClassVar[int] = 25

    def encode(self) -> bytes:
        return b"".join(
            (
                b"h",
                _pack(">q", self.clock, "HotStandbyFeedback.clock"),
                _pack(">I", self.xmin, "HotStandbyFeedback.xmin"),
                _pack(">I", self.epoch, "HotStandbyFeedback.epoch"),
                _pack(">I", self.catalog_xmin, "HotStandbyFeedback.catalog_xmin"),
                _pack(">I", self.catalog_epoch, "HotStandbyFeedback.catalog_epoch"),
            )
        )


ReplicationMessage = Union[XLogData, PrimaryKeepalive, StandbyStatusUpdate, HotStandbyFeedback]

_STATUS = struct.Struct(">QQQq")
_FEEDBACK = struct.Struct(">qIIII")
_XLOG_HEADER = struct.Struct(">QQq")

_NAMES = {
    b"w": "XLogData 'w'",
    b"k": "primary keepalive 'k'",
    b"r": "standby status update 'r'",
    b"h": "hot standby feedback 'h'",
}


def decode_replication_message(data: bytes) -> ReplicationMessage:
    """Decode one CopyData payload of the replication sub-protocol.

    Raises ValueError naming the problem: empty payload, unknown type byte, wrong length.
    A non-zero replyRequested byte counts as true (walsender tests it for non-zero).
    """
    data = _as_bytes(data, "replication message")
    if not data:
        raise ValueError("empty replication message: expected a type byte ('w', 'k', 'r' or 'h')")
    kind = data[:1]
    name = _NAMES.get(kind)
    if name is None:
        raise ValueError(
            f"unknown replication message type byte {kind!r} (0x{data[0]:02x}); "
            "expected 'w' (XLogData), 'k' (keepalive), 'r' (standby status) or 'h' (hot standby feedback)"
        )
    size = len(data)
    if kind == b"w":
        if size < XLogData.HEADER_SIZE:
            raise ValueError(
                f"{name} is too short: {size} bytes, need at least {XLogData.HEADER_SIZE} "
                "(type + walStart + walEnd + sendTime)"
            )
        start, end, send = _XLOG_HEADER.unpack_from(data, 1)
        return XLogData(start, end, send, data[XLogData.HEADER_SIZE :])
    expected = {b"k": PrimaryKeepalive.SIZE, b"r": StandbyStatusUpdate.SIZE, b"h": HotStandbyFeedback.SIZE}[kind]
    if size != expected:
        raise ValueError(f"{name} must be {expected} bytes long, got {size}")
    if kind == b"k":
        wal_end, send = struct.unpack_from(">Qq", data, 1)
        return PrimaryKeepalive(wal_end, send, data[17] != 0)
    if kind == b"r":
        write, flush, apply, clock = _STATUS.unpack_from(data, 1)
        return StandbyStatusUpdate(write, flush, apply, clock, data[33] != 0)
    clock, xmin, epoch, cxmin, cepoch = _FEEDBACK.unpack_from(data, 1)
    return HotStandbyFeedback(clock, xmin, epoch, cxmin, cepoch)
