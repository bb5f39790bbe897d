"""One small frozen dataclass per protocol message, frontend and backend, with encode/decode.

Spec: PostgreSQL docs, "Frontend/Backend Protocol" -> "Message Formats". Every class has
`encode() -> bytes` (whole message, type byte and length included) and `decode(body)` (the
body after the 5-byte header). Frontend messages are decoded by the server; backend messages
are encoded by the server and decoded by tests, the recorder and the proxy.

Hot paths (DataRow, RowDescription, CommandComplete, ReadyForQuery) also have plain functions
(`data_row`, ...) that skip dataclass construction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from typing import ClassVar, Sequence

from .errors import FIELD_CODES, PgError


# Messages are frozen dataclasses whose __eq__, __hash__ and __repr__ are these shared
# functions (same results as the ones dataclass generates) instead of three more methods
# compiled per class: that halves the ~25 ms these 41 classes add to every `import fakepm`.
_CMP_FIELDS: dict = {}  # class -> names of the fields __eq__ and __hash__ compare
_REPR_FIELDS: dict = {}  # class -> names of the fields __repr__ shows


def _message_eq(self, other):
    if other.__class__ is self.__class__:
        names = _CMP_FIELDS[self.__class__]
        return tuple([getattr(self, n) for n in names]) == tuple([getattr(other, n) for n in names])
    return NotImplemented


def _message_hash(self):
    return hash(tuple([getattr(self, n) for n in _CMP_FIELDS[self.__class__]]))


def _message_repr(self):
    parts = ", ".join(f"{n}={getattr(self, n)!r}" for n in _REPR_FIELDS[self.__class__])
    return f"{self.__class__.__qualname__}({parts})"


def _message(cls):
    """@_message with the shared __eq__/__hash__/__repr__ above."""
    if cls.__doc__ is None:
        cls.__doc__ = cls.__name__  # else dataclass derives one with inspect.signature (slow)
    cls = dataclass(frozen=True, eq=False, repr=False)(cls)
    fs = fields(cls)
    _CMP_FIELDS[cls] = tuple(f.name for f in fs if f.compare)
    _REPR_FIELDS[cls] = tuple(f.name for f in fs if f.repr)
    cls.__eq__ = _message_eq
    cls.__hash__ = _message_hash
    cls.__repr__ = _message_repr
    return cls

_I16 = struct.Struct("!h")
_U16 = struct.Struct("!H")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_HDR = struct.Struct("!ci")
_I32I32 = struct.Struct("!ii")
_FIELD = struct.Struct("!IhIhih")

PROTOCOL_3_0 = 196608  # 3 << 16
PROTOCOL_3_2 = (3 << 16) | 2
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102


class ProtocolViolation(ValueError):
    """A message that cannot be decoded. The text names the message and what was wrong."""


def frame(type_byte: bytes, body: bytes) -> bytes:
    return _HDR.pack(type_byte, len(body) + 4) + body


def cstr(s: str | bytes) -> bytes:
    if isinstance(s, str):
        s = s.encode("utf-8")
    return s + b"\x00"


class _Reader:
    """Cursor over a message body; every short read raises ProtocolViolation naming the message."""

    __slots__ = ("buf", "pos", "what")

    def __init__(self, buf: bytes, what: str):
        self.buf = buf
        self.pos = 0
        self.what = what

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolViolation(f"invalid {self.what} message format: body ends early")

    def i16(self) -> int:
        self._need(2)
        (v,) = _I16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return v

    def u16(self) -> int:
        self._need(2)
        (v,) = _U16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return v

    def i32(self) -> int:
        self._need(4)
        (v,) = _I32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def u32(self) -> int:
        self._need(4)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def byte(self) -> bytes:
        self._need(1)
        b = self.buf[self.pos : self.pos + 1]
        self.pos += 1
        return b

    def raw(self, n: int) -> bytes:
        self._need(n)
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(b)

    def rest(self) -> bytes:
        b = self.buf[self.pos :]
        self.pos = len(self.buf)
        return bytes(b)

    def cstring_bytes(self) -> bytes:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolViolation(f"invalid {self.what} message format: missing string terminator")
        b = self.buf[self.pos : end]
        self.pos = end + 1
        return bytes(b)

    def cstring(self) -> str:
        raw = self.cstring_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolViolation(
                f"invalid byte sequence for encoding \"UTF8\" in {self.what} message: {e.reason}"
            ) from None

    def value(self) -> bytes | None:
        n = self.i32()
        if n == -1:
            return None
        if n < -1:
            raise ProtocolViolation(f"invalid {self.what} message format: negative length {n}")
        return self.raw(n)

    def end(self) -> None:
        if self.pos != len(self.buf):
            raise ProtocolViolation(f"invalid {self.what} message format: {len(self.buf) - self.pos} extra bytes")


# ----------------------------------------------------------------------------------------
# Untagged startup-phase packets (frontend)


@_message
class StartupMessage:
    protocol: int
    parameters: dict = field(default_factory=dict)

    def encode(self) -> bytes:
        body = _I32.pack(self.protocol) + b"".join(cstr(k) + cstr(v) for k, v in self.parameters.items()) + b"\x00"
        return _I32.pack(len(body) + 4) + body

    @property
    def major(self) -> int:
        return self.protocol >> 16

    @property
    def minor(self) -> int:
        return self.protocol & 0xFFFF


@_message
class SSLRequest:
    def encode(self) -> bytes:
        return _I32I32.pack(8, SSL_REQUEST_CODE)


@_message
class GSSENCRequest:
    def encode(self) -> bytes:
        return _I32I32.pack(8, GSSENC_REQUEST_CODE)


MAX_CANCEL_KEY_LENGTH = 256  # protocol 3.2: a BackendKeyData / CancelRequest key is 4 to 256 bytes


def cancel_key_bytes(secret: "int | bytes") -> bytes:
    """A cancel key on the wire: an int is protocol 3.0's 4-byte key (int32), bytes go as they are."""
    if isinstance(secret, int):
        return _I32.pack(secret)
    return bytes(secret)


