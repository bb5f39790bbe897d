"""pgoutput logical replication messages, protocol versions 1-4 (sans-I/O).

Encoders and decoders for every message PostgreSQL's ``pgoutput`` plugin writes into
XLogData payloads, byte for byte as ``src/backend/replication/logical/proto.c`` writes
them in PostgreSQL 14-18 (formats did not change after v4/PG16), plus the validation of
START_REPLICATION's plugin options as ``pgoutput.c`` (``parse_output_parameters`` and
``pgoutput_startup``) does it, per server major version.

Conventions
-----------
* Every message is a frozen dataclass with ``encode() -> bytes`` (the full payload,
  type byte included); :func:`decode_pgoutput` is the inverse.
* LSNs and xids are ints; times are ints in microseconds since 2000-01-01 UTC (see
  :func:`fakepm.protocol.replication.to_pg_timestamp`). Nothing here reads a clock.
* Strings (namespaces, names, prefixes, gids) are ``str`` encoded as UTF-8 (undecodable
  bytes survive a decode/encode round trip through ``surrogateescape``).
* Inside a streamed transaction (between Stream Start and Stream Stop, proto >= 2) the
  change messages (Relation, Type, Insert, Update, Delete, Truncate, Message) carry the
  (sub)transaction's xid right after the type byte. That is the optional ``xid`` field:
  ``None`` means "not written". Decoding needs to know whether it is inside a stream:
  pass ``in_stream=True`` or use :class:`PgoutputDecoder`, which tracks S/E.
* Tuple columns are ``None`` (``n``), :data:`UNCHANGED_TOAST` (``u``),
  :class:`TextValue` (``t``) or :class:`BinaryValue` (``b``), all raw bytes. For
  convenience ``bytes`` and ``str`` given in a tuple become TextValue; converting Python
  values through the type registry is done by the caller (see :func:`make_tuple`).
* Namespaces: proto.c writes ``pg_catalog`` as the empty string and reads the empty
  string back as ``pg_catalog``; :class:`Relation` and :class:`Type` do the same, so
  ``namespace=""`` decodes as ``"pg_catalog"``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    ClassVar,
    Iterable,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from fakepm.protocol.errors import PgError

__all__ = [
    # tuple data
    "UNCHANGED_TOAST",
    "UnchangedToast",
    "TextValue",
    "BinaryValue",
    "ColumnValue",
    "TupleData",
    "as_tuple_data",
    "make_tuple",
    "encode_tuple_bytes",
    "encode_row_change",
    # messages
    "Begin",
    "Commit",
    "Origin",
    "RelationColumn",
    "Relation",
    "Type",
    "Insert",
    "Update",
    "Delete",
    "Truncate",
    "Message",
    "StreamStart",
    "StreamStop",
    "StreamCommit",
    "StreamAbort",
    "BeginPrepare",
    "Prepare",
    "CommitPrepared",
    "RollbackPrepared",
    "StreamPrepare",
    "PgoutputMessage",
    "MESSAGE_CLASSES",
    "STREAMABLE_TYPES",
    "decode_pgoutput",
    "PgoutputDecoder",
    # versions
    "MIN_PROTO_VERSION",
    "PROTO_VERSION_STREAM_ABORT_INFO",
    "MAX_PROTO_VERSION_BY_SERVER",
    "min_proto_version",
    "gate",
    # options
    "PgoutputOptions",
    "parse_pgoutput_options",
    "split_identifier_string",
    "startup_callback_context",
    # constants
    "TRUNCATE_CASCADE",
    "TRUNCATE_RESTART_IDENTITY",
    "MESSAGE_TRANSACTIONAL",
    "COLUMN_IS_KEY",
    "FIRST_GENBKI_OBJECT_ID",
    "REPLICA_IDENTITY_DEFAULT",
    "REPLICA_IDENTITY_NOTHING",
    "REPLICA_IDENTITY_FULL",
    "REPLICA_IDENTITY_INDEX",
]

#: Truncate option bits (proto.c ``TRUNCATE_CASCADE`` / ``TRUNCATE_RESTART_SEQS``).
TRUNCATE_CASCADE = 1
TRUNCATE_RESTART_IDENTITY = 2
#: Message flag bit (proto.c ``MESSAGE_TRANSACTIONAL``).
MESSAGE_TRANSACTIONAL = 1
#: Relation column flag (proto.c ``LOGICALREP_IS_REPLICA_IDENTITY``).
COLUMN_IS_KEY = 1
#: pgoutput sends a Type message before a Relation only for column types with an OID
#: at or above this (``FirstGenbkiObjectId``), i.e. user-defined types.
FIRST_GENBKI_OBJECT_ID = 10000
#: pg_class.relreplident values as sent in Relation.
REPLICA_IDENTITY_DEFAULT = "d"
REPLICA_IDENTITY_NOTHING = "n"
REPLICA_IDENTITY_FULL = "f"
REPLICA_IDENTITY_INDEX = "i"

_ENC = "utf-8"
_ERRORS = "surrogateescape"


# ---------------------------------------------------------------------------------------
# Tuple data


class UnchangedToast:
    """Type of :data:`UNCHANGED_TOAST`: an unchanged TOASTed column (``u``), value not sent."""

    _instance: ClassVar[Optional["UnchangedToast"]] = None

    def __new__(cls) -> "UnchangedToast":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"

    def __reduce__(self) -> str:
        return "UNCHANGED_TOAST"

    def __copy__(self) -> "UnchangedToast":
        return self

    def __deepcopy__(self, memo: dict) -> "UnchangedToast":
        return self


#: The sentinel for an unchanged TOASTed column (``u`` in TupleData).
UNCHANGED_TOAST = UnchangedToast()


def _bytes_field(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, (bytearray, memoryview)):
        object.__setattr__(obj, name, bytes(value))
    elif not isinstance(value, bytes):
        raise TypeError(f"{type(obj).__name__}.{name} must be bytes, got {type(value).__name__}")


@dataclass(frozen=True)
class TextValue:
    """A column in text format (``t``): the type output function's bytes, no terminator."""

    data: bytes

    def __post_init__(self) -> None:
        _bytes_field(self, "data")


@dataclass(frozen=True)
class BinaryValue:
    """A column in binary format (``b``): the type send function's bytes (``binary=true`` only)."""

    data: bytes

    def __post_init__(self) -> None:
        _bytes_field(self, "data")


ColumnValue = Union[None, UnchangedToast, TextValue, BinaryValue]
TupleData = Tuple[ColumnValue, ...]


