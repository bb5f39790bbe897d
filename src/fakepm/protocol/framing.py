"""Incremental frame reader: untagged startup packets first, then tagged messages.

Feed it bytes as they arrive (any split, even inside a 5-byte header); pull complete
frames out. Limits protect the server from a client that announces a huge length:
PostgreSQL caps startup packets at 10000 bytes and rejects absurd message lengths.
"""

from __future__ import annotations

import struct

from .messages import FRONTEND_NAMES, ProtocolViolation

_I32 = struct.Struct("!i")
_HDR = struct.Struct("!ci")

MAX_STARTUP_PACKET = 10000  # PostgreSQL's MAX_STARTUP_PACKET_LENGTH
DEFAULT_MAX_MESSAGE = 1 << 30  # PostgreSQL's PQ_LARGE_MESSAGE_LIMIT - 1


class FrameReader:
    """Splits a byte stream into frames.

    `next_frame()` returns `(None, body)` for an untagged startup-phase packet,
    `(type_byte, body)` for a tagged message, or None when more bytes are needed.
    Call `expect_tagged()` once the startup phase is over.
    """

    __slots__ = ("_buf", "_pos", "untagged", "max_message", "max_startup")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, max_startup: int = MAX_STARTUP_PACKET):
        self._buf = bytearray()
        self._pos = 0
        self.untagged = True
        self.max_message = max_message
        self.max_startup = max_startup

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def expect_tagged(self) -> None:
        self.untagged = False

    def expect_untagged(self) -> None:
        self.untagged = True

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def take_raw(self) -> bytes:
        """Everything buffered and not yet framed (used when TLS starts mid-stream)."""
        data = bytes(self._buf[self._pos :])
        self._buf.clear()
        self._pos = 0
        return data

    def next_frame(self):
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if self.untagged:
            if avail < 4:
                return None
            (n,) = _I32.unpack_from(buf, pos)
            if n < 8 or n > self.max_startup:
                raise ProtocolViolation(f"invalid length of startup packet: {n}")
            if avail < n:
                return None
            body = bytes(buf[pos + 4 : pos + n])
            self._pos = pos + n
            return None, body
        if avail < 5:
            return None
        t, n = _HDR.unpack_from(buf, pos)
        if n < 4 or n > self.max_message:
            name = FRONTEND_NAMES.get(t, f"type {t!r}")
            raise ProtocolViolation(f"invalid message length {n} in {name} message")
        if avail < n + 1:
            return None
        body = bytes(buf[pos + 5 : pos + 1 + n])
        self._pos = pos + 1 + n
        return t, body