def cancel_key_value(raw: bytes) -> "int | bytes":
    """The reverse: a 4-byte key reads as an int (as before protocol 3.2), any other length as bytes."""
    return _I32.unpack(raw)[0] if len(raw) == 4 else bytes(raw)


@_message
class CancelRequest:
    """pid + secret key. The key is 4 bytes up to PostgreSQL 17 / protocol 3.0 (an int32 here),
    and up to 256 bytes with protocol 3.2 (PostgreSQL 18 sends 32): bytes here."""

    pid: int
    secret: "int | bytes"

    def encode(self) -> bytes:
        key = cancel_key_bytes(self.secret)
        return _I32.pack(12 + len(key)) + _I32.pack(CANCEL_REQUEST_CODE) + _I32.pack(self.pid) + key


def decode_startup_packet(body: bytes):
    """Body of an untagged packet (after its int32 length)."""
    r = _Reader(body, "startup packet")
    code = r.i32()
    if code == SSL_REQUEST_CODE:
        return SSLRequest()
    if code == GSSENC_REQUEST_CODE:
        return GSSENCRequest()
    if code == CANCEL_REQUEST_CODE:
        pid = r.i32()
        # the rest is the key, whatever its length: PostgreSQL 18 accepts 1..256 bytes and compares
        # them with the backend's key; a key of another length than the backend's never matches
        return CancelRequest(pid, cancel_key_value(r.rest()))
    params: dict[str, str] = {}
    if (code >> 16) != 3:
        return StartupMessage(code, params)
    while True:
        key = r.cstring()
        if key == "":
            break
        params[key] = r.cstring()
    return StartupMessage(code, params)


# ----------------------------------------------------------------------------------------
# Tagged messages: base machinery


