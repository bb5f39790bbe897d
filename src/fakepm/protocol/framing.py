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
MAX_MESSAGE_CEILING = 1 << 30  # PostgreSQL's PQ_LARGE_MESSAGE_LIMIT - 1: no server takes a bigger message
# fakepm's default: a test double rarely needs a message over 64 MiB (a Query text, a Bind
# parameter, one CopyData), and every message is buffered whole before it is decoded, so the
# default keeps what one client can make the server hold small. Raise it up to the ceiling
# with `max_message_size` (FakePostgres, YAML `server:`, `fakepm serve --max-message-size`).
DEFAULT_MAX_MESSAGE = 64 << 20


def check_max_message_size(n) -> int:
    """`n` as a message size limit, or ValueError naming the allowed range."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_MESSAGE_CEILING:
        raise ValueError(f"max_message_size must be an integer from 1 to {MAX_MESSAGE_CEILING} "
                         f"(PostgreSQL's own 1 GiB limit), got {n!r}")
    return n


def malformed_message_error(e: ProtocolViolation, body: bytes) -> tuple[str, str]:
    """(SQLSTATE, message) PostgreSQL answers, as an ERROR that keeps the connection, for a
    message body it cannot read (pqformat.c / mbutils.c wording); `e` is fakepm's decoding
    problem with that body."""
    text = str(e)
    if "body ends early" in text or "negative length" in text:
        return "08P01", "insufficient data left in message"
    if "missing string terminator" in text:
        return "08P01", "invalid string in message"
    if "extra bytes" in text:
        return "08P01", "invalid message format"
    if "invalid byte sequence" in text:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as u:
            return "22021", bad_utf8_message(body, u.start)
    return "08P01", text


def bad_utf8_message(raw: bytes, start: int) -> str:
    """PostgreSQL's text for invalid UTF-8 at raw[start] (wchar.c report_invalid_encoding: the
    bytes of the character its lead byte announces, at most what is left)."""
    b = raw[start]
    n = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
    shown = " ".join("0x%02x" % c for c in raw[start:start + n])
    return f'invalid byte sequence for encoding "UTF8": {shown}'


class FrameReader:
    """Splits a byte stream into frames.

    `next_frame()` returns `(None, body)` for an untagged startup-phase packet,
    `(type_byte, body)` for a tagged message, or None when more bytes are needed.
    Call `expect_tagged()` once the startup phase is over.
    """

    __slots__ = ("_buf", "_pos", "untagged", "max_message", "max_startup")

    def __init__(self, max_message: int = MAX_MESSAGE_CEILING, max_startup: int = MAX_STARTUP_PACKET):
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