def _coerce_column(value: Any, index: int) -> ColumnValue:
    if value is None or value is UNCHANGED_TOAST or isinstance(value, (TextValue, BinaryValue)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return TextValue(bytes(value))
    if isinstance(value, str):
        return TextValue(value.encode(_ENC, _ERRORS))
    raise TypeError(
        f"tuple column {index}: {value!r} is not None, UNCHANGED_TOAST, TextValue, BinaryValue, "
        "bytes or str; convert Python values with make_tuple(values, encoder)"
    )


def as_tuple_data(values: Iterable[Any]) -> TupleData:
    """Normalise a sequence of columns into a TupleData tuple.

    Keeps None / UNCHANGED_TOAST / TextValue / BinaryValue; turns bytes and str into
    TextValue (str as UTF-8). Anything else is a TypeError.
    """
    if isinstance(values, (str, bytes, bytearray, memoryview)):
        raise TypeError("tuple data is a sequence of column values, not a single str/bytes")
    return tuple(_coerce_column(v, i) for i, v in enumerate(values))


def make_tuple(
    values: Iterable[Any],
    encoders: Union[None, Callable[[Any], bytes], Sequence[Optional[Callable[[Any], bytes]]]] = None,
    *,
    binary: bool = False,
) -> TupleData:
    """Build TupleData from Python values with caller-supplied encoders.

    ``encoders`` is one callable for every column or a sequence with one callable (or
    None) per column, e.g. the ``encode_text``/``encode_binary`` functions of the type
    registry. None and UNCHANGED_TOAST pass through, as do ready TextValue/BinaryValue.
    A column without an encoder must already be bytes (or str for text).
    Encoded bytes become :class:`BinaryValue` if ``binary`` else :class:`TextValue`.
    """
    values = list(values)
    if encoders is None or callable(encoders):
        per_column = [encoders] * len(values)
    else:
        per_column = list(encoders)
        if len(per_column) != len(values):
            raise ValueError(f"{len(values)} values but {len(per_column)} encoders")
    wrap = BinaryValue if binary else TextValue
    out: list = []
    for i, (value, enc) in enumerate(zip(values, per_column)):
        if value is None or value is UNCHANGED_TOAST or isinstance(value, (TextValue, BinaryValue)):
            out.append(value)
        elif enc is not None:
            encoded = enc(value)
            if not isinstance(encoded, (bytes, bytearray, memoryview)):
                raise TypeError(f"encoder for column {i} returned {type(encoded).__name__}, not bytes")
            out.append(wrap(bytes(encoded)))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            out.append(wrap(bytes(value)))
        elif isinstance(value, str) and not binary:
            out.append(TextValue(value.encode(_ENC, _ERRORS)))
        else:
            raise TypeError(f"column {i}: no encoder for {type(value).__name__} value {value!r}")
    return tuple(out)


# Hot path for senders: TupleData and I/U/D payloads straight from encoded column bytes,
# without a TextValue/BinaryValue object per column (same layout as the classes below).
_I32_LEN = struct.Struct(">i")
_ROW_HEAD = struct.Struct(">I")


def encode_tuple_bytes(values: Sequence[Any], binary: bool = False) -> bytes:
    """TupleData bytes: None -> ``n``, UNCHANGED_TOAST -> ``u``, bytes -> ``t`` (``b`` when binary).

    A column value may also be a TextValue/BinaryValue (its own kind wins).
    """
    kind = b"b" if binary else b"t"
    parts = [struct.pack(">H", len(values))]
    append = parts.append
    for v in values:
        if v is None:
            append(b"n")
        elif v is UNCHANGED_TOAST:
            append(b"u")
        elif isinstance(v, bytes):
            append(kind + _I32_LEN.pack(len(v)) + v)
        elif isinstance(v, TextValue):
            append(b"t" + _I32_LEN.pack(len(v.data)) + v.data)
        elif isinstance(v, BinaryValue):
            append(b"b" + _I32_LEN.pack(len(v.data)) + v.data)
        else:
            raise TypeError(f"tuple column: {v!r} is not None, UNCHANGED_TOAST, bytes, TextValue or BinaryValue")
    return b"".join(parts)


def encode_row_change(kind: str, relid: int, new: Optional[bytes] = None, old: Optional[bytes] = None,
                      old_kind: Optional[str] = None, xid: Optional[int] = None) -> bytes:
    """An Insert (``I``), Update (``U``) or Delete (``D``) payload from :func:`encode_tuple_bytes` output;
    ``old_kind`` is ``"K"`` (old key) or ``"O"`` (old row). Byte-identical to Insert/Update/Delete.encode()."""
    head = kind.encode() + (b"" if xid is None else _ROW_HEAD.pack(xid)) + _ROW_HEAD.pack(relid)
    if kind == "I":
        return head + b"N" + new
    if kind == "U":
        return head + (old_kind.encode() + old if old_kind else b"") + b"N" + new
    if kind == "D":
        return head + old_kind.encode() + old
    raise ValueError(f"encode_row_change: kind must be I, U or D, got {kind!r}")


# ---------------------------------------------------------------------------------------
# Low-level writing / reading


_FMT_NAME = {">B": "uint8", ">H": "uint16", ">I": "uint32", ">i": "int32", ">Q": "uint64", ">q": "int64"}


def _p(fmt: str, value: Any, what: str) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    try:
        return struct.pack(fmt, value)
    except struct.error:
        raise ValueError(f"{what}={value!r} does not fit in {_FMT_NAME[fmt]}") from None


def _cstr(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    data = value.encode(_ENC, _ERRORS)
    if b"\x00" in data:
        raise ValueError(f"{what}={value!r} contains a NUL byte; pgoutput strings are NUL-terminated")
    return data + b"\x00"


def _xid_prefix(xid: Optional[int], what: str) -> bytes:
    return b"" if xid is None else _p(">I", xid, f"{what}.xid")


def _encode_tuple(values: TupleData, what: str) -> bytes:
    parts = [_p(">H", len(values), f"{what} natts")]
    for i, v in enumerate(values):
        if v is None:
            parts.append(b"n")
        elif v is UNCHANGED_TOAST:
            parts.append(b"u")
        elif isinstance(v, TextValue):
            parts.append(b"t" + _p(">i", len(v.data), f"{what} column {i} length") + v.data)
        elif isinstance(v, BinaryValue):
            parts.append(b"b" + _p(">i", len(v.data), f"{what} column {i} length") + v.data)
        else:  # pragma: no cover - __post_init__ normalises
            raise TypeError(f"{what} column {i}: unsupported value {v!r}")
    return b"".join(parts)


class _Reader:
    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 1  # after the type byte
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, name: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"{self.what} is truncated: {name} needs {n} bytes at offset {self.pos}, "
                f"only {self.remaining()} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, name: str) -> int:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, name))[0]

    def u8(self, name: str) -> int:
        return self.unpack(">B", name)

    def u16(self, name: str) -> int:
        return self.unpack(">H", name)

    def u32(self, name: str) -> int:
        return self.unpack(">I", name)

    def i32(self, name: str) -> int:
        return self.unpack(">i", name)

    def u64(self, name: str) -> int:
        return self.unpack(">Q", name)

    def i64(self, name: str) -> int:
        return self.unpack(">q", name)

    def cstr(self, name: str) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ValueError(f"{self.what}: {name} at offset {self.pos} has no NUL terminator")
        value = self.data[self.pos : end].decode(_ENC, _ERRORS)
        self.pos = end + 1
        return value

    def tuple(self, name: str) -> TupleData:
        natts = self.u16(f"{name} natts")
        out: list = []
        for i in range(natts):
            kind = self.take(1, f"{name} column {i} kind")
            if kind == b"n":
                out.append(None)
            elif kind == b"u":
                out.append(UNCHANGED_TOAST)
            elif kind in (b"t", b"b"):
                length = self.i32(f"{name} column {i} length")
                if length < 0:
                    raise ValueError(f"{self.what}: {name} column {i} has negative length {length}")
                data = self.take(length, f"{name} column {i} data")
                out.append(TextValue(data) if kind == b"t" else BinaryValue(data))
            else:
                raise ValueError(
                    f"{self.what}: {name} column {i} has unrecognized data representation type "
                    f"{kind!r}; expected n, u, t or b"
                )
        return tuple(out)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(
                f"{self.what} has {len(self.data) - self.pos} unexpected trailing bytes at offset {self.pos}"
            )


# ---------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Begin:
    """``B`` Begin: final_lsn:u64 commit_time:i64 xid:u32 (``final_lsn`` = the commit LSN)."""

    final_lsn: int
    commit_time: int
    xid: int

    TYPE: ClassVar[str] = "B"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"B",
                _p(">Q", self.final_lsn, "Begin.final_lsn"),
                _p(">q", self.commit_time, "Begin.commit_time"),
                _p(">I", self.xid, "Begin.xid"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Begin":
        return cls(r.u64("final_lsn"), r.i64("commit_time"), r.u32("xid"))


@dataclass(frozen=True)
class Commit:
    """``C`` Commit: flags:u8 (0) commit_lsn:u64 end_lsn:u64 commit_time:i64."""

    commit_lsn: int
    end_lsn: int
    commit_time: int
    flags: int = 0

    TYPE: ClassVar[str] = "C"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"C",
                _p(">B", self.flags, "Commit.flags"),
                _p(">Q", self.commit_lsn, "Commit.commit_lsn"),
                _p(">Q", self.end_lsn, "Commit.end_lsn"),
                _p(">q", self.commit_time, "Commit.commit_time"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Commit":
        flags = r.u8("flags")
        return cls(r.u64("commit_lsn"), r.u64("end_lsn"), r.i64("commit_time"), flags)


@dataclass(frozen=True)
class Origin:
    """``O`` Origin: origin_lsn:u64 name:cstring (sent right after Begin / Begin Prepare)."""

    origin_lsn: int
    name: str

    TYPE: ClassVar[str] = "O"

    def encode(self) -> bytes:
        return b"O" + _p(">Q", self.origin_lsn, "Origin.origin_lsn") + _cstr(self.name, "Origin.name")

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Origin":
        return cls(r.u64("origin_lsn"), r.cstr("name"))


@dataclass(frozen=True)
class RelationColumn:
    """One column of a Relation: flags:u8 (1 = part of the replica identity) name typoid:u32 typmod:i32."""

    name: str
    type_oid: int
    typmod: int = -1
    flags: int = 0

    @property
    def is_key(self) -> bool:
        return bool(self.flags & COLUMN_IS_KEY)

    def encode(self) -> bytes:
        return b"".join(
            (
                _p(">B", self.flags, "RelationColumn.flags"),
                _cstr(self.name, "RelationColumn.name"),
                _p(">I", self.type_oid, "RelationColumn.type_oid"),
                _p(">i", self.typmod, "RelationColumn.typmod"),
            )
        )


def _write_namespace(namespace: str, what: str) -> bytes:
    # logicalrep_write_namespace: pg_catalog goes out as the empty string.
    return _cstr("" if namespace == "pg_catalog" else namespace, what)


def _read_namespace(r: _Reader) -> str:
    # logicalrep_read_namespace: the empty string means pg_catalog.
    return r.cstr("namespace") or "pg_catalog"


@dataclass(frozen=True)
class Relation:
    """``R`` Relation: [xid] relid:u32 namespace relname replident:u8 natts:i16 columns..."""

    relid: int
    namespace: str
    name: str
    replica_identity: str
    columns: Tuple[RelationColumn, ...]
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "R"

    def __post_init__(self) -> None:
        cols = tuple(self.columns)
        for c in cols:
            if not isinstance(c, RelationColumn):
                raise TypeError(f"Relation.columns must hold RelationColumn, got {type(c).__name__}")
        object.__setattr__(self, "columns", cols)

    @property
    def key_columns(self) -> Tuple[RelationColumn, ...]:
        return tuple(c for c in self.columns if c.is_key)

    def encode(self) -> bytes:
        ident = self.replica_identity
        if not isinstance(ident, str) or len(ident) != 1 or ord(ident) > 255:
            raise ValueError(
                f"Relation.replica_identity={ident!r} must be one character: d, n, f or i"
            )
        return b"".join(
            (
                b"R",
                _xid_prefix(self.xid, "Relation"),
                _p(">I", self.relid, "Relation.relid"),
                _write_namespace(self.namespace, "Relation.namespace"),
                _cstr(self.name, "Relation.name"),
                ident.encode("latin-1"),
                _p(">H", len(self.columns), "Relation natts"),
                *(c.encode() for c in self.columns),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Relation":
        xid = r.u32("xid") if in_stream else None
        relid = r.u32("relid")
        namespace = _read_namespace(r)
        name = r.cstr("relname")
        ident = chr(r.u8("replica identity"))
        natts = r.u16("natts")
        cols = []
        for i in range(natts):
            flags = r.u8(f"column {i} flags")
            cname = r.cstr(f"column {i} name")
            cols.append(RelationColumn(cname, r.u32(f"column {i} type oid"), r.i32(f"column {i} typmod"), flags))
        return cls(relid, namespace, name, ident, tuple(cols), xid)


@dataclass(frozen=True)
class Type:
    """``Y`` Type: [xid] typoid:u32 namespace name (sent before a Relation using a user type)."""

    type_oid: int
    namespace: str
    name: str
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "Y"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"Y",
                _xid_prefix(self.xid, "Type"),
                _p(">I", self.type_oid, "Type.type_oid"),
                _write_namespace(self.namespace, "Type.namespace"),
                _cstr(self.name, "Type.name"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Type":
        xid = r.u32("xid") if in_stream else None
        oid = r.u32("type oid")
        namespace = _read_namespace(r)
        return cls(oid, namespace, r.cstr("name"), xid)


@dataclass(frozen=True)
class Insert:
    """``I`` Insert: [xid] relid:u32 ``N`` TupleData."""

    relid: int
    new: TupleData
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "I"

    def __post_init__(self) -> None:
        object.__setattr__(self, "new", as_tuple_data(self.new))

    def encode(self) -> bytes:
        return b"".join(
            (
                b"I",
                _xid_prefix(self.xid, "Insert"),
                _p(">I", self.relid, "Insert.relid"),
                b"N",
                _encode_tuple(self.new, "Insert new tuple"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Insert":
        xid = r.u32("xid") if in_stream else None
        relid = r.u32("relid")
        action = r.take(1, "tuple kind")
        if action != b"N":
            raise ValueError(f"{r.what}: expected new tuple 'N' but got {action!r}")
        return cls(relid, r.tuple("new tuple"), xid)


def _check_old(obj: Any, allow_none: bool) -> None:
    key, old = obj.key, obj.old
    if key is not None and old is not None:
        raise ValueError(f"{type(obj).__name__}: give either key ('K') or old ('O'), not both")
    if not allow_none and key is None and old is None:
        raise ValueError(f"{type(obj).__name__}: needs key ('K', identity columns) or old ('O', REPLICA IDENTITY FULL)")
    if key is not None:
        object.__setattr__(obj, "key", as_tuple_data(key))
    if old is not None:
        object.__setattr__(obj, "old", as_tuple_data(old))


@dataclass(frozen=True)
class Update:
    """``U`` Update: [xid] relid:u32 [``K`` key TupleData | ``O`` old TupleData] ``N`` TupleData.

    ``key`` is sent when the replica identity key changed (other columns ``n``), ``old``
    with REPLICA IDENTITY FULL; a plain update has neither.
    """

    relid: int
    new: TupleData
    key: Optional[TupleData] = None
    old: Optional[TupleData] = None
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "U"

    def __post_init__(self) -> None:
        object.__setattr__(self, "new", as_tuple_data(self.new))
        _check_old(self, allow_none=True)

    def encode(self) -> bytes:
        parts = [b"U", _xid_prefix(self.xid, "Update"), _p(">I", self.relid, "Update.relid")]
        if self.key is not None:
            parts += [b"K", _encode_tuple(self.key, "Update key tuple")]
        elif self.old is not None:
            parts += [b"O", _encode_tuple(self.old, "Update old tuple")]
        parts += [b"N", _encode_tuple(self.new, "Update new tuple")]
        return b"".join(parts)

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Update":
        xid = r.u32("xid") if in_stream else None
        relid = r.u32("relid")
        action = r.take(1, "tuple kind")
        key = old = None
        if action not in (b"K", b"O", b"N"):
            raise ValueError(f"{r.what}: expected action 'N', 'O' or 'K', got {action!r}")
        if action == b"K":
            key = r.tuple("key tuple")
            action = r.take(1, "tuple kind")
        elif action == b"O":
            old = r.tuple("old tuple")
            action = r.take(1, "tuple kind")
        if action != b"N":
            raise ValueError(f"{r.what}: expected new tuple 'N', got {action!r}")
        return cls(relid, r.tuple("new tuple"), key, old, xid)


@dataclass(frozen=True)
class Delete:
    """``D`` Delete: [xid] relid:u32 (``K`` key TupleData | ``O`` old TupleData)."""

    relid: int
    key: Optional[TupleData] = None
    old: Optional[TupleData] = None
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "D"

    def __post_init__(self) -> None:
        _check_old(self, allow_none=False)

    def encode(self) -> bytes:
        if self.key is not None:
            body = b"K" + _encode_tuple(self.key, "Delete key tuple")
        else:
            body = b"O" + _encode_tuple(self.old, "Delete old tuple")  # type: ignore[arg-type]
        return b"D" + _xid_prefix(self.xid, "Delete") + _p(">I", self.relid, "Delete.relid") + body

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Delete":
        xid = r.u32("xid") if in_stream else None
        relid = r.u32("relid")
        action = r.take(1, "tuple kind")
        if action == b"K":
            return cls(relid, key=r.tuple("key tuple"), xid=xid)
        if action == b"O":
            return cls(relid, old=r.tuple("old tuple"), xid=xid)
        raise ValueError(f"{r.what}: expected action 'O' or 'K', got {action!r}")


@dataclass(frozen=True)
class Truncate:
    """``T`` Truncate: [xid] nrels:u32 options:u8 (1 CASCADE, 2 RESTART IDENTITY) relid:u32 x nrels."""

    relids: Tuple[int, ...]
    options: int = 0
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "T"

    def __post_init__(self) -> None:
        object.__setattr__(self, "relids", tuple(self.relids))

    @classmethod
    def of(
        cls, relids: Iterable[int], *, cascade: bool = False, restart_identity: bool = False, xid: Optional[int] = None
    ) -> "Truncate":
        return cls(
            tuple(relids),
            (TRUNCATE_CASCADE if cascade else 0) | (TRUNCATE_RESTART_IDENTITY if restart_identity else 0),
            xid,
        )

    @property
    def cascade(self) -> bool:
        return bool(self.options & TRUNCATE_CASCADE)

    @property
    def restart_identity(self) -> bool:
        return bool(self.options & TRUNCATE_RESTART_IDENTITY)

    def encode(self) -> bytes:
        return b"".join(
            (
                b"T",
                _xid_prefix(self.xid, "Truncate"),
                _p(">I", len(self.relids), "Truncate nrels"),
                _p(">B", self.options, "Truncate.options"),
                *(_p(">I", rel, "Truncate relid") for rel in self.relids),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Truncate":
        xid = r.u32("xid") if in_stream else None
        nrels = r.u32("nrels")
        options = r.u8("options")
        if nrels * 4 > r.remaining():
            raise ValueError(f"{r.what} is truncated: {nrels} relids need {nrels * 4} bytes, only {r.remaining()} left")
        return cls(tuple(r.u32("relid") for _ in range(nrels)), options, xid)


@dataclass(frozen=True)
class Message:
    """``M`` logical decoding message: [xid] flags:u8 (1 transactional) lsn:u64 prefix length:i32 content."""

    lsn: int
    prefix: str
    content: bytes
    flags: int = 0
    xid: Optional[int] = None

    TYPE: ClassVar[str] = "M"

    def __post_init__(self) -> None:
        _bytes_field(self, "content")

    @property
    def transactional(self) -> bool:
        return bool(self.flags & MESSAGE_TRANSACTIONAL)

    def encode(self) -> bytes:
        return b"".join(
            (
                b"M",
                _xid_prefix(self.xid, "Message"),
                _p(">B", self.flags, "Message.flags"),
                _p(">Q", self.lsn, "Message.lsn"),
                _cstr(self.prefix, "Message.prefix"),
                _p(">i", len(self.content), "Message content length"),
                self.content,
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "Message":
        xid = r.u32("xid") if in_stream else None
        flags = r.u8("flags")
        lsn = r.u64("lsn")
        prefix = r.cstr("prefix")
        length = r.i32("content length")
        if length < 0:
            raise ValueError(f"{r.what}: negative content length {length}")
        return cls(lsn, prefix, r.take(length, "content"), flags, xid)


@dataclass(frozen=True)
class StreamStart:
    """``S`` Stream Start (v2+): xid:u32 first_segment:u8 (1 for the first segment of this xid)."""

    xid: int
    first_segment: bool = False

    TYPE: ClassVar[str] = "S"

    def encode(self) -> bytes:
        return b"S" + _p(">I", self.xid, "StreamStart.xid") + (b"\x01" if self.first_segment else b"\x00")

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "StreamStart":
        xid = r.u32("xid")
        return cls(xid, r.u8("first_segment") == 1)


@dataclass(frozen=True)
class StreamStop:
    """``E`` Stream Stop (v2+): no fields."""

    TYPE: ClassVar[str] = "E"

    def encode(self) -> bytes:
        return b"E"

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "StreamStop":
        return cls()


@dataclass(frozen=True)
class StreamCommit:
    """``c`` Stream Commit (v2+): xid:u32 flags:u8 (0) commit_lsn:u64 end_lsn:u64 commit_time:i64."""

    xid: int
    commit_lsn: int
    end_lsn: int
    commit_time: int
    flags: int = 0

    TYPE: ClassVar[str] = "c"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"c",
                _p(">I", self.xid, "StreamCommit.xid"),
                _p(">B", self.flags, "StreamCommit.flags"),
                _p(">Q", self.commit_lsn, "StreamCommit.commit_lsn"),
                _p(">Q", self.end_lsn, "StreamCommit.end_lsn"),
                _p(">q", self.commit_time, "StreamCommit.commit_time"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "StreamCommit":
        xid = r.u32("xid")
        flags = r.u8("flags")
        return cls(xid, r.u64("commit_lsn"), r.u64("end_lsn"), r.i64("commit_time"), flags)


@dataclass(frozen=True)
class StreamAbort:
    """``A`` Stream Abort (v2+): xid:u32 subxid:u32 [abort_lsn:u64 abort_time:i64].

    ``subxid == xid`` aborts the whole transaction. The abort LSN/time are only written
    with proto_version >= 4 and ``streaming 'parallel'``; give both or neither. The
    decoder tells them apart by length (9 or 25 bytes).
    """

    xid: int
    subxid: int
    abort_lsn: Optional[int] = None
    abort_time: Optional[int] = None

    TYPE: ClassVar[str] = "A"

    def __post_init__(self) -> None:
        if (self.abort_lsn is None) != (self.abort_time is None):
            raise ValueError("StreamAbort: abort_lsn and abort_time go together (v4 parallel streaming)")

    @property
    def has_abort_info(self) -> bool:
        return self.abort_lsn is not None

    def encode(self) -> bytes:
        parts = [b"A", _p(">I", self.xid, "StreamAbort.xid"), _p(">I", self.subxid, "StreamAbort.subxid")]
        if self.abort_lsn is not None:
            parts += [
                _p(">Q", self.abort_lsn, "StreamAbort.abort_lsn"),
                _p(">q", self.abort_time, "StreamAbort.abort_time"),
            ]
        return b"".join(parts)

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "StreamAbort":
        xid = r.u32("xid")
        subxid = r.u32("subxid")
        if r.remaining() == 0:
            return cls(xid, subxid)
        if r.remaining() != 16:
            raise ValueError(
                f"{r.what} must be 9 bytes (v2-v4) or 25 bytes (v4 parallel: abort_lsn + abort_time), "
                f"got {len(r.data)}"
            )
        return cls(xid, subxid, r.u64("abort_lsn"), r.i64("abort_time"))


@dataclass(frozen=True)
class BeginPrepare:
    """``b`` Begin Prepare (v3+): prepare_lsn:u64 end_lsn:u64 prepare_time:i64 xid:u32 gid."""

    prepare_lsn: int
    end_lsn: int
    prepare_time: int
    xid: int
    gid: str

    TYPE: ClassVar[str] = "b"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"b",
                _p(">Q", self.prepare_lsn, "BeginPrepare.prepare_lsn"),
                _p(">Q", self.end_lsn, "BeginPrepare.end_lsn"),
                _p(">q", self.prepare_time, "BeginPrepare.prepare_time"),
                _p(">I", self.xid, "BeginPrepare.xid"),
                _cstr(self.gid, "BeginPrepare.gid"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "BeginPrepare":
        return cls(r.u64("prepare_lsn"), r.u64("end_lsn"), r.i64("prepare_time"), r.u32("xid"), r.cstr("gid"))


class _PrepareLike:
    """Shared layout of P and p: flags:u8 prepare_lsn:u64 end_lsn:u64 prepare_time:i64 xid:u32 gid."""

    TYPE: ClassVar[str]
    prepare_lsn: int
    end_lsn: int
    prepare_time: int
    xid: int
    gid: str
    flags: int

    def encode(self) -> bytes:
        n = type(self).__name__
        return b"".join(
            (
                self.TYPE.encode("ascii"),
                _p(">B", self.flags, f"{n}.flags"),
                _p(">Q", self.prepare_lsn, f"{n}.prepare_lsn"),
                _p(">Q", self.end_lsn, f"{n}.end_lsn"),
                _p(">q", self.prepare_time, f"{n}.prepare_time"),
                _p(">I", self.xid, f"{n}.xid"),
                _cstr(self.gid, f"{n}.gid"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> Any:
        flags = r.u8("flags")
        return cls(  # type: ignore[call-arg]
            r.u64("prepare_lsn"), r.u64("end_lsn"), r.i64("prepare_time"), r.u32("xid"), r.cstr("gid"), flags
        )


@dataclass(frozen=True)
class Prepare(_PrepareLike):
    """``P`` Prepare (v3+): flags:u8 (0) prepare_lsn:u64 end_lsn:u64 prepare_time:i64 xid:u32 gid."""

    prepare_lsn: int
    end_lsn: int
    prepare_time: int
    xid: int
    gid: str
    flags: int = 0

    TYPE: ClassVar[str] = "P"


@dataclass(frozen=True)
class StreamPrepare(_PrepareLike):
    """``p`` Stream Prepare (v3+): same layout as Prepare; ends a streamed prepared transaction."""

    prepare_lsn: int
    end_lsn: int
    prepare_time: int
    xid: int
    gid: str
    flags: int = 0

    TYPE: ClassVar[str] = "p"


@dataclass(frozen=True)
class CommitPrepared:
    """``K`` Commit Prepared (v3+): flags:u8 (0) commit_lsn:u64 end_lsn:u64 commit_time:i64 xid:u32 gid."""

    commit_lsn: int
    end_lsn: int
    commit_time: int
    xid: int
    gid: str
    flags: int = 0

    TYPE: ClassVar[str] = "K"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"K",
                _p(">B", self.flags, "CommitPrepared.flags"),
                _p(">Q", self.commit_lsn, "CommitPrepared.commit_lsn"),
                _p(">Q", self.end_lsn, "CommitPrepared.end_lsn"),
                _p(">q", self.commit_time, "CommitPrepared.commit_time"),
                _p(">I", self.xid, "CommitPrepared.xid"),
                _cstr(self.gid, "CommitPrepared.gid"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "CommitPrepared":
        flags = r.u8("flags")
        return cls(r.u64("commit_lsn"), r.u64("end_lsn"), r.i64("commit_time"), r.u32("xid"), r.cstr("gid"), flags)


@dataclass(frozen=True)
class RollbackPrepared:
    """``r`` Rollback Prepared (v3+): flags:u8 (0) prepare_end_lsn:u64 rollback_end_lsn:u64
    prepare_time:i64 rollback_time:i64 xid:u32 gid."""

    prepare_end_lsn: int
    rollback_end_lsn: int
    prepare_time: int
    rollback_time: int
    xid: int
    gid: str
    flags: int = 0

    TYPE: ClassVar[str] = "r"

    def encode(self) -> bytes:
        return b"".join(
            (
                b"r",
                _p(">B", self.flags, "RollbackPrepared.flags"),
                _p(">Q", self.prepare_end_lsn, "RollbackPrepared.prepare_end_lsn"),
                _p(">Q", self.rollback_end_lsn, "RollbackPrepared.rollback_end_lsn"),
                _p(">q", self.prepare_time, "RollbackPrepared.prepare_time"),
                _p(">q", self.rollback_time, "RollbackPrepared.rollback_time"),
                _p(">I", self.xid, "RollbackPrepared.xid"),
                _cstr(self.gid, "RollbackPrepared.gid"),
            )
        )

    @classmethod
    def _decode(cls, r: _Reader, in_stream: bool) -> "RollbackPrepared":
        flags = r.u8("flags")
        return cls(
            r.u64("prepare_end_lsn"),
            r.u64("rollback_end_lsn"),
            r.i64("prepare_time"),
            r.i64("rollback_time"),
            r.u32("xid"),
            r.cstr("gid"),
            flags,
        )


PgoutputMessage = Union[
    Begin,
    Commit,
    Origin,
    Relation,
    Type,
    Insert,
    Update,
    Delete,
    Truncate,
    Message,
    StreamStart,
    StreamStop,
    StreamCommit,
    StreamAbort,
    BeginPrepare,
    Prepare,
    CommitPrepared,
    RollbackPrepared,
    StreamPrepare,
]

#: Message type byte -> dataclass.
MESSAGE_CLASSES: dict = {
    cls.TYPE: cls
    for cls in (
        Begin,
        Commit,
        Origin,
        Relation,
        Type,
        Insert,
        Update,
        Delete,
        Truncate,
        Message,
        StreamStart,
        StreamStop,
        StreamCommit,
        StreamAbort,
        BeginPrepare,
        Prepare,
        CommitPrepared,
        RollbackPrepared,
        StreamPrepare,
    )
}

#: Messages that carry an xid after the type byte inside Stream Start..Stream Stop.
STREAMABLE_TYPES = frozenset("RYIUDTM")

_LONG_NAMES = {
    "B": "Begin",
    "C": "Commit",
    "O": "Origin",
    "R": "Relation",
    "Y": "Type",
    "I": "Insert",
    "U": "Update",
    "D": "Delete",
    "T": "Truncate",
    "M": "Message",
    "S": "Stream Start",
    "E": "Stream Stop",
    "c": "Stream Commit",
    "A": "Stream Abort",
    "b": "Begin Prepare",
    "P": "Prepare",
    "K": "Commit Prepared",
    "r": "Rollback Prepared",
    "p": "Stream Prepare",
}


def decode_pgoutput(payload: bytes, *, in_stream: bool = False) -> PgoutputMessage:
    """Decode one pgoutput message (an XLogData payload).

    ``in_stream`` says the message sits between Stream Start and Stream Stop, where the
    change messages (R, Y, I, U, D, T, M) carry an xid first. Raises ValueError naming
    the problem (unknown type byte, truncation, trailing bytes, bad tuple kind...).
    """
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise TypeError(f"a pgoutput payload is bytes, got {type(payload).__name__}")
    if not payload:
        raise ValueError("empty pgoutput message: expected a type byte")
    kind = chr(payload[0])
    cls = MESSAGE_CLASSES.get(kind)
    if cls is None:
        raise ValueError(
            f"unknown pgoutput message type {kind!r} (0x{payload[0]:02x}); "
            f"expected one of {''.join(sorted(MESSAGE_CLASSES))}"
        )
    what = f"pgoutput {_LONG_NAMES[kind]} '{kind}'" + (" (in stream)" if in_stream and kind in STREAMABLE_TYPES else "")
    reader = _Reader(payload, what)
    msg = cls._decode(reader, in_stream)
    reader.end()
    return msg


# ---------------------------------------------------------------------------------------
# Protocol versions


#: Lowest proto_version at which each message type may be sent.
MIN_PROTO_VERSION: dict = {
    "B": 1,
    "C": 1,
    "O": 1,
    "R": 1,
    "Y": 1,
    "I": 1,
    "U": 1,
    "D": 1,
    "T": 1,
    "M": 1,
    "S": 2,
    "E": 2,
    "c": 2,
    "A": 2,
    "b": 3,
    "P": 3,
    "K": 3,
    "r": 3,
    "p": 3,
}
#: Stream Abort with abort_lsn/abort_time needs v4 (and streaming 'parallel').
PROTO_VERSION_STREAM_ABORT_INFO = 4
#: Highest proto_version each server major accepts (LOGICALREP_PROTO_MAX_VERSION_NUM).
MAX_PROTO_VERSION_BY_SERVER: dict = {14: 2, 15: 3, 16: 4, 17: 4, 18: 4}


def min_proto_version(message: Union[str, bytes, PgoutputMessage]) -> int:
    """Lowest proto_version that may carry ``message`` (a type letter or a message object).

    For objects, the fields count too: a change message with an ``xid`` (streamed) needs
    v2, a StreamAbort with abort_lsn/abort_time needs v4.
    """
    if isinstance(message, bytes):
        message = message.decode("latin-1")
    if isinstance(message, str):
        try:
            return MIN_PROTO_VERSION[message]
        except KeyError:
            raise ValueError(f"unknown pgoutput message type {message!r}") from None
    kind = getattr(message, "TYPE", None)
    if kind not in MIN_PROTO_VERSION:
        raise TypeError(f"{message!r} is not a pgoutput message")
    version = MIN_PROTO_VERSION[kind]
    if kind in STREAMABLE_TYPES and getattr(message, "xid", None) is not None:
        version = max(version, 2)
    if isinstance(message, StreamAbort) and message.has_abort_info:
        version = max(version, PROTO_VERSION_STREAM_ABORT_INFO)
    return version


def gate(message: Union[str, bytes, PgoutputMessage], proto_version: int) -> bool:
    """True when ``message`` may be sent to a client that asked for ``proto_version``."""
    return proto_version >= min_proto_version(message)


class PgoutputDecoder:
    """Stateful decoder for a sequence of pgoutput payloads (tests, proxies).

    Tracks Stream Start / Stream Stop to know when change messages carry an xid, keeps
    the last Relation and Type seen per OID, and (when ``proto_version`` is given)
    rejects messages that version cannot carry.
    """

    def __init__(self, proto_version: Optional[int] = None) -> None:
        self.proto_version = proto_version
        self.in_stream = False
        self.stream_xid: Optional[int] = None
        self.relations: dict = {}
        self.types: dict = {}
        self.messages: list = []

    def decode(self, payload: bytes) -> PgoutputMessage:
        msg = decode_pgoutput(payload, in_stream=self.in_stream)
        if self.proto_version is not None and not gate(msg, self.proto_version):
            raise ValueError(
                f"{type(msg).__name__} {msg.TYPE!r} needs proto_version >= {min_proto_version(msg)}, "
                f"stream uses {self.proto_version}"
            )
        if isinstance(msg, StreamStart):
            if self.in_stream:
                raise ValueError(f"Stream Start for xid {msg.xid} inside the stream of xid {self.stream_xid}")
            self.in_stream, self.stream_xid = True, msg.xid
        elif isinstance(msg, StreamStop):
            if not self.in_stream:
                raise ValueError("Stream Stop outside a stream")
            self.in_stream, self.stream_xid = False, None
        elif isinstance(msg, Relation):
            self.relations[msg.relid] = msg
        elif isinstance(msg, Type):
            self.types[msg.type_oid] = msg
        self.messages.append(msg)
        return msg

    def decode_all(self, payloads: Iterable[bytes]) -> list:
        return [self.decode(p) for p in payloads]


# ---------------------------------------------------------------------------------------
# START_REPLICATION options (pgoutput.c parse_output_parameters + pgoutput_startup)


@dataclass(frozen=True)
class PgoutputOptions:
    """Validated pgoutput options."""

    proto_version: int
    publication_names: list = field(default_factory=list)
    binary: bool = False
    messages: bool = False
    streaming: str = "off"  # "off" | "on" | "parallel"
    two_phase: bool = False
    origin: str = "any"  # "any" | "none"

    @property
    def publish_no_origin(self) -> bool:
        return self.origin == "none"


def startup_callback_context(slot_name: str) -> str:
    """The ``where`` (CONTEXT) text of errors raised in pgoutput's startup callback."""
    return f'slot "{slot_name}", output plugin "pgoutput", in the startup callback'


_NAMEDATALEN = 64


def _is_scanner_space(ch: str, server_major: int) -> bool:
    # scanner_isspace(); vertical tab counts since PostgreSQL 16.
    return ch in " \t\n\r\f" or (ch == "\v" and server_major >= 16)


def _truncate_identifier(name: str) -> str:
    data = name.encode(_ENC, _ERRORS)
    if len(data) < _NAMEDATALEN:
        return name
    cut = _NAMEDATALEN - 1
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # clip at a UTF-8 character boundary
        cut -= 1
    return data[:cut].decode(_ENC, _ERRORS)


def split_identifier_string(raw: str, separator: str = ",", *, server_major: int = 17) -> Optional[list]:
    """PostgreSQL's ``SplitIdentifierString``: a list of names, or None on bad syntax.

    Unquoted names are down-cased (ASCII only) and end at the separator or whitespace;
    double-quoted names keep their case and ``""`` stands for one quote; names are
    truncated to 63 bytes. The empty (or all-blank) string is an empty list.
    """
    names: list = []
    n = len(raw)
    i = 0
    while i < n and _is_scanner_space(raw[i], server_major):
        i += 1
    if i >= n:
        return names
    while True:
        if raw[i] == '"':
            buf = []
            i += 1
            while True:
                end = raw.find('"', i)
                if end < 0:
                    return None  # mismatched quotes
                buf.append(raw[i:end])
                if end + 1 < n and raw[end + 1] == '"':
                    buf.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            name = "".join(buf)
        else:
            start = i
            while i < n and raw[i] != separator and not _is_scanner_space(raw[i], server_major):
                i += 1
            if start == i:
                return None  # empty unquoted name
            name = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in raw[start:i])
        while i < n and _is_scanner_space(raw[i], server_major):
            i += 1
        done = False
        if i < n and raw[i] == separator:
            i += 1
            while i < n and _is_scanner_space(raw[i], server_major):
                i += 1
        elif i >= n:
            done = True
        else:
            return None  # junk after a name
        names.append(_truncate_identifier(name))
        if done:
            return names
        if i >= n:
            # "a," : another name is expected but the string ended
            return None


_C_SPACE = " \t\n\v\f\r"
_UINT32_MAX = 2**32 - 1
_ULONG_MAX = 2**64 - 1


def _strtoul(text: str) -> tuple:
    """C ``strtoul(text, &end, 10)`` on LP64: (value, rest, erange)."""
    i = 0
    n = len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    if i == start:
        return 0, text, False  # no conversion: endptr = nptr
    value = int(text[start:i])
    if value > _ULONG_MAX:
        return _ULONG_MAX, text[i:], True
    if negative:
        value = (-value) & _ULONG_MAX
    return value, text[i:], False


def _as_int32(value: int) -> int:
    """What ``%d`` prints for a uint32."""
    return value - 2**32 if value >= 2**31 else value


def parse_pgoutput_options(
    options: Union[Mapping[str, Optional[str]], Iterable[Tuple[str, Optional[str]]]],
    server_major: int,
    *,
    slot_name: Optional[str] = None,
) -> PgoutputOptions:
    """Validate START_REPLICATION's pgoutput options as PostgreSQL ``server_major`` does.

    ``options`` is a mapping or, to keep order and duplicates as the replication grammar
    does, a sequence of ``(name, value)`` pairs; ``None`` is an option given without a
    value. Raises :class:`PgError` with PostgreSQL's SQLSTATE and message (the first
    error PostgreSQL would report); ``where`` names the slot when ``slot_name`` is given.

    Per major (14..18; 15..17 are verified against the sources and captures):

    * proto_version > max (14: 2, 15: 3, 16+: 4): ``0A000 client sent proto_version=N but
      we only support protocol M or lower`` (<= 15) / ``... but server only supports ...``
      (16+); below 1: the same with ``1 or higher``.
    * missing proto_version: <= 16 it counts as 0 (the "or higher" error above); 17:
      ``22023 proto_version option missing``; 18: ``22023 option "proto_version" missing``.
    * missing publication_names: <= 16 ``22023 publication_names parameter missing`` (also
      for an empty list); 17: ``publication_names option missing``; 18: ``option
      "publication_names" missing``.
    * booleans (binary, messages, two_phase, streaming before 16) follow ``defGetBoolean``:
      only true/false/on/off in any case, or no value (= true); otherwise
      ``42601 <name> requires a Boolean value``. streaming on 16+ also takes ``parallel``
      (``... requires a Boolean value or "parallel"``).
    * two_phase is unknown before 15 and origin before 16 (``XX000 unrecognized pgoutput
      option: <name>``); a repeated option is ``42601 conflicting or redundant options``.
    """
    if server_major not in MAX_PROTO_VERSION_BY_SERVER:
        raise ValueError(
            f"server_major={server_major!r}: pgoutput option rules are known for "
            f"{min(MAX_PROTO_VERSION_BY_SERVER)}..{max(MAX_PROTO_VERSION_BY_SERVER)}"
        )
    where = startup_callback_context(slot_name) if slot_name is not None else None

    def fail(code: str, message: str, file: str = "pgoutput.c", routine: str = "parse_output_parameters") -> PgError:
        return PgError(code, message, where=where, file=file, routine=routine)

    def boolean(name: str, value: Optional[str]) -> bool:
        # defGetBoolean(): only the grammar's opt_boolean_or_string words.
        if value is None:
            return True
        low = value.lower()
        if low in ("true", "on"):
            return True
        if low in ("false", "off"):
            return False
        raise fail("42601", f"{name} requires a Boolean value", "define.c", "defGetBoolean")

    items = list(options.items()) if isinstance(options, Mapping) else [tuple(o) for o in options]
    max_version = MAX_PROTO_VERSION_BY_SERVER[server_major]
    given: set = set()
    proto_version = 0
    publication_names: list = []
    binary = messages = two_phase = False
    streaming = "off"
    origin = "any"

    known = {"proto_version", "publication_names", "binary", "messages", "streaming"}
    if server_major >= 15:
        known.add("two_phase")
    if server_major >= 16:
        known.add("origin")

    for name, value in items:
        if name not in known:
            raise fail("XX000", f"unrecognized pgoutput option: {name}")
        if name in given:
            raise fail("42601", "conflicting or redundant options")
        given.add(name)
        if name == "proto_version":
            # strtoul(strVal(arg)); a missing value crashes real servers: report it as invalid.
            if value is None:
                raise fail("22023", "invalid proto_version")
            parsed, rest, erange = _strtoul(value)
            if erange or rest != "":
                raise fail("22023", "invalid proto_version")
            if parsed > _UINT32_MAX:
                raise fail("22023", f'proto_version "{value}" out of range')
            proto_version = parsed
        elif name == "publication_names":
            names = split_identifier_string(value, ",", server_major=server_major) if value is not None else None
            if names is None:
                raise fail("42602", "invalid publication_names syntax")
            publication_names = names
        elif name == "binary":
            binary = boolean(name, value)
        elif name == "messages":
            messages = boolean(name, value)
        elif name == "streaming":
            if server_major >= 16:
                low = value.lower() if value is not None else "on"
                if low in ("true", "on"):
                    streaming = "on"
                elif low in ("false", "off"):
                    streaming = "off"
                elif low == "parallel":
                    streaming = "parallel"
                else:
                    raise fail(
                        "42601",
                        f'{name} requires a Boolean value or "parallel"',
                        "subscriptioncmds.c",
                        "defGetStreamingMode",
                    )
            else:
                streaming = "on" if boolean(name, value) else "off"
        elif name == "two_phase":
            two_phase = boolean(name, value)
        elif name == "origin":
            if value is None:
                raise fail("42601", f"{name} requires a parameter", "define.c", "defGetString")
            low = value.lower()
            if low not in ("none", "any"):
                raise fail("22023", f'unrecognized origin value: "{value}"')
            origin = low

    if server_major == 17:
        if "proto_version" not in given:
            raise fail("22023", "proto_version option missing")
        if "publication_names" not in given:
            raise fail("22023", "publication_names option missing")
    elif server_major >= 18:
        if "proto_version" not in given:
            raise fail("22023", 'option "proto_version" missing')
        if "publication_names" not in given:
            raise fail("22023", 'option "publication_names" missing')

    supports = "we only support" if server_major <= 15 else "server only supports"
    shown = _as_int32(proto_version)
    if proto_version > max_version:
        raise fail(
            "0A000",
            f"client sent proto_version={shown} but {supports} protocol {max_version} or lower",
            routine="pgoutput_startup",
        )
    if proto_version < 1:
        raise fail(
            "0A000",
            f"client sent proto_version={shown} but {supports} protocol 1 or higher",
            routine="pgoutput_startup",
        )
    if server_major <= 16 and not publication_names:
        raise fail("22023", "publication_names parameter missing", routine="pgoutput_startup")
    if streaming == "on" and proto_version < 2:
        raise fail(
            "22023",
            f"requested proto_version={shown} does not support streaming, need 2 or higher",
            routine="pgoutput_startup",
        )
    if streaming == "parallel" and proto_version < 4:
        raise fail(
            "22023",
            f"requested proto_version={shown} does not support parallel streaming, need 4 or higher",
            routine="pgoutput_startup",
        )
    if two_phase and proto_version < 3:
        raise fail(
            "22023",
            f"requested proto_version={shown} does not support two-phase commit, need 3 or higher",
            routine="pgoutput_startup",
        )
    return PgoutputOptions(
        proto_version=proto_version,
        publication_names=publication_names,
        binary=binary,
        messages=messages,
        streaming=streaming,
        two_phase=two_phase,
        origin=origin,
    )