class Message:
    TYPE: ClassVar[bytes] = b""

    def encode_body(self) -> bytes:  # pragma: no cover - overridden
        return b""

    def encode(self) -> bytes:
        return frame(self.TYPE, self.encode_body())

    @classmethod
    def decode(cls, body: bytes):
        r = _Reader(body, cls.__name__)
        msg = cls._decode(r)
        r.end()
        return msg

    @classmethod
    def _decode(cls, r: _Reader):
        return cls()


# ----------------------------------------------------------------------------------------
# Frontend messages


@_message
class Query(Message):
    TYPE: ClassVar[bytes] = b"Q"
    sql: str

    def encode_body(self) -> bytes:
        return cstr(self.sql)

    @classmethod
    def _decode(cls, r):
        return cls(r.cstring())


@_message
class Parse(Message):
    TYPE: ClassVar[bytes] = b"P"
    name: str
    sql: str
    param_oids: tuple = ()

    def encode_body(self) -> bytes:
        return (
            cstr(self.name)
            + cstr(self.sql)
            + _U16.pack(len(self.param_oids))  # counts are unsigned: up to 65535 parameters
            + b"".join(_U32.pack(o) for o in self.param_oids)
        )

    @classmethod
    def _decode(cls, r):
        name = r.cstring()
        sql = r.cstring()
        n = r.u16()
        return cls(name, sql, tuple(r.u32() for _ in range(n)))


@_message
class Bind(Message):
    TYPE: ClassVar[bytes] = b"B"
    portal: str
    statement: str
    param_formats: tuple = ()
    params: tuple = ()  # bytes | None each
    result_formats: tuple = ()

    def encode_body(self) -> bytes:
        parts = [cstr(self.portal), cstr(self.statement), _U16.pack(len(self.param_formats))]
        parts += [_I16.pack(f) for f in self.param_formats]
        parts.append(_U16.pack(len(self.params)))
        for p in self.params:
            parts.append(_I32.pack(-1) if p is None else _I32.pack(len(p)) + p)
        parts.append(_U16.pack(len(self.result_formats)))
        parts += [_I16.pack(f) for f in self.result_formats]
        return b"".join(parts)

    @classmethod
    def _decode(cls, r):
        portal = r.cstring()
        stmt = r.cstring()
        nf = r.u16()
        pf = tuple(r.i16() for _ in range(nf))
        npar = r.u16()
        params = tuple(r.value() for _ in range(npar))
        nr = r.u16()
        rf = tuple(r.i16() for _ in range(nr))
        return cls(portal, stmt, pf, params, rf)

    @classmethod
    def decode(cls, body: bytes):
        """Fast path for the extended protocol's busiest message; any irregularity is left to the
        careful decoder, whose error names what is wrong."""
        try:
            e1 = body.index(b"\x00")
            e2 = body.index(b"\x00", e1 + 1)
            portal = body[:e1].decode("utf-8")
            stmt = body[e1 + 1 : e2].decode("utf-8")
            pos = e2 + 1
            (nf,) = _U16.unpack_from(body, pos)
            pos += 2
            pf = struct.unpack_from(f"!{nf}h", body, pos)
            pos += 2 * nf
            (npar,) = _U16.unpack_from(body, pos)
            pos += 2
            if npar < 0:
                raise ValueError
            params = []
            for _ in range(npar):
                (n,) = _I32.unpack_from(body, pos)
                pos += 4
                if n == -1:
                    params.append(None)
                elif 0 <= n <= len(body) - pos:
                    params.append(bytes(body[pos : pos + n]))
                    pos += n
                else:
                    raise ValueError
            (nr,) = _U16.unpack_from(body, pos)
            pos += 2
            rf = struct.unpack_from(f"!{nr}h", body, pos)
            pos += 2 * nr
            if pos != len(body):
                raise ValueError
        except (ValueError, struct.error):  # includes UnicodeDecodeError and negative counts
            return super().decode(body)
        return cls(portal, stmt, pf, tuple(params), rf)


@_message
class Describe(Message):
    TYPE: ClassVar[bytes] = b"D"
    kind: str  # 'S' statement | 'P' portal
    name: str

    def encode_body(self) -> bytes:
        return self.kind.encode() + cstr(self.name)

    @classmethod
    def _decode(cls, r):
        kind = r.byte().decode("latin-1")
        if kind not in ("S", "P"):
            raise ProtocolViolation(f"invalid DESCRIBE message subtype {ord(kind)}")
        return cls(kind, r.cstring())


@_message
class Execute(Message):
    TYPE: ClassVar[bytes] = b"E"
    portal: str
    max_rows: int = 0

    def encode_body(self) -> bytes:
        return cstr(self.portal) + _I32.pack(self.max_rows)

    @classmethod
    def _decode(cls, r):
        return cls(r.cstring(), r.i32())

    @classmethod
    def decode(cls, body: bytes):
        end = len(body) - 5
        if end >= 0 and body[end] == 0 and body.find(b"\x00") == end:  # fast path: one name, one int32
            try:
                return cls(body[:end].decode("utf-8"), _I32.unpack_from(body, end + 1)[0])
            except UnicodeDecodeError:
                pass
        return super().decode(body)


@_message
class Close(Message):
    TYPE: ClassVar[bytes] = b"C"
    kind: str  # 'S' | 'P'
    name: str

    def encode_body(self) -> bytes:
        return self.kind.encode() + cstr(self.name)

    @classmethod
    def _decode(cls, r):
        kind = r.byte().decode("latin-1")
        if kind not in ("S", "P"):
            raise ProtocolViolation(f"invalid CLOSE message subtype {ord(kind)}")
        return cls(kind, r.cstring())


@_message
class Sync(Message):
    TYPE: ClassVar[bytes] = b"S"


@_message
class Flush(Message):
    TYPE: ClassVar[bytes] = b"H"


@_message
class Terminate(Message):
    TYPE: ClassVar[bytes] = b"X"


@_message
class PasswordMessage(Message):
    """'p': PasswordMessage, SASLInitialResponse or SASLResponse; the auth state decides which."""

    TYPE: ClassVar[bytes] = b"p"
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def _decode(cls, r):
        return cls(r.rest())


@_message
class CopyData(Message):
    TYPE: ClassVar[bytes] = b"d"
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def _decode(cls, r):
        return cls(r.rest())


@_message
class CopyDone(Message):
    TYPE: ClassVar[bytes] = b"c"


@_message
class CopyFail(Message):
    TYPE: ClassVar[bytes] = b"f"
    message: str

    def encode_body(self) -> bytes:
        return cstr(self.message)

    @classmethod
    def _decode(cls, r):
        return cls(r.cstring())


@_message
class FunctionCall(Message):
    TYPE: ClassVar[bytes] = b"F"
    function_oid: int
    arg_formats: tuple = ()
    args: tuple = ()
    result_format: int = 0

    def encode_body(self) -> bytes:
        parts = [_U32.pack(self.function_oid), _I16.pack(len(self.arg_formats))]
        parts += [_I16.pack(f) for f in self.arg_formats]
        parts.append(_I16.pack(len(self.args)))
        for a in self.args:
            parts.append(_I32.pack(-1) if a is None else _I32.pack(len(a)) + a)
        parts.append(_I16.pack(self.result_format))
        return b"".join(parts)

    @classmethod
    def _decode(cls, r):
        oid = r.u32()
        fmts = tuple(r.i16() for _ in range(max(0, r.i16())))
        args = tuple(r.value() for _ in range(max(0, r.i16())))
        return cls(oid, fmts, args, r.i16())


FRONTEND_MESSAGES: dict[bytes, type[Message]] = {
    c.TYPE: c
    for c in (
        Query, Parse, Bind, Describe, Execute, Close, Sync, Flush, Terminate,
        PasswordMessage, CopyData, CopyDone, CopyFail, FunctionCall,
    )
}


# ----------------------------------------------------------------------------------------
# Backend messages


@_message
class Authentication(Message):
    """'R' with an int32 code: 0 Ok, 3 cleartext, 5 md5 (+salt), 10 SASL, 11 continue, 12 final."""

    TYPE: ClassVar[bytes] = b"R"
    code: int
    data: bytes = b""

    def encode_body(self) -> bytes:
        return _I32.pack(self.code) + self.data

    @classmethod
    def _decode(cls, r):
        return cls(r.i32(), r.rest())


@_message
class ParameterStatus(Message):
    TYPE: ClassVar[bytes] = b"S"
    name: str
    value: str

    def encode_body(self) -> bytes:
        return cstr(self.name) + cstr(self.value)

    @classmethod
    def _decode(cls, r):
        return cls(r.cstring(), r.cstring())


@_message
class BackendKeyData(Message):
    """pid + cancel key: 4 bytes (an int32 here) with protocol 3.0, 4 to 256 bytes (bytes here) with
    protocol 3.2 -- PostgreSQL 18 sends 32 random bytes to a client it granted 3.2."""

    TYPE: ClassVar[bytes] = b"K"
    pid: int
    secret: "int | bytes"

    def encode_body(self) -> bytes:
        return _I32.pack(self.pid) + cancel_key_bytes(self.secret)

    @classmethod
    def _decode(cls, r):
        return cls(r.i32(), cancel_key_value(r.rest()))


@_message
class ReadyForQuery(Message):
    TYPE: ClassVar[bytes] = b"Z"
    status: str  # 'I' | 'T' | 'E'

    def encode_body(self) -> bytes:
        return self.status.encode("latin-1")

    @classmethod
    def _decode(cls, r):
        return cls(r.byte().decode("latin-1"))


@_message
class FieldDescription:
    name: str
    type_oid: int
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0
    table_oid: int = 0
    column_attnum: int = 0


@_message
class RowDescription(Message):
    TYPE: ClassVar[bytes] = b"T"
    fields: tuple = ()

    def encode_body(self) -> bytes:
        return row_description_body(self.fields)

    @classmethod
    def _decode(cls, r):
        n = r.i16()
        out = []
        for _ in range(max(0, n)):
            name = r.cstring()
            table_oid = r.u32()
            attnum = r.i16()
            type_oid = r.u32()
            size = r.i16()
            mod = r.i32()
            fmt = r.i16()
            out.append(FieldDescription(name, type_oid, size, mod, fmt, table_oid, attnum))
        return cls(tuple(out))


@_message
class DataRow(Message):
    TYPE: ClassVar[bytes] = b"D"
    values: tuple = ()  # bytes | None

    def encode(self) -> bytes:
        return data_row(self.values)

    @classmethod
    def _decode(cls, r):
        n = r.i16()
        return cls(tuple(r.value() for _ in range(max(0, n))))


@_message
class CommandComplete(Message):
    TYPE: ClassVar[bytes] = b"C"
    tag: str

    def encode_body(self) -> bytes:
        return cstr(self.tag)

    @classmethod
    def _decode(cls, r):
        return cls(r.cstring())


@_message
class EmptyQueryResponse(Message):
    TYPE: ClassVar[bytes] = b"I"


@_message
class ParseComplete(Message):
    TYPE: ClassVar[bytes] = b"1"


@_message
class BindComplete(Message):
    TYPE: ClassVar[bytes] = b"2"


@_message
class CloseComplete(Message):
    TYPE: ClassVar[bytes] = b"3"


@_message
class NoData(Message):
    TYPE: ClassVar[bytes] = b"n"


@_message
class PortalSuspended(Message):
    TYPE: ClassVar[bytes] = b"s"


@_message
class ParameterDescription(Message):
    TYPE: ClassVar[bytes] = b"t"
    type_oids: tuple = ()

    def encode_body(self) -> bytes:
        return _U16.pack(len(self.type_oids)) + b"".join(_U32.pack(o) for o in self.type_oids)

    @classmethod
    def _decode(cls, r):
        n = r.u16()
        return cls(tuple(r.u32() for _ in range(n)))


@_message
class NotificationResponse(Message):
    TYPE: ClassVar[bytes] = b"A"
    pid: int
    channel: str
    payload: str

    def encode_body(self) -> bytes:
        return _I32.pack(self.pid) + cstr(self.channel) + cstr(self.payload)

    @classmethod
    def _decode(cls, r):
        return cls(r.i32(), r.cstring(), r.cstring())


def _encode_fields(err: PgError) -> bytes:
    return b"".join(code + cstr(value) for code, value in err.fields()) + b"\x00"


def _decode_fields(r: _Reader) -> dict:
    fields = {}
    while True:
        code = r.byte()
        if code == b"\x00":
            break
        fields[code] = r.cstring()
    return fields


@_message
class ErrorResponse(Message):
    TYPE: ClassVar[bytes] = b"E"
    error: PgError

    def encode_body(self) -> bytes:
        return _encode_fields(self.error)

    @classmethod
    def _decode(cls, r):
        return cls(PgError.from_fields(_decode_fields(r)))


@_message
class NoticeResponse(Message):
    TYPE: ClassVar[bytes] = b"N"
    notice: PgError

    def encode_body(self) -> bytes:
        return _encode_fields(self.notice)

    @classmethod
    def _decode(cls, r):
        return cls(PgError.from_fields(_decode_fields(r)))


def _copy_response(type_byte: bytes, name: str):
    @_message
    class _CopyResponse(Message):
        TYPE: ClassVar[bytes] = type_byte
        format: int = 0  # overall: 0 text, 1 binary
        column_formats: tuple = ()

        def encode_body(self) -> bytes:
            return (
                bytes([self.format])
                + _I16.pack(len(self.column_formats))
                + b"".join(_I16.pack(f) for f in self.column_formats)
            )

        @classmethod
        def _decode(cls, r):
            fmt = r.byte()[0]
            n = r.i16()
            return cls(fmt, tuple(r.i16() for _ in range(max(0, n))))

    _CopyResponse.__name__ = _CopyResponse.__qualname__ = name
    return _CopyResponse


CopyInResponse = _copy_response(b"G", "CopyInResponse")
CopyOutResponse = _copy_response(b"H", "CopyOutResponse")
CopyBothResponse = _copy_response(b"W", "CopyBothResponse")


@_message
class NegotiateProtocolVersion(Message):
    TYPE: ClassVar[bytes] = b"v"
    newest_minor: int
    unrecognized: tuple = ()

    def encode_body(self) -> bytes:
        return _I32.pack(self.newest_minor) + _I32.pack(len(self.unrecognized)) + b"".join(
            cstr(o) for o in self.unrecognized
        )

    @classmethod
    def _decode(cls, r):
        minor = r.i32()
        n = r.i32()
        return cls(minor, tuple(r.cstring() for _ in range(max(0, n))))


@_message
class FunctionCallResponse(Message):
    TYPE: ClassVar[bytes] = b"V"
    value: bytes | None

    def encode_body(self) -> bytes:
        return _I32.pack(-1) if self.value is None else _I32.pack(len(self.value)) + self.value

    @classmethod
    def _decode(cls, r):
        return cls(r.value())


BACKEND_MESSAGES: dict[bytes, type[Message]] = {
    c.TYPE: c
    for c in (
        Authentication, ParameterStatus, BackendKeyData, ReadyForQuery, RowDescription, DataRow,
        CommandComplete, EmptyQueryResponse, ParseComplete, BindComplete, CloseComplete, NoData,
        PortalSuspended, ParameterDescription, NotificationResponse, ErrorResponse, NoticeResponse,
        CopyInResponse, CopyOutResponse, CopyBothResponse, NegotiateProtocolVersion,
        FunctionCallResponse, CopyData, CopyDone,
    )
}

FRONTEND_NAMES = {t: c.__name__ for t, c in FRONTEND_MESSAGES.items()}
BACKEND_NAMES = {t: c.__name__ for t, c in BACKEND_MESSAGES.items()}


def decode_backend(type_byte: bytes, body: bytes):
    cls = BACKEND_MESSAGES.get(type_byte)
    if cls is None:
        raise ProtocolViolation(f"unknown backend message type {type_byte!r}")
    return cls.decode(body)


def decode_frontend(type_byte: bytes, body: bytes):
    cls = FRONTEND_MESSAGES.get(type_byte)
    if cls is None:
        raise ProtocolViolation(f"invalid frontend message type {type_byte[0]}")
    return cls.decode(body)


def split_backend_stream(data: bytes) -> list:
    """Decode a complete stream of backend messages (tests and the recorder)."""
    out = []
    pos = 0
    while pos < len(data):
        if pos + 5 > len(data):
            raise ProtocolViolation("truncated message header")
        t, n = _HDR.unpack_from(data, pos)
        if n < 4 or pos + 1 + n > len(data):
            raise ProtocolViolation(f"truncated {BACKEND_NAMES.get(t, t)!s} message")
        out.append(decode_backend(t, data[pos + 5 : pos + 1 + n]))
        pos += 1 + n
    return out


# ----------------------------------------------------------------------------------------
# Hot-path encoders (no dataclass construction)

READY_IDLE = frame(b"Z", b"I")
READY_IN_TX = frame(b"Z", b"T")
READY_FAILED = frame(b"Z", b"E")
READY = {"I": READY_IDLE, "T": READY_IN_TX, "E": READY_FAILED}
PARSE_COMPLETE = frame(b"1", b"")
BIND_COMPLETE = frame(b"2", b"")
CLOSE_COMPLETE = frame(b"3", b"")
NO_DATA = frame(b"n", b"")
PORTAL_SUSPENDED = frame(b"s", b"")
EMPTY_QUERY = frame(b"I", b"")
COPY_DONE = frame(b"c", b"")
AUTH_OK = frame(b"R", _I32.pack(0))


def data_row(values: Sequence) -> bytes:
    """DataRow from already-encoded column values (bytes or None)."""
    parts = [_I16.pack(len(values))]
    append = parts.append
    size = 6
    for v in values:
        if v is None:
            append(b"\xff\xff\xff\xff")
            size += 4
        else:
            append(_I32.pack(len(v)))
            append(v)
            size += 4 + len(v)
    return b"D" + _I32.pack(size) + b"".join(parts)


def row_description_body(fields: Sequence[FieldDescription]) -> bytes:
    parts = [_I16.pack(len(fields))]
    for f in fields:
        parts.append(cstr(f.name))
        parts.append(
            _FIELD.pack(f.table_oid, f.column_attnum, f.type_oid, f.type_size, f.type_modifier, f.format)
        )
    return b"".join(parts)


def row_description(fields: Sequence[FieldDescription]) -> bytes:
    return frame(b"T", row_description_body(fields))


def command_complete(tag: str) -> bytes:
    return frame(b"C", cstr(tag))


def error_response(err: PgError) -> bytes:
    return frame(b"E", _encode_fields(err))


def notice_response(notice: PgError) -> bytes:
    return frame(b"N", _encode_fields(notice))


def parameter_status(name: str, value: str) -> bytes:
    return frame(b"S", cstr(name) + cstr(value))


def copy_data(data: bytes) -> bytes:
    return b"d" + _I32.pack(len(data) + 4) + data


__all__ = [n for n in dir() if not n.startswith("_")] + ["FIELD_CODES"]
