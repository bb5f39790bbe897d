"""The one PostgreSQL type registry: name/alias <-> OID, typlen, array types, text + binary codecs.

Everything that turns a Python value into PostgreSQL wire bytes (RowDescription, DataRow,
Bind parameters, COPY, pgoutput tuples, scenario validation, hypothesis strategies) goes
through a :class:`PgType` from :data:`REGISTRY`.

Output is byte-identical to PostgreSQL 15 with the settings fakepm announces:
``DateStyle='ISO, MDY'``, ``IntervalStyle=postgres``, ``TimeZone=UTC``,
``extra_float_digits=1`` (shortest-exact floats) and ``bytea_output=hex``. Golden values in
tests/unit/test_types.py were checked against a real PostgreSQL 15.

Natural Python values (what ``decode_*`` return and ``coerce`` produces):

=====================  ==================================================================
bool                   bool
int2/int4/int8/oid/..  int
float4/float8          float (float4: the exact float32 value)
numeric                Decimal (NaN, Infinity, -Infinity included; dscale = exponent)
text/varchar/bpchar..  str
"char"                 str of length 0 or 1 (code point < 256: the byte value)
bytea                  bytes
date                   date, or float('inf') / float('-inf') for infinity / -infinity
time / timetz          time (naive / aware with a fixed-offset tzinfo)
timestamp              naive datetime, or float('inf') / float('-inf')
timestamptz            aware datetime in UTC, or float('inf') / float('-inf')
interval               timedelta when months == 0, else :class:`Interval` (never lossy);
                       encoders accept both
uuid                   uuid.UUID
json / jsonb           the parsed JSON value (dict/list/int/float/bool/None; nested strings are
                       str). A *top-level* str is always JSON text, as in psycopg/asyncpg: it is
                       validated and emitted (json verbatim, jsonb normalized), and a document
                       that is a JSON string decodes to its JSON text ('"x"')
inet                   IPv4Address/IPv6Address (full-length mask) or IPv4Interface/IPv6Interface
cidr                   IPv4Network/IPv6Network
pg_lsn, xid, xid8      int
regclass/regtype/..    int (OID) or str (name); binary needs an OID (regtype names resolve)
int2vector/oidvector   list[int]
arrays                 list (nested lists for more dimensions), None for NULL elements
record                 tuple (text only; decodes to a tuple of str/None)
void                   None
=====================  ==================================================================

``encode_text``/``encode_binary`` take canonical values on a fast path and, when a value is
not canonical (a str for an int column, an int for numeric, a naive datetime for
timestamptz...), run it through ``coerce`` first. ``decode_*`` raise :class:`InvalidValue`
(a ValueError carrying the SQLSTATE PostgreSQL would use) with PostgreSQL's wording.

This module is sans-I/O: no sockets, threads or clocks ('now'/'today' are not accepted).
"""

from __future__ import annotations

import binascii
import difflib
import json
import math
import re
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation, ROUND_HALF_EVEN
from fractions import Fraction
from functools import partial
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from itertools import repeat
from operator import attrgetter
from typing import Any, Callable
from uuid import UUID

from .fardates import MAX_DATE_DAYS, MAX_TIMESTAMP_US, MIN_DAYS, FarDateTime, days_of

__all__ = [
    "PgType",
    "TypeRegistry",
    "REGISTRY",
    "lookup",
    "format_type",
    "enum_type",
    "Interval",
    "UnknownType",
    "InvalidValue",
    "Codec",
    "INFINITY",
    "NEG_INFINITY",
]

# --------------------------------------------------------------------------- errors


class UnknownType(KeyError, ValueError):
    """A type name or OID the registry does not know (message may suggest a close name)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidValue(ValueError):
    """Bad input for a type. ``sqlstate`` is what PostgreSQL reports (22P02, 22003, 22P03...)."""

    def __init__(self, message: str, sqlstate: str = "22P02", detail: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.detail = detail


class _NotCanonical(Exception):
    """Raised by a fast encoder: 'this value needs coerce() first'."""


# SQLSTATEs used below
_SYNTAX = "22P02"  # invalid_text_representation
_RANGE = "22003"  # numeric_value_out_of_range
_DT_FORMAT = "22007"  # invalid_datetime_format
_DT_RANGE = "22008"  # datetime_field_overflow
_BINARY = "22P03"  # invalid_binary_representation
_PROTOCOL = "08P01"  # protocol_violation ("insufficient data left in message")
_ENCODING = "22021"  # character_not_in_repertoire
_PARAM = "22023"  # invalid_parameter_value

# ------------------------------------------------------------------ shared constants

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_II = struct.Struct(">ii")
_INTERVAL = struct.Struct(">qii")  # microseconds, days, months
_TIMETZ = struct.Struct(">qi")  # microseconds, zone (seconds WEST of UTC)
_NUMHDR = struct.Struct(">HhHH")  # ndigits, weight, sign, dscale
_ARRHDR = struct.Struct(">iiI")  # ndim, has-null flag, element OID

INFINITY = float("inf")  # the value of 'infinity' for date / timestamp / timestamptz
NEG_INFINITY = float("-inf")
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)
_INT32_MAX = (1 << 31) - 1
_INT32_MIN = -(1 << 31)

_UTC = timezone.utc
_PG_EPOCH_ORD = date(2000, 1, 1).toordinal()  # PostgreSQL dates/timestamps count from 2000-01-01
_EPOCH_TS = datetime(2000, 1, 1)
_EPOCH_TSTZ = datetime(2000, 1, 1, tzinfo=_UTC)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


def _show(data: Any) -> str:
    """The bad input as PostgreSQL quotes it in messages."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data).decode("utf-8", "replace")
    return str(data)


def _fmt(value: Any) -> str:
    """A value as coerce() error messages show it: "abc" for strings, bare numbers."""
    if isinstance(value, str):
        s = f'"{value}"'
    elif isinstance(value, (bool, int, float, Decimal)):
        s = str(value)
    else:
        s = repr(value)
    return s if len(s) <= 200 else s[:197] + "..."


def _syntax(display: str, data: Any, sqlstate: str = _SYNTAX) -> InvalidValue:
    return InvalidValue(f'invalid input syntax for type {display}: "{_show(data)}"', sqlstate)


def _bin_len_error(data: bytes, size: int) -> InvalidValue:
    if len(data) < size:
        return InvalidValue("insufficient data left in message", _PROTOCOL)
    return InvalidValue("incorrect binary data format", _BINARY)


def _bad_type(value: Any, display: str) -> TypeError:
    return TypeError(f"value {_fmt(value)} ({type(value).__name__}) is not valid for type {display}")


def _coerce_via_text(display: str, decode_text: Callable[[bytes], Any], s: str) -> Any:
    """coerce() for a str: parse it as PostgreSQL would parse the literal."""
    try:
        return decode_text(s.encode())
    except InvalidValue as e:
        msg = str(e)
        if msg.startswith("value ") or msg.startswith('"'):
            raise  # already 'value "x" is out of range for type y'
        if msg.startswith("invalid input syntax for type"):
            raise InvalidValue(f"value {_fmt(s)} is not valid for type {display}", e.sqlstate, e.detail) from None
        raise InvalidValue(f"value {_fmt(s)} is not valid for type {display}: {msg}", e.sqlstate, e.detail) from None
    except UnicodeEncodeError:
        raise InvalidValue(f"value {_fmt(s)} is not valid for type {display}: not encodable as UTF-8", _ENCODING) from None


# --------------------------------------------------------------------------- Codec


class Codec:
    """The five functions that make a type: text/binary encode/decode and coerce.

    ``array_safe``: the text output never needs quoting inside an array literal (numbers,
    booleans, uuids...), so array_out can skip the scan. ``list_is_scalar``: a Python list
    is one value of this type (json, int2vector), not a nested array dimension.
    """

    __slots__ = ("encode_text", "decode_text", "encode_binary", "decode_binary", "coerce",
                 "has_binary", "array_safe", "list_is_scalar")

    def __init__(self, encode_text, decode_text, encode_binary=None, decode_binary=None, coerce=None,
                 *, array_safe: bool = False, list_is_scalar: bool = False, name: str = "?"):
        self.has_binary = encode_binary is not None
        if encode_binary is None:
            def encode_binary(value, _n=name):
                raise InvalidValue(f"no binary output function available for type {_n}", "42883")
        if decode_binary is None:
            def decode_binary(data, _n=name):
                raise InvalidValue(f"no binary input function available for type {_n}", "42883")
        self.encode_text = encode_text
        self.decode_text = decode_text
        self.encode_binary = encode_binary
        self.decode_binary = decode_binary
        self.coerce = coerce or (lambda v: v)
        self.array_safe = array_safe
        self.list_is_scalar = list_is_scalar


# --------------------------------------------------------------------------- bool

_BOOL_TEXT = {True: b"t", False: b"f"}
_BOOL_BIN = {True: b"\x01", False: b"\x00"}
_BOOL_FAST = {b"t": True, b"f": False, b"true": True, b"false": False}


def _parse_bool(s: str) -> bool | None:
    """PostgreSQL's parse_bool_with_len: prefixes of true/false/yes/no, on/off, 1/0."""
    v = s.strip().lower()
    n = len(v)
    if not n:
        return None
    c = v[0]
    if c == "t" and "true".startswith(v):
        return True
    if c == "f" and "false".startswith(v):
        return False
    if c == "y" and "yes".startswith(v):
        return True
    if c == "n" and "no".startswith(v):
        return False
    if c == "o" and n >= 2:  # 'o' alone is ambiguous
        if "on".startswith(v):
            return True
        if "off".startswith(v):
            return False
    if v == "1":
        return True
    if v == "0":
        return False
    return None


def _bool_codec() -> Codec:
    def dec_text(data):
        v = _BOOL_FAST.get(data)
        if v is None:
            v = _parse_bool(_show(data))
            if v is None:
                raise _syntax("boolean", data)
        return v

    def dec_bin(data):
        if len(data) != 1:
            raise _bin_len_error(data, 1)
        return data != b"\x00"  # boolrecv: any non-zero byte is true

    def coerce(v):
        if v is None or v is True or v is False:
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if isinstance(v, str):
            b = _parse_bool(v)
            if b is None:
                raise InvalidValue(f"value {_fmt(v)} is not valid for type boolean")
            return b
        raise _bad_type(v, "boolean")

    return Codec(_BOOL_TEXT.__getitem__, dec_text, _BOOL_BIN.__getitem__, dec_bin, coerce,
                 array_safe=True, name="boolean")


# --------------------------------------------------------------------------- integers


def _int_codec(display: str, bits: int, st: struct.Struct, unsigned: bool = False) -> Codec:
    """int2/int4/int8 (signed) and oid/xid/cid/xid8 (unsigned; text input wraps negatives like oidin)."""
    if unsigned:
        lo, hi = 0, (1 << bits) - 1
        in_lo = -(1 << (bits - 1))  # oidin accepts -2147483648..-1 and wraps them
    else:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        in_lo = lo
    pack, unpack, size = st.pack, st.unpack, st.size

    def enc_text(v):
        if v.__class__ is int and lo <= v <= hi:  # exact class: '%d' would print 1.5 as 1
            return b"%d" % v
        raise _NotCanonical

    def enc_text_column(col):
        """enc_text over a column (a batch of rows), checked at C level; None: value by value."""
        if set(map(type, col)) == _ONLY_INT and lo <= min(col) and max(col) <= hi:
            return list(map(b"%d".__mod__, col))
        return None

    enc_text.column = enc_text_column  # type: ignore[attr-defined]
    enc_bin = pack  # struct.error (-> coerce) for floats, str and out-of-range ints

    def dec_text(data):
        try:
            if b"_" in data:  # Python int() allows 1_000, PostgreSQL 15 does not
                raise ValueError
            v = int(data)
        except (ValueError, TypeError):
            raise _syntax(display, data) from None
        if lo <= v <= hi:
            return v
        if unsigned and in_lo <= v < 0:
            return v + (1 << bits)
        raise InvalidValue(f'value "{_show(data)}" is out of range for type {display}', _RANGE)

    def dec_bin(data):
        try:
            return unpack(data)[0]
        except struct.error:
            raise _bin_len_error(data, size) from None

    def dec_text_column(col):
        # bulk paths (COPY): dec_text over a list, or an exception (the caller redoes it value by value)
        if b"_" in b"".join(col):
            raise ValueError("an underscore")
        vals = list(map(int, col))
        if vals and (min(vals) < lo or max(vals) > hi):
            raise ValueError("out of range")
        return vals

    dec_text.column = dec_text_column  # type: ignore[attr-defined]
    dec_bin.unpack = (st.format[-1], None, None)  # type: ignore[attr-defined]  # struct code; the value as is

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, bool):
            raise _bad_type(v, display)
        if isinstance(v, int):
            n = int(v)
        elif isinstance(v, (float, Decimal)):
            if not (math.isfinite(v) and v == int(v)):
                raise InvalidValue(f"value {_fmt(v)} is not valid for type {display}")
            n = int(v)
        elif isinstance(v, str):
            return _coerce_via_text(display, dec_text, v)
        else:
            raise _bad_type(v, display)
        if not lo <= n <= hi:
            raise InvalidValue(f"value {_fmt(v)} is out of range for type {display}", _RANGE)
        return n

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, array_safe=True, name=display)


# --------------------------------------------------------------------------- floats


def _fmt_digits(neg: bool, digits: str, exp10: int, fixed_hi: int) -> str:
    """Shortest digits -> PostgreSQL's float text: fixed when -4 <= exp10 < fixed_hi, else 1.5e+16."""
    if -4 <= exp10 < fixed_hi:
        if exp10 >= 0:
            if len(digits) <= exp10 + 1:
                s = digits + "0" * (exp10 + 1 - len(digits))
            else:
                s = digits[: exp10 + 1] + "." + digits[exp10 + 1:]
        else:
            s = "0." + "0" * (-exp10 - 1) + digits
    else:
        s = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        s += ("e+%02d" if exp10 >= 0 else "e-%02d") % abs(exp10)
    return "-" + s if neg else s


_FLOAT_SPECIAL_TEXT = {"inf": b"Infinity", "-inf": b"-Infinity", "nan": b"NaN"}


def _f8_text(v: float) -> bytes:
    # Python's repr is the shortest round-trip string, like PostgreSQL 12+'s Ryu output.
    # Layout differs (Python goes exponential at 1e16, PostgreSQL at 1e15), and so does one
    # corner: PostgreSQL builds Ryu without STRICTLY_SHORTEST, so a decimal lying exactly on
    # the rounding boundary is never chosen, while Python takes it when the mantissa is even.
    # That needs a midpoint with few digits, which only exists for |v| >= 2**52: slow path.
    s = float.__repr__(v)  # TypeError for non-floats -> coerce
    if -1e15 < v < 1e15:
        if s[-2:] == ".0":
            s = s[:-2]
        return s.encode()
    special = _FLOAT_SPECIAL_TEXT.get(s)
    if special is not None:
        return special
    digits, exp10 = _shortest_open_interval(abs(v), s.lstrip("-"))
    return _fmt_digits(v < 0, digits, exp10, 15).encode()


def _split_decimal(s: str) -> tuple[str, int]:
    """'1.2345e+16' / '12345.0' -> ('12345', exponent of the first digit)."""
    m, _, e = s.partition("e")
    ip, _, fp = m.partition(".")
    digits = (ip + fp).lstrip("0")
    lead = len(ip + fp) - len(digits)  # leading zeros (only for 0.00ddd forms)
    exp10 = (int(e) if e else 0) + len(ip) - 1 - lead
    return digits.rstrip("0") or "0", exp10


def _shortest_open_interval(a: float, r: str) -> tuple[str, int]:
    """Ryu as PostgreSQL compiles it: shortest digits strictly inside the rounding interval."""
    exact = Fraction(a)
    lo = (exact + Fraction(math.nextafter(a, 0.0))) / 2
    hi = exact + Fraction(math.ulp(a)) / 2  # (nextafter would be inf at DBL_MAX)
    if lo < Fraction(r) < hi:
        return _split_decimal(r)
    n = len(_split_decimal(r)[0])
    for p in range(n + 1, 18):
        c = "%.*e" % (p - 1, a)  # the closest p-digit decimal
        if lo < Fraction(c) < hi:
            return _split_decimal(c)
    return _split_decimal("%.16e" % a)  # pragma: no cover - 17 digits always fit


def _f32_next(f: float, toward: float) -> float:
    """The float32 next to f in the direction of `toward`."""
    if f == 0:
        bits = 1 if toward > 0 else 0x80000001
    else:
        bits = _U32.unpack(_F32.pack(f))[0]
        bits += 1 if (toward > f) == (f > 0) else -1
    return _F32.unpack(_U32.pack(bits))[0]


_FLT_MIN = 1.1754943508222875e-38


def _f32_round(s: str, x: float) -> float:
    """Nearest float32 to the decimal string s (x = float(s)); OverflowError when too big.

    Rounding decimal -> double -> float32 can be wrong when the double lands exactly halfway
    between two float32s; then decide with exact rational arithmetic (strtof semantics).
    """
    f = _F32.unpack(_F32.pack(x))[0]
    # A normal-range double is a float32 midpoint only if its low 29 mantissa bits are 100..0.
    if f != x and math.isfinite(f) and (
            (_U64.unpack(_F64.pack(x))[0] & 0x1FFFFFFF) == 0x10000000 or -_FLT_MIN < x < _FLT_MIN):
        g = _f32_next(f, x)
        if x + x == f + g:  # exact: float32 sums fit in a double
            exact = Fraction(s.strip())
            mid = Fraction(x)
            if exact > mid:
                f = max(f, g)
            elif exact < mid:
                f = min(f, g)
    return f


def _f32_on_boundary(s: str, x: float, a: float) -> bool:
    """Is the decimal s exactly halfway between float32 a and a neighbour? (PostgreSQL's Ryu,
    built without STRICTLY_SHORTEST, never prints such a boundary value.)"""
    for g in (_f32_next(a, math.inf), _f32_next(a, -math.inf)):
        if x + x == a + g and Fraction(s) == (Fraction(a) + Fraction(g)) / 2:
            return True
    return False


def _f4_shortest(a: float) -> tuple[str, int]:
    """Shortest decimal digits (and exponent of the first digit) that read back as float32 a > 0."""
    pow2 = (_U32.unpack(_F32.pack(a))[0] & 0x7FFFFF) == 0  # the only case with a lopsided interval
    for p in range(1, 10):
        s = "%.*e" % (p - 1, a)
        m, _, e = s.partition("e")
        exp = int(e) - (p - 1)
        mant = int(m.replace(".", ""))
        cands = [mant]
        if pow2:
            cands.append(mant + 1 if float(s) < a else mant - 1)
        for c in cands:
            cs = f"{c}e{exp}"
            try:
                x = float(cs)
                ok = c > 0 and _f32_round(cs, x) == a and not _f32_on_boundary(cs, x, a)
            except OverflowError:  # rounds past FLT_MAX
                ok = False
            if ok:
                ds = str(c)
                return ds.rstrip("0"), exp + len(ds) - 1
    raise AssertionError("unreachable: 9 digits always round-trip a float32")  # pragma: no cover


def _f4_text(v: float) -> bytes:
    f = _F32.unpack(_F32.pack(v))[0]  # struct.error for non-numbers -> coerce
    if f != f:
        return b"NaN"
    if f == INFINITY:
        return b"Infinity"
    if f == NEG_INFINITY:
        return b"-Infinity"
    if f == 0:
        return b"-0" if math.copysign(1.0, f) < 0 else b"0"
    digits, exp10 = _f4_shortest(-f if f < 0 else f)
    return _fmt_digits(f < 0, digits, exp10, 6).encode()


_FLOAT_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def _float_codec(display: str, width: int) -> Codec:
    st = _F64 if width == 8 else _F32
    pack, unpack = st.pack, st.unpack

    def parse(data) -> float:
        try:
            if b"_" in data:
                raise ValueError
            s = data.decode("ascii")
            x = float(s)
        except (ValueError, UnicodeDecodeError):
            raise _syntax(display, data) from None
        if math.isinf(x) or x != x:
            if s.strip().lower() in _FLOAT_WORDS:
                return x
            raise InvalidValue(f'"{s}" is out of range for type {display}', _RANGE)
        if width == 4:
            try:
                x = _f32_round(s, x)
            except OverflowError:
                raise InvalidValue(f'"{s}" is out of range for type {display}', _RANGE) from None
        if x == 0 and any(c in "123456789" for c in s.lower().partition("e")[0]):
            raise InvalidValue(f'"{s}" is out of range for type {display}', _RANGE)  # underflow
        return x

    def dec_bin(data):
        try:
            return unpack(data)[0]
        except struct.error:
            raise _bin_len_error(data, width) from None

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, bool):
            raise _bad_type(v, display)
        if isinstance(v, (int, float, Decimal)):
            try:
                x = float(v)
            except OverflowError:
                raise InvalidValue(f"value {_fmt(v)} is out of range for type {display}", _RANGE) from None
            if width == 4:
                try:
                    f = _F32.unpack(_F32.pack(x))[0]
                except OverflowError:
                    raise InvalidValue(f"value {_fmt(v)} is out of range for type {display}", _RANGE) from None
                if f == 0 and x != 0:
                    raise InvalidValue(f"value {_fmt(v)} is out of range for type {display}", _RANGE)
                x = f
            return x
        if isinstance(v, str):
            return _coerce_via_text(display, parse, v)
        raise _bad_type(v, display)

    nan = pack(math.nan)  # PostgreSQL's NaN (get_float8_nan/get_float4_nan); payloads are not kept

    def enc_bin(v):
        if v != v:
            return nan
        return pack(v)  # struct.error for non-numbers, OverflowError for float4 -> coerce

    enc_text = _f8_text if width == 8 else _f4_text

    return Codec(enc_text, parse, enc_bin, dec_bin, coerce, array_safe=True, name=display)


# --------------------------------------------------------------------------- numeric

_DEC_NAN = Decimal("NaN")
_DEC_INF = Decimal("Infinity")
_DEC_NINF = Decimal("-Infinity")
# numeric_send of the specials; the dscale field (0x20) is what PostgreSQL 15 really sends:
# NUMERIC_DSCALE() reads the special header as a short-format header.
_NUM_NAN_BIN = _NUMHDR.pack(0, 0, 0xC000, 0)
_NUM_PINF_BIN = _NUMHDR.pack(0, 0, 0xD000, 0x20)
_NUM_NINF_BIN = _NUMHDR.pack(0, 0, 0xF000, 0x20)
_NUM_WORDS = {"nan": _DEC_NAN, "infinity": _DEC_INF, "+infinity": _DEC_INF, "-infinity": _DEC_NINF,
              "inf": _DEC_INF, "+inf": _DEC_INF, "-inf": _DEC_NINF}
_NUMERIC_DSCALE_MAX = 0x3FFF
_NUMERIC_WEIGHT_MAX = 0x7FFF


def _numeric_text(d: Decimal) -> bytes:
    if d.__class__ is not Decimal:
        raise _NotCanonical
    if d.is_finite():
        s = format(d, "f")  # no exponent; as many fraction digits as the exponent says (= dscale)
        if s[0] == "-" and not d:
            s = s[1:]  # numeric has no negative zero
        return s.encode()
    if d.is_nan():
        return b"NaN"
    return b"-Infinity" if d.is_signed() else b"Infinity"


def _numeric_bin(d: Decimal) -> bytes:
    if d.__class__ is not Decimal:
        raise _NotCanonical
    if not d.is_finite():
        if d.is_nan():
            return _NUM_NAN_BIN
        return _NUM_NINF_BIN if d.is_signed() else _NUM_PINF_BIN
    ip, _, fp = format(d, "f").lstrip("-").partition(".")
    dscale = len(fp)
    fp += "0" * (-len(fp) & 3)  # base-10000 digits are aligned on the decimal point
    ip = "0" * (-len(ip) & 3) + ip
    ds = ip + fp
    groups = [int(ds[i:i + 4]) for i in range(0, len(ds), 4)]
    weight = len(ip) // 4 - 1
    start, end = 0, len(groups)
    while start < end and groups[start] == 0:  # PostgreSQL strips leading and trailing zero digits
        start += 1
        weight -= 1
    while end > start and groups[end - 1] == 0:
        end -= 1
    n = end - start
    if not n:
        return _NUMHDR.pack(0, 0, 0, dscale)
    sign = 0x4000 if d.is_signed() else 0
    return _NUMHDR.pack(n, weight, sign, dscale) + struct.pack(">%dH" % n, *groups[start:end])


def _numeric_canon(d: Decimal, show: Any = None) -> Decimal:
    """PostgreSQL's view of a Decimal: no positive exponent, no negative zero, one NaN; limits checked."""
    sign, digits, exp = d.as_tuple()
    if exp.__class__ is str:
        if exp == "F":
            return _DEC_NINF if sign else _DEC_INF
        if exp == "N":
            raise InvalidValue(f"value {_fmt(show if show is not None else d)} is not valid for type numeric (sNaN)")
        return _DEC_NAN
    if exp > 0:
        d = Decimal((sign, digits + (0,) * exp, 0))
        exp = 0
    if -exp > _NUMERIC_DSCALE_MAX or (d and d.adjusted() >= 4 * (_NUMERIC_WEIGHT_MAX + 1)):
        raise InvalidValue("value overflows numeric format", _RANGE)
    if sign and not d:
        d = d.copy_abs()
    return d


def _numeric_codec() -> Codec:
    def dec_text(data):
        try:
            s = data.decode("ascii")
            if "_" in s:
                raise ValueError
            d = Decimal(s)
        except (ValueError, InvalidOperation, UnicodeDecodeError):
            raise _syntax("numeric", data) from None
        if d.is_finite():
            if d.as_tuple().exponent > 0 or d.is_signed():
                return _numeric_canon(d)
            if d.as_tuple().exponent < -_NUMERIC_DSCALE_MAX or d.adjusted() >= 4 * (_NUMERIC_WEIGHT_MAX + 1):
                raise InvalidValue("value overflows numeric format", _RANGE)
            return d
        special = _NUM_WORDS.get(s.strip().lower())
        if special is None:
            raise _syntax("numeric", data)
        return special

    def dec_bin(data):
        try:
            ndigits, weight, sign, dscale = _NUMHDR.unpack_from(data)
            groups = struct.unpack_from(">%dH" % ndigits, data, 8)
        except struct.error:
            raise InvalidValue("insufficient data left in message", _PROTOCOL) from None
        if len(data) != 8 + 2 * ndigits:
            raise InvalidValue("incorrect binary data format", _BINARY)
        if sign == 0xC000:
            return _DEC_NAN
        if sign == 0xD000:
            return _DEC_INF
        if sign == 0xF000:
            return _DEC_NINF
        if sign not in (0, 0x4000):
            raise InvalidValue('invalid sign in external "numeric" value', _BINARY)
        if dscale & ~_NUMERIC_DSCALE_MAX:
            raise InvalidValue('invalid scale in external "numeric" value', _BINARY)
        for g in groups:
            if g >= 10000:
                raise InvalidValue('invalid digit in external "numeric" value', _BINARY)
        ds = ("%04d" * ndigits) % groups if ndigits else "0"
        exp10 = 4 * (weight - ndigits + 1) if ndigits else 0
        if exp10 > -dscale:
            ds += "0" * (exp10 + dscale)
        elif exp10 < -dscale:  # numeric_recv truncates digits the dscale hides
            ds = ds[: len(ds) - (-dscale - exp10)] or "0"
        neg = sign == 0x4000 and ds.strip("0") != ""
        return Decimal(f"{'-' if neg else ''}{ds}E-{dscale}")

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, bool):
            raise _bad_type(v, "numeric")
        if isinstance(v, Decimal):
            return _numeric_canon(v, v)
        if isinstance(v, int):
            return _numeric_canon(Decimal(v))
        if isinstance(v, float):
            if v != v:
                return _DEC_NAN
            if math.isinf(v):
                return _DEC_INF if v > 0 else _DEC_NINF
            return _numeric_canon(Decimal(repr(v)))  # float8 -> numeric uses the shortest digits
        if isinstance(v, str):
            return _coerce_via_text("numeric", dec_text, v)
        raise _bad_type(v, "numeric")

    return Codec(_numeric_text, dec_text, _numeric_bin, dec_bin, coerce, array_safe=True, name="numeric")


# --------------------------------------------------------------------------- text-like


def _bad_utf8(data: bytes, e: UnicodeDecodeError) -> InvalidValue:
    bad = " ".join("0x%02x" % b for b in data[e.start:max(e.end, e.start + 1)])
    return InvalidValue(f'invalid byte sequence for encoding "UTF8": {bad}', _ENCODING)


def _utf8_column(col: list) -> list:
    """bytes.decode over a list (one decode and split at C speed when no value holds a newline);
    raises on invalid UTF-8 (bulk paths then redo value by value for the exact error)."""
    out = b"\n".join(col).decode().split("\n")
    if len(out) != len(col):  # a value held a newline (or the list was empty)
        out = list(map(bytes.decode, col))
    return out


def _truncate_utf8(s: str, nbytes: int) -> str:
    b = s.encode()
    if len(b) <= nbytes:
        return s
    return b[:nbytes].decode("utf-8", "ignore")  # cut on a character boundary, like namein


def _text_codec(display: str, *, truncate: int | None = None, labels: frozenset | None = None,
                binary: bool = True) -> Codec:
    """text, varchar, bpchar, name (truncated to 63 bytes), unknown, cstring, xml, enums (labels)."""
    enc = str.encode  # TypeError for non-str -> coerce

    def dec_text(data):
        try:
            s = data.decode()
        except UnicodeDecodeError as e:
            raise _bad_utf8(data, e) from None
        if truncate is not None and len(data) > truncate:
            s = _truncate_utf8(s, truncate)
        if labels is not None and s not in labels:
            raise InvalidValue(f'invalid input value for enum {display}: "{s}"')
        return s

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, str):
            s = str(v)
        elif labels is None and isinstance(v, bool):
            s = "true" if v else "false"
        elif labels is None and isinstance(v, int):
            s = int.__repr__(v)
        elif labels is None and isinstance(v, float):
            s = _f8_text(v).decode()
        elif labels is None and isinstance(v, Decimal):
            s = _numeric_text(_numeric_canon(v)).decode()
        else:
            raise _bad_type(v, display)
        if "\x00" in s:
            raise InvalidValue(f"value {_fmt(s)} is not valid for type {display}: contains a NUL character",
                               _ENCODING)
        if truncate is not None:
            s = _truncate_utf8(s, truncate)
        if labels is not None and s not in labels:
            raise InvalidValue(f'invalid input value for enum {display}: "{s}"')
        return s

    if truncate is None and labels is None:
        # a C callable equal to dec_text on valid input (raises otherwise): bulk paths (COPY) use
        # it and redo a failing value with dec_text for the exact error
        dec_text.fast = bytes.decode  # type: ignore[attr-defined]
        dec_text.column = _utf8_column  # type: ignore[attr-defined]
    if binary:
        return Codec(enc, dec_text, enc, dec_text, coerce, name=display)
    return Codec(enc, dec_text, None, None, coerce, name=display)


def _char1_codec() -> Codec:
    """The 1-byte "char" type: '' is the zero byte; bytes >= 0x80 print as \\ooo."""

    def enc_text(v):
        if v.__class__ is not str or len(v) > 1:
            raise _NotCanonical
        if not v:
            return b""
        o = ord(v)
        if o < 0x80:
            return v.encode()
        if o < 0x100:
            return b"\\%03o" % o
        raise _NotCanonical

    def enc_bin(v):
        if v.__class__ is not str or len(v) > 1:
            raise _NotCanonical
        o = ord(v) if v else 0
        if o < 0x100:
            return bytes((o,))
        raise _NotCanonical

    def dec_text(data):
        if (len(data) == 4 and data[0] == 0x5C and all(0x30 <= c <= 0x37 for c in data[1:])):
            return chr(int(data[1:], 8) & 0xFF)
        return chr(data[0]) if data and data[0] else ""  # charin keeps the first byte only

    def dec_bin(data):
        if len(data) != 1:
            raise _bin_len_error(data, 1)
        return chr(data[0]) if data[0] else ""

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, str):
            if len(v) <= 1 and (not v or 0 < ord(v) < 0x100):
                return str(v)  # already a byte value
            return dec_text(v.encode())  # charin: the first byte of the UTF-8 text
        if isinstance(v, (bytes, bytearray)) and len(v) <= 1:
            return chr(v[0]) if v and v[0] else ""
        raise _bad_type(v, '"char"')

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, name='"char"')


# --------------------------------------------------------------------------- bytea

_HEXWS = b" \t\n\r"


def _bytea_text(v) -> bytes:
    return b"\\x" + binascii.hexlify(v)  # TypeError for str -> coerce


def _bytea_bin(v) -> bytes:
    if v.__class__ is bytes:
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise _NotCanonical


def _bytea_hex_slow(h: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(h)
    while i < n:
        c = h[i]
        if c in _HEXWS:
            i += 1
            continue
        if chr(c) not in "0123456789abcdefABCDEF":
            raise InvalidValue(f'invalid hexadecimal digit: "{chr(c)}"', _PARAM)
        if i + 1 >= n:
            raise InvalidValue("invalid hexadecimal data: odd number of digits", _PARAM)
        d = h[i + 1]
        if chr(d) not in "0123456789abcdefABCDEF":
            if d in _HEXWS:
                raise InvalidValue("invalid hexadecimal data: odd number of digits", _PARAM)
            raise InvalidValue(f'invalid hexadecimal digit: "{chr(d)}"', _PARAM)
        out.append(int(h[i:i + 2], 16))
        i += 2
    return bytes(out)


def _bytea_untext(data) -> bytes:
    if data[:2] == b"\\x":
        try:
            return binascii.unhexlify(data[2:])
        except (binascii.Error, ValueError):
            return _bytea_hex_slow(data[2:])
    if b"\\" not in data:
        return bytes(data)
    # escape format: \\ is a backslash, \ooo an octal byte
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c != 0x5C:
            out.append(c)
            i += 1
        elif data[i + 1:i + 2] == b"\\":
            out.append(0x5C)
            i += 2
        elif (i + 3 < n and 0x30 <= data[i + 1] <= 0x33 and 0x30 <= data[i + 2] <= 0x37
              and 0x30 <= data[i + 3] <= 0x37):
            out.append(int(data[i + 1:i + 4], 8))
            i += 4
        else:
            raise InvalidValue("invalid input syntax for type bytea", _SYNTAX)
    return bytes(out)


def _bytea_codec() -> Codec:
    def coerce(v):
        if v is None:
            return None
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        if isinstance(v, str):
            return _coerce_via_text("bytea", _bytea_untext, v)
        raise _bad_type(v, "bytea")

    return Codec(_bytea_text, _bytea_untext, _bytea_bin, bytes, coerce, name="bytea")


# --------------------------------------------------------------------------- date / time

_DT_RE = re.compile(
    r"""\s*(?:
        (?P<y>\d{4,})-(?P<m>\d{1,2})-(?P<d>\d{1,2})
      | (?P<m2>\d{1,2})/(?P<d2>\d{1,2})/(?P<y2>\d{4,})
      | (?P<y3>\d{4})(?P<m3>\d\d)(?P<d3>\d\d)
    )
    (?:(?:\s*T\s*|\s+)(?P<time>\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.\d*)?)?))?
    \s*(?P<tz>[zZ]\b|[+-]\d{1,2}(?::?\d\d(?::?\d\d)?)?|[A-Za-z][A-Za-z0-9_/+-]*)?
    (?:\s+(?P<era>BC|AD|bc|ad))?\s*$""",
    re.X,
)
_TIME_RE = re.compile(
    r"""\s*(?P<time>\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.\d*)?)?)
    \s*(?P<tz>[zZ]\b|[+-]\d{1,2}(?::?\d\d(?::?\d\d)?)?|[A-Za-z][A-Za-z0-9_/+-]*)?\s*$""",
    re.X,
)
_SPECIAL_WORDS = {"infinity": INFINITY, "+infinity": INFINITY, "-infinity": NEG_INFINITY}
_DATE_SPECIAL_TEXT = {INFINITY: b"infinity", NEG_INFINITY: b"-infinity"}
_DATE_SPECIAL_BIN = {INFINITY: _I32.pack(_INT32_MAX), NEG_INFINITY: _I32.pack(_INT32_MIN)}
_TS_SPECIAL_BIN = {INFINITY: _I64.pack(_INT64_MAX), NEG_INFINITY: _I64.pack(_INT64_MIN)}
_TZ_CACHE: dict[int, timezone] = {0: _UTC}


def _fixed_tz(seconds: int) -> timezone:
    tz = _TZ_CACHE.get(seconds)
    if tz is None:
        tz = _TZ_CACHE[seconds] = timezone(timedelta(seconds=seconds))
    return tz


def _time_us(s: str) -> int:
    """'H:MM[:SS[.frac]]' -> microseconds since midnight (fraction rounded like PostgreSQL's rint)."""
    parts = s.split(":")
    h, m = int(parts[0]), int(parts[1])
    sec, us = 0, 0
    if len(parts) > 2:
        sp, _, frac = parts[2].partition(".")
        sec = int(sp)
        if frac:
            us = round(float("0." + frac) * 1_000_000)
    if m > 59 or sec > 60 or h > 24 or (h == 24 and (m or sec or us)):
        raise ValueError("field out of range")
    return ((h * 60 + m) * 60 + sec) * 1_000_000 + us


def _parse_tz(tz: str, local: datetime | None = None) -> int:
    """A zone spec -> offset seconds east of UTC (named zones need the local datetime)."""
    if tz in ("z", "Z") or tz.upper() in ("UTC", "GMT", "UT", "ZULU"):
        return 0
    if tz[0] in "+-":
        body = tz[1:].replace(":", "")
        if len(body) <= 2:
            h, m, s = int(body), 0, 0
        elif len(body) in (3, 4):
            h, m, s = int(body[:-2]), int(body[-2:]), 0
        else:
            h, m, s = int(body[:-4]), int(body[-4:-2]), int(body[-2:])
        if h > 15 or m > 59 or s > 59:
            raise ValueError("time zone displacement out of range")
        off = (h * 60 + m) * 60 + s
        return -off if tz[0] == "-" else off
    try:
        from zoneinfo import ZoneInfo  # named zones are optional data, not I/O on the hot path

        zi = ZoneInfo(tz)
    except Exception:
        raise InvalidValue(f'time zone "{tz}" not recognized', _PARAM) from None
    probe = local or datetime(2000, 1, 1)
    off = zi.utcoffset(probe)
    return int(off.total_seconds())


def _parse_datetime(data, display: str, keep_tz: bool):
    """General text input for date/timestamp/timestamptz -> (datetime naive, offset|None) or ±inf."""
    s = _show(data)
    low = s.strip().lower()
    special = _SPECIAL_WORDS.get(low)
    if special is not None:
        return special, None
    if low == "epoch":
        return datetime(1970, 1, 1), 0
    m = _DT_RE.match(s)
    if not m:
        raise _syntax(display, data, _DT_FORMAT)
    if m["y"]:
        y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
    elif m["y2"]:
        y, mo, d = int(m["y2"]), int(m["m2"]), int(m["d2"])
    else:
        y, mo, d = int(m["y3"]), int(m["m3"]), int(m["d3"])
    tz = m["tz"]
    era = m["era"]
    if tz and tz.upper() in ("BC", "AD"):
        era, tz = tz, None
    bc = bool(era) and era.upper() == "BC"
    if (bc and y > 0) or y > 9999:
        return _far_datetime(m, s, display, 1 - y if bc else y, mo, d, tz)
    try:
        base = datetime(y, mo, d)
        if m["time"]:
            base += timedelta(microseconds=_time_us(m["time"]))
    except (ValueError, OverflowError):
        raise InvalidValue(f'date/time field value out of range: "{s}"', _DT_RANGE) from None
    off = None
    if tz:
        try:
            off = _parse_tz(tz, base)
        except ValueError:
            raise _syntax(display, data, _DT_FORMAT) from None
    return base, off


def _far_datetime(m, s: str, display: str, year: int, month: int, day: int, tz) -> tuple:
    """_parse_datetime's answer for a BC date or a year after 9999: (FarDateTime, offset)."""
    try:
        days = days_of(year, month, day)
        us = days * _DAY_US + (_time_us(m["time"]) if m["time"] else 0)
    except ValueError:
        raise InvalidValue(f'date/time field value out of range: "{s}"', _DT_RANGE) from None
    off = None
    if tz:
        try:
            off = _parse_tz(tz)
        except ValueError:
            raise _syntax(display, s.encode(), _DT_FORMAT) from None
    if display == "date":
        if not MIN_DAYS <= days <= MAX_DATE_DAYS:
            raise InvalidValue(f'date out of range: "{s}"', _DT_RANGE)
    elif not MIN_DAYS * _DAY_US <= us - (off or 0) * 1_000_000 <= MAX_TIMESTAMP_US:
        raise InvalidValue(f'timestamp out of range: "{s}"', _DT_RANGE)
    return FarDateTime(us, "timestamp"), off


def _far(v: FarDateTime, kind: str) -> FarDateTime:
    """A far value read as date/timestamp/timestamptz, within that type's range."""
    v = v.as_kind(kind)
    top = MAX_DATE_DAYS * _DAY_US if kind == "date" else MAX_TIMESTAMP_US
    if not MIN_DAYS * _DAY_US <= v.us <= top:
        raise InvalidValue(f"{'date' if kind == 'date' else 'timestamp'} out of range", _DT_RANGE)
    return v


def _date_text(d) -> bytes:
    if d.__class__ is date:
        return d.isoformat().encode()
    if d.__class__ is FarDateTime and d.kind == "date":
        return d.text().encode()
    return _DATE_SPECIAL_TEXT[d]  # KeyError for anything else -> coerce


def _date_bin(d) -> bytes:
    if d.__class__ is date:
        return _I32.pack(d.toordinal() - _PG_EPOCH_ORD)
    if d.__class__ is FarDateTime and d.kind == "date":
        return _I32.pack(d.us // _DAY_US)
    return _DATE_SPECIAL_BIN[d]


def _date_untext(data):
    if len(data) == 10:
        try:
            return date.fromisoformat(data.decode())
        except ValueError:
            pass
    v, _ = _parse_datetime(data, "date", False)
    if v.__class__ is FarDateTime:
        return v.as_kind("date")
    return v if v.__class__ is float else v.date()


def _date_unbin(data):
    try:
        n = _I32.unpack(data)[0]
    except struct.error:
        raise _bin_len_error(data, 4) from None
    if n == _INT32_MAX:
        return INFINITY
    if n == _INT32_MIN:
        return NEG_INFINITY
    try:
        return date.fromordinal(n + _PG_EPOCH_ORD)
    except (ValueError, OverflowError):
        if not MIN_DAYS <= n <= MAX_DATE_DAYS:
            raise InvalidValue("date out of range", _DT_RANGE) from None
        return FarDateTime(n * _DAY_US, "date")


def _date_codec() -> Codec:
    def coerce(v):
        if v is None:
            return None
        if isinstance(v, datetime):
            if v.time() != time(0) or v.tzinfo is not None:
                raise InvalidValue(f"value {_fmt(v)} is not valid for type date (it has a time of day)")
            return date(v.year, v.month, v.day)
        if isinstance(v, date):
            return date(v.year, v.month, v.day)
        if isinstance(v, float) and math.isinf(v):
            return v
        if isinstance(v, str):
            return _coerce_via_text("date", _date_untext, v)
        if v.__class__ is FarDateTime:
            return _far(v, "date")
        raise _bad_type(v, "date")

    return Codec(_date_text, _date_untext, _date_bin, _date_unbin, coerce, array_safe=True, name="date")


def _us_to_time(us: int, tzinfo=None, display: str = "time") -> time:
    if not 0 <= us < _DAY_US:
        if us == _DAY_US:
            raise InvalidValue(f"{display} 24:00:00 is not representable as a Python datetime.time", _DT_RANGE)
        raise InvalidValue(f"{display} out of range", _DT_RANGE)
    h, r = divmod(us, 3_600_000_000)
    m, r = divmod(r, 60_000_000)
    s, u = divmod(r, 1_000_000)
    return time(h, m, s, u, tzinfo)


def _time_to_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _tz_suffix(secs: int) -> str:
    """PostgreSQL's ISO zone: +02, -05:30, +05:30:15."""
    sign = "-" if secs < 0 else "+"
    h, r = divmod(abs(secs), 3600)
    m, s = divmod(r, 60)
    if s:
        return "%s%02d:%02d:%02d" % (sign, h, m, s)
    if m:
        return "%s%02d:%02d" % (sign, h, m)
    return "%s%02d" % (sign, h)


def _time_text(t) -> bytes:
    if t.__class__ is time and t.tzinfo is None:
        s = t.isoformat()
        return (s.rstrip("0") if t.microsecond else s).encode()
    raise _NotCanonical


def _time_bin(t) -> bytes:
    if t.__class__ is time and t.tzinfo is None:
        return _I64.pack(((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond)
    raise _NotCanonical


def _utc_offset_seconds(t: time) -> int:
    off = t.utcoffset()
    if off is None:
        raise _NotCanonical
    return off.days * 86400 + off.seconds


def _timetz_text(t) -> bytes:
    if t.__class__ is not time:
        raise _NotCanonical
    secs = _utc_offset_seconds(t)
    s = t.replace(tzinfo=None).isoformat()
    if t.microsecond:
        s = s.rstrip("0")
    return (s + _tz_suffix(secs)).encode()


def _timetz_bin(t) -> bytes:
    if t.__class__ is not time:
        raise _NotCanonical
    return _TIMETZ.pack(_time_to_us(t), -_utc_offset_seconds(t))


def _parse_time(data, display: str):
    """-> (microseconds since midnight, offset seconds or None)."""
    s = _show(data)
    m = _TIME_RE.match(s)
    if m is None:  # PostgreSQL also accepts a full timestamp and keeps the time part
        try:
            v, off = _parse_datetime(data, display, True)
        except InvalidValue:
            raise _syntax(display, data, _DT_FORMAT) from None
        if v.__class__ is float:
            raise _syntax(display, data, _DT_FORMAT)
        if v.__class__ is FarDateTime:
            return v.us % _DAY_US, off
        return _time_to_us(v.time()), off
    try:
        us = _time_us(m["time"])
    except ValueError:
        raise InvalidValue(f'date/time field value out of range: "{s}"', _DT_RANGE) from None
    off = None
    if m["tz"]:
        try:
            off = _parse_tz(m["tz"])
        except ValueError:
            raise _syntax(display, data, _DT_FORMAT) from None
    return us, off


def _time_untext(data):
    if len(data) <= 15:
        try:
            t = time.fromisoformat(data.decode())
            if t.tzinfo is None:
                return t
        except ValueError:
            pass
    us, _ = _parse_time(data, "time")  # a zone is ignored, as in PostgreSQL
    return _us_to_time(us, None, "time")


def _time_unbin(data):
    try:
        us = _I64.unpack(data)[0]
    except struct.error:
        raise _bin_len_error(data, 8) from None
    return _us_to_time(us)


def _timetz_untext(data):
    us, off = _parse_time(data, "time with time zone")
    return _us_to_time(us, _fixed_tz(off or 0), "time with time zone")


def _timetz_unbin(data):
    try:
        us, zone = _TIMETZ.unpack(data)
    except struct.error:
        raise _bin_len_error(data, 12) from None
    if not -57599 <= zone <= 57599:  # TZDISP_LIMIT: 15:59:59
        raise InvalidValue("time zone displacement out of range", _BINARY)
    return _us_to_time(us, _fixed_tz(-zone), "time with time zone")


def _time_codec(with_tz: bool) -> Codec:
    display = "time with time zone" if with_tz else "time without time zone"
    dec_text = _timetz_untext if with_tz else _time_untext

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, datetime):
            v = v.timetz() if with_tz else v.time()
        if isinstance(v, time):
            if not with_tz:
                return time(v.hour, v.minute, v.second, v.microsecond)
            off = v.utcoffset() if v.tzinfo is not None else timedelta(0)
            if off is None:
                raise InvalidValue(f"value {_fmt(v)} is not valid for type {display}: "
                                   "its tzinfo has no fixed UTC offset")
            secs = off.days * 86400 + off.seconds
            return time(v.hour, v.minute, v.second, v.microsecond, _fixed_tz(secs))
        if isinstance(v, str):
            return _coerce_via_text(display, dec_text, v)
        raise _bad_type(v, display)

    if with_tz:
        return Codec(_timetz_text, _timetz_untext, _timetz_bin, _timetz_unbin, coerce, name=display)
    return Codec(_time_text, _time_untext, _time_bin, _time_unbin, coerce, array_safe=True, name=display)


def _iso_fraction_ok(s: str) -> bool:
    """fromisoformat truncates fractions beyond 6 digits; PostgreSQL rounds them."""
    dot = s.find(".")
    if dot < 0:
        return True
    j = dot + 1
    n = len(s)
    while j < n and s[j].isdigit():
        j += 1
    return j - dot - 1 <= 6


_DAY_TEXT: dict = {}  # toordinal() -> b"YYYY-MM-DD": isoformat() costs ~5x a cached day + %-format


def _day_text(dt) -> bytes:
    key = dt.toordinal()
    day = _DAY_TEXT.get(key)
    if day is None:
        if len(_DAY_TEXT) >= 8192:  # bounded: a stream of scattered dates must not grow it forever
            _DAY_TEXT.clear()
        day = _DAY_TEXT[key] = b"%04d-%02d-%02d" % (dt.year, dt.month, dt.day)
    return day


def _clock_text(dt, suffix: bytes) -> bytes:
    """The day, time and zone suffix; a fraction as PostgreSQL prints it (trailing zeros dropped)."""
    us = dt.microsecond
    if us:
        return b"%s %02d:%02d:%02d%s%s" % (_day_text(dt), dt.hour, dt.minute, dt.second,
                                           (b".%06d" % us).rstrip(b"0"), suffix)
    return b"%s %02d:%02d:%02d%s" % (_day_text(dt), dt.hour, dt.minute, dt.second, suffix)


# whole seconds (the usual case) are glued from cached pieces: ~3x faster than %-formatting
_HH_MM = tuple(b" %02d:%02d:" % divmod(i, 60) for i in range(24 * 60))  # minute of the day -> b" HH:MM:"
_SS = tuple(b"%02d" % i for i in range(60))
_SS_UTC = tuple(b"%02d+00" % i for i in range(60))


def _ts_text(dt) -> bytes:
    if dt.__class__ is datetime and dt.tzinfo is None:
        if dt.microsecond:
            return _clock_text(dt, b"")
        return (_DAY_TEXT.get(dt.toordinal()) or _day_text(dt)) + _HH_MM[dt.hour * 60 + dt.minute] + _SS[dt.second]
    if dt.__class__ is FarDateTime and dt.kind == "timestamp":
        return dt.text().encode()
    return _DATE_SPECIAL_TEXT[dt]  # KeyError (aware, date, str...) -> coerce


def _tstz_text(dt) -> bytes:
    if dt.__class__ is datetime:
        tz = dt.tzinfo
        if tz is not _UTC:
            if tz is None:
                raise _NotCanonical  # coerce: naive means UTC
            dt = dt.astimezone(_UTC)
        if dt.microsecond:
            return _clock_text(dt, b"+00")
        return ((_DAY_TEXT.get(dt.toordinal()) or _day_text(dt)) + _HH_MM[dt.hour * 60 + dt.minute]
                + _SS_UTC[dt.second])
    if dt.__class__ is FarDateTime and dt.kind == "timestamptz":
        return dt.text().encode()
    return _DATE_SPECIAL_TEXT[dt]


_ONLY_INT = {int}
_ONLY_DATETIME = {datetime}
_MICROSECOND = attrgetter("microsecond")


def _whole_seconds_column(col, tz, seconds: tuple) -> list | None:
    """_ts_text/_tstz_text over a column (a batch of rows) of datetimes whose tzinfo is `tz` and
    that have no fraction, checked at C level (one loop, no call per value); None otherwise."""
    if set(map(type, col)) != _ONLY_DATETIME or set(map(attrgetter("tzinfo"), col)) != {tz} \
            or any(map(_MICROSECOND, col)):
        return None
    day, hh_mm = _DAY_TEXT.get, _HH_MM
    return [(day(v.toordinal()) or _day_text(v)) + hh_mm[v.hour * 60 + v.minute] + seconds[v.second] for v in col]


_ts_text.column = lambda col: _whole_seconds_column(col, None, _SS)  # type: ignore[attr-defined]
_tstz_text.column = lambda col: _whole_seconds_column(col, _UTC, _SS_UTC)  # type: ignore[attr-defined]


def _ts_bin(dt) -> bytes:
    try:
        return _I64.pack((dt - _EPOCH_TS) // _US)  # TypeError for aware/date/inf
    except TypeError:
        if dt.__class__ is FarDateTime and dt.kind == "timestamp":
            return _I64.pack(dt.us)
        return _TS_SPECIAL_BIN[dt]


def _tstz_bin(dt) -> bytes:
    try:
        return _I64.pack((dt - _EPOCH_TSTZ) // _US)  # TypeError for naive/date/inf
    except TypeError:
        if dt.__class__ is FarDateTime and dt.kind == "timestamptz":
            return _I64.pack(dt.us)
        return _TS_SPECIAL_BIN[dt]


def _ts_untext(data):
    try:
        s = data.decode()
        if "." not in s or _iso_fraction_ok(s):
            dt = datetime.fromisoformat(s)
            return dt.replace(tzinfo=None) if dt.tzinfo is not None else dt  # zone ignored, like PG
    except ValueError:
        pass
    v, _ = _parse_datetime(data, "timestamp", False)
    return v


def _to_utc(dt: datetime) -> datetime:
    off = dt.utcoffset()
    if off:
        return (dt.replace(tzinfo=None) - off).replace(tzinfo=_UTC)
    return dt if dt.tzinfo is _UTC else dt.replace(tzinfo=_UTC)


def _tstz_untext(data):
    try:
        s = data.decode()
        if "." not in s or _iso_fraction_ok(s):
            dt = datetime.fromisoformat(s)
            tz = dt.tzinfo
            if tz is _UTC:  # PostgreSQL's own output ('+00') comes back as the utc singleton
                return dt
            if tz is None:
                return dt.replace(tzinfo=_UTC)  # session TimeZone is UTC
            return _to_utc(dt)
    except (ValueError, OverflowError):
        pass
    v, off = _parse_datetime(data, "timestamp with time zone", True)
    if v.__class__ is float:
        return v
    if v.__class__ is FarDateTime:
        return FarDateTime(v.us - (off or 0) * 1_000_000, "timestamptz")
    try:
        return (v - timedelta(seconds=off or 0)).replace(tzinfo=_UTC)
    except OverflowError:
        raise InvalidValue(f'timestamp out of range: "{_show(data)}"', _DT_RANGE) from None


def timestamptz_in_zone(data, zone):
    """timestamptz text input as PostgreSQL reads it in a session whose TimeZone is `zone` (a
    tzinfo): a value written without a zone is local time there; one with a zone is that instant."""
    v, off = _parse_datetime(data, "timestamp with time zone", True)
    if off is not None or v.__class__ is float:
        return _tstz_untext(data)
    if v.__class__ is FarDateTime:
        local = v.us
        secs, _ = FarDateTime(local, "timestamptz").zone_at(zone)
        secs, _ = FarDateTime(local - secs * 1_000_000, "timestamptz").zone_at(zone)
        return _far(FarDateTime(local - secs * 1_000_000, "timestamptz"), "timestamptz")
    try:
        return _to_utc(v.replace(tzinfo=zone))
    except OverflowError:
        raise InvalidValue(f'timestamp out of range: "{_show(data)}"', _DT_RANGE) from None


def _ts_unbin_factory(epoch: datetime):
    kind = "timestamp" if epoch.tzinfo is None else "timestamptz"
    def dec(data):
        try:
            n = _I64.unpack(data)[0]
        except struct.error:
            raise _bin_len_error(data, 8) from None
        try:
            return epoch + timedelta(0, 0, n)  # the infinities overflow: checked only then
        except OverflowError:
            if n == _INT64_MAX:
                return INFINITY
            if n == _INT64_MIN:
                return NEG_INFINITY
            if not MIN_DAYS * _DAY_US <= n <= MAX_TIMESTAMP_US:
                raise InvalidValue("timestamp out of range", _DT_RANGE) from None
            return FarDateTime(n, kind)

    def from_micros(col):
        # bulk paths: dec over the unpacked int64 microseconds of a column at C speed; OverflowError
        # (infinities, out of range) makes the caller redo it value by value
        return list(map(epoch.__add__, map(timedelta, repeat(0), repeat(0), col)))

    # bulk binary paths: (struct code, column converter, the int range where it cannot fail: such a
    # column may be converted later, when the rows are read)
    dec.unpack = ("q", from_micros,  # type: ignore[attr-defined]
                  ((datetime.min.replace(tzinfo=epoch.tzinfo) - epoch) // _US,
                   (datetime.max.replace(tzinfo=epoch.tzinfo) - epoch) // _US))
    return dec


_ISO_LONG_FRACTION = re.compile(r"\.[0-9]{7}", re.ASCII).search
_TZINFO = attrgetter("tzinfo")


def _ts_untext_columns(col: list, with_tz: bool) -> list:
    """_ts_untext / _tstz_untext over a list: one decode and split, fromisoformat mapped at C speed;
    raises when unsure (non-ASCII, a fraction fromisoformat would truncate, a parse error): the
    caller then redoes the values one by one."""
    s = b"\n".join(col).decode()
    if not col or not s.isascii() or ("." in s and _ISO_LONG_FRACTION(s)):
        raise ValueError("not for the bulk path")
    strs = s.split("\n")
    if len(strs) != len(col):
        raise ValueError("a value held a newline")
    vals = list(map(datetime.fromisoformat, strs))
    zones = set(map(_TZINFO, vals))
    if with_tz:
        if zones == {_UTC}:
            return vals
        return [dt if dt.tzinfo is _UTC else dt.replace(tzinfo=_UTC) if dt.tzinfo is None else _to_utc(dt)
                for dt in vals]
    if zones == {None}:
        return vals
    return [dt.replace(tzinfo=None) if dt.tzinfo is not None else dt for dt in vals]


def _timestamp_codec(with_tz: bool) -> Codec:
    display = "timestamp with time zone" if with_tz else "timestamp without time zone"
    dec_text = _tstz_untext if with_tz else _ts_untext
    dec_text.column = partial(_ts_untext_columns, with_tz=with_tz)  # type: ignore[attr-defined]

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, datetime):
            if with_tz:
                if v.tzinfo is None or v.utcoffset() is None:
                    v = v.replace(tzinfo=_UTC)  # naive means the session zone, UTC
                try:
                    v = _to_utc(v)
                except OverflowError:
                    raise InvalidValue(f"value {_fmt(v)} is out of range for type {display}", _DT_RANGE) from None
                return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, _UTC)
            if v.tzinfo is not None and v.utcoffset() is not None:
                v = _to_utc(v)  # timestamptz -> timestamp: local time in UTC
            return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)
        if isinstance(v, date):
            return datetime(v.year, v.month, v.day, tzinfo=_UTC if with_tz else None)
        if isinstance(v, float) and math.isinf(v):
            return v
        if isinstance(v, str):
            return _coerce_via_text(display, dec_text, v)
        if v.__class__ is FarDateTime:
            return _far(v, "timestamptz" if with_tz else "timestamp")
        raise _bad_type(v, display)

    if with_tz:
        return Codec(_tstz_text, _tstz_untext, _tstz_bin, _ts_unbin_factory(_EPOCH_TSTZ), coerce, name=display)
    return Codec(_ts_text, _ts_untext, _ts_bin, _ts_unbin_factory(_EPOCH_TS), coerce, name=display)


# --------------------------------------------------------------------------- interval


@dataclass(frozen=True)
class Interval:
    """An exact PostgreSQL interval: months, days and microseconds are separate fields.

    decode_* return a plain ``timedelta`` when months == 0 (exact), otherwise an Interval.
    ``to_timedelta()`` counts a month as 30 days, as PostgreSQL does when it compares intervals.
    """

    months: int = 0
    days: int = 0
    microseconds: int = 0

    def to_timedelta(self) -> timedelta:
        return timedelta(days=self.days + 30 * self.months, microseconds=self.microseconds)

    @classmethod
    def from_timedelta(cls, td: timedelta) -> "Interval":
        days, us = _td_split(td)
        return cls(0, days, us)

    def __str__(self) -> str:
        return _interval_str(self.months, self.days, self.microseconds)


def _td_split(td: timedelta) -> tuple[int, int]:
    """timedelta -> (days, microseconds) with one sign, as PostgreSQL would store '-1 day -01:00'."""
    if td.days >= 0:
        return td.days, td.seconds * 1_000_000 + td.microseconds
    td = -td
    return -td.days, -(td.seconds * 1_000_000 + td.microseconds)


def _interval_str(months: int, days: int, us: int) -> str:
    """EncodeInterval for IntervalStyle=postgres."""
    parts = []
    is_before = False
    year = int(months / 12) if months >= 0 else -((-months) // 12)
    mon = months - year * 12
    for value, unit in ((year, "year"), (mon, "mon"), (days, "day")):
        if value:
            parts.append("%s%d %s%s" % ("+" if is_before and value > 0 else "", value, unit,
                                        "" if value == 1 else "s"))
            is_before = value < 0  # each non-zero field sets is_before for the next one only
    if not parts or us:
        a = -us if us < 0 else us
        h, r = divmod(a, 3_600_000_000)
        m, r = divmod(r, 60_000_000)
        s, f = divmod(r, 1_000_000)
        t = "%s%02d:%02d:%02d" % ("-" if us < 0 else ("+" if is_before else ""), h, m, s)
        if f:
            t += ("." + "%06d" % f).rstrip("0")
        parts.append(t)
    return " ".join(parts)


def _interval_fields(v) -> tuple[int, int, int]:
    if v.__class__ is timedelta:
        d, us = _td_split(v)
        return 0, d, us
    if v.__class__ is Interval:
        return v.months, v.days, v.microseconds
    raise _NotCanonical


def _interval_text(v) -> bytes:
    m, d, us = _interval_fields(v)
    return _interval_str(m, d, us).encode()


def _interval_bin(v) -> bytes:
    m, d, us = _interval_fields(v)
    return _INTERVAL.pack(us, d, m)  # struct.error when out of int32/int64 -> coerce -> range error


def _mk_interval(months: int, days: int, us: int):
    """timedelta when that loses nothing (re-encodes to the same fields), else an exact Interval."""
    if (not months and -_DAY_US < us < _DAY_US and -999999999 < days < 999999999
            and (not days or not us or (days > 0) == (us > 0))):
        return timedelta(days=days, microseconds=us)
    return Interval(months, days, us)


_IV_UNITS: dict[str, tuple[str, int]] = {}
for _names, _unit in (
    (("microsecond", "microseconds", "us", "usec", "usecs", "useconds", "usecond"), ("us", 1)),
    (("millisecond", "milliseconds", "ms", "msec", "msecs", "mseconds", "msecond"), ("us", 1_000)),
    (("second", "seconds", "s", "sec", "secs"), ("us", 1_000_000)),
    (("minute", "minutes", "m", "min", "mins"), ("us", 60_000_000)),
    (("hour", "hours", "h", "hr", "hrs"), ("us", 3_600_000_000)),
    (("day", "days", "d"), ("d", 1)),
    (("week", "weeks", "w"), ("d", 7)),
    (("month", "months", "mon", "mons"), ("m", 1)),
    (("year", "years", "y", "yr", "yrs"), ("m", 12)),
    (("decade", "decades", "dec", "decs"), ("m", 120)),
    (("century", "centuries", "c", "cent"), ("m", 1200)),
    (("millennium", "millennia", "millenniums", "mil", "mils"), ("m", 12000)),
):
    for _n in _names:
        _IV_UNITS[_n] = _unit

_IV_TOKEN = re.compile(
    r"""\s*(?:
        (?P<time>[+-]?\d+:\d+(?::\d+)?(?:\.\d*)?)
      | (?P<ym>[+-]?\d+-\d+)
      | (?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))
      | (?P<word>[a-z]+)
      | (?P<at>@)
    )""",
    re.X,
)
_ISO_IV = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))([ymwdhs])")


def _rint(x: Decimal) -> int:
    return int(x.to_integral_value(ROUND_HALF_EVEN))


def _iv_apply(val: Decimal, unit: tuple[str, int]) -> tuple[int, int, int]:
    kind, mult = unit
    if kind == "us":
        return 0, 0, _rint(val * mult)
    ip = int(val)  # truncates toward zero, like PostgreSQL's modf
    frac = val - ip
    if kind == "d":  # days/weeks: the fraction spills into time
        total = frac * mult
        extra = int(total)
        return 0, ip * mult + extra, _rint((total - extra) * _DAY_US)
    if mult == 1:  # months: the fraction spills into 30-day days, then time
        fdays = frac * 30
        idays = int(fdays)
        return ip, idays, _rint((fdays - idays) * _DAY_US)
    return ip * mult + _rint(frac * mult), 0, 0  # years and up: round to whole months


def _time_token_us(tok: str) -> int:
    neg = tok[0] == "-"
    tok = tok.lstrip("+-")
    parts = tok.split(":")
    if len(parts) == 2 and "." in parts[1]:  # 'MM:SS.f'
        mi, sec = parts
        us = int(mi) * 60_000_000 + _rint(Decimal(sec) * 1_000_000)
    else:
        h, mi = int(parts[0]), int(parts[1])
        sec = Decimal(parts[2]) if len(parts) > 2 else Decimal(0)
        if mi > 59 or sec >= 60:
            raise ValueError("field out of range")
        us = (h * 60 + mi) * 60_000_000 + _rint(sec * 1_000_000)
    return -us if neg else us


def _parse_interval(s: str) -> tuple[int, int, int]:
    t = s.strip().lower()
    if not t:
        raise ValueError("empty")
    months = days = us = 0
    if t[0] == "p":  # ISO 8601 with designators: P1Y2M3DT4H5M6S
        body = t[1:]
        date_part, _, time_part = body.partition("t")
        for part, is_time in ((date_part, False), (time_part, True)):
            pos = 0
            while pos < len(part):
                m = _ISO_IV.match(part, pos)
                if not m:
                    raise ValueError("bad ISO interval")
                pos = m.end()
                val, d = Decimal(m[1]), m[2]
                if is_time:
                    unit = {"h": "hour", "m": "minute", "s": "second"}.get(d)
                else:
                    unit = {"y": "year", "m": "month", "w": "week", "d": "day"}.get(d)
                if unit is None:
                    raise ValueError("bad ISO unit")
                dm, dd, du = _iv_apply(val, _IV_UNITS[unit])
                months, days, us = months + dm, days + dd, us + du
        if not body:
            raise ValueError("bad ISO interval")
        return months, days, us
    pos, n = 0, len(t)
    pending: Decimal | None = None
    ago = False
    seen = False
    while pos < n:
        m = _IV_TOKEN.match(t, pos)
        if not m or m.end() == pos or ago:
            if t[pos:].strip() == "":
                break
            raise ValueError("bad token")
        pos = m.end()
        if m["time"]:
            if pending is not None:  # '1 02:03:04': a bare number before a time is days
                if pending != int(pending):
                    raise ValueError("fractional days before time")
                days += int(pending)
                pending = None
            us += _time_token_us(m["time"])
            seen = True
        elif m["ym"]:
            tok = m["ym"]
            neg = tok[0] == "-"
            y, _, mo = tok.lstrip("+-").partition("-")
            total = int(y) * 12 + int(mo)
            months += -total if neg else total
            seen = True
        elif m["num"]:
            if pending is not None:
                raise ValueError("two numbers in a row")
            pending = Decimal(m["num"])
        elif m["word"]:
            w = m["word"]
            if w == "ago":
                ago = True
                continue
            unit = _IV_UNITS.get(w)
            if unit is None or pending is None:
                raise ValueError("bad unit")
            dm, dd, du = _iv_apply(pending, unit)
            months, days, us = months + dm, days + dd, us + du
            pending = None
            seen = True
        # '@' is decoration
    if pending is not None:  # a lone number is seconds
        us += _rint(pending * 1_000_000)
        seen = True
    if not seen:
        raise ValueError("nothing")
    if ago:
        months, days, us = -months, -days, -us
    return months, days, us


def _interval_untext(data):
    s = _show(data)
    try:
        m, d, us = _parse_interval(s)
    except (ValueError, ArithmeticError):
        raise _syntax("interval", data, _DT_FORMAT) from None
    if not (_INT32_MIN <= m <= _INT32_MAX and _INT32_MIN <= d <= _INT32_MAX and _INT64_MIN <= us <= _INT64_MAX):
        raise InvalidValue(f'interval out of range: "{s}"', _DT_RANGE)
    return _mk_interval(m, d, us)


def _interval_unbin(data):
    try:
        us, d, m = _INTERVAL.unpack(data)
    except struct.error:
        raise _bin_len_error(data, 16) from None
    return _mk_interval(m, d, us)


def _interval_codec() -> Codec:
    def coerce(v):
        if v is None:
            return None
        if isinstance(v, timedelta):
            d, us = _td_split(v)
            return timedelta(days=d, microseconds=us)
        if isinstance(v, Interval):
            if not (_INT32_MIN <= v.months <= _INT32_MAX and _INT32_MIN <= v.days <= _INT32_MAX
                    and _INT64_MIN <= v.microseconds <= _INT64_MAX):
                raise InvalidValue(f"value {_fmt(v)} is out of range for type interval", _DT_RANGE)
            return _mk_interval(v.months, v.days, v.microseconds)
        if isinstance(v, str):
            return _coerce_via_text("interval", _interval_untext, v)
        raise _bad_type(v, "interval")

    return Codec(_interval_text, _interval_untext, _interval_bin, _interval_unbin, coerce, name="interval")


# --------------------------------------------------------------------------- uuid

_HEX = frozenset("0123456789abcdefABCDEF")


_HEXDIGITS = b"0123456789abcdefABCDEF"


def _uuid_untext(data) -> UUID:
    if (len(data) == 36 and data[8] == data[13] == data[18] == data[23] == 0x2D
            and not data.translate(None, _HEXDIGITS + b"-")):  # the canonical form, checked in C
        return UUID(data.decode())
    s = _show(data)
    t = s[1:-1] if s[:1] == "{" and s[-1:] == "}" else s
    h = t.replace("-", "")
    # PostgreSQL: 32 hex digits, optionally in braces, a hyphen allowed after any group of 4
    ok = len(h) == 32 and all(c in _HEX for c in h) and not t.startswith("-") and not t.endswith("-") \
        and "--" not in t
    if ok and "-" in t:
        pos = 0
        for chunk in t.split("-")[:-1]:
            pos += len(chunk)
            if pos % 4:
                ok = False
                break
    if not ok:
        raise _syntax("uuid", data)
    return UUID(hex=h)


def _uuid_unbin(data) -> UUID:
    if len(data) != 16:
        raise _bin_len_error(data, 16)
    return UUID(bytes=bytes(data))


def _uuid_codec() -> Codec:
    def enc_text(u):
        return UUID.__str__(u).encode()  # TypeError for str -> coerce

    def enc_bin(u):
        return u.bytes  # AttributeError for str -> coerce

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, UUID):
            return v
        if isinstance(v, str):
            return _coerce_via_text("uuid", _uuid_untext, v)
        if isinstance(v, (bytes, bytearray)) and len(v) == 16:
            return UUID(bytes=bytes(v))
        raise _bad_type(v, "uuid")

    return Codec(enc_text, _uuid_untext, enc_bin, _uuid_unbin, coerce, array_safe=True, name="uuid")


# --------------------------------------------------------------------------- json / jsonb

_json_str = json.encoder.encode_basestring  # same escapes as PostgreSQL's escape_json (lowercase \u00xx)


def _json_number(v: Any, jsonb: bool) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidValue(f"value {_fmt(v)} is not valid JSON (NaN and Infinity are not JSON numbers)")
        if not jsonb:
            return float.__repr__(v)
        return _numeric_text(_numeric_canon(Decimal(repr(v)))).decode()
    if not v.is_finite():
        raise InvalidValue(f"value {_fmt(v)} is not valid JSON (NaN and Infinity are not JSON numbers)")
    return _numeric_text(_numeric_canon(v)).decode()


def _jsonb_key(k: str) -> tuple[int, bytes]:
    b = k.encode()
    return len(b), b  # JSONB orders object keys by length, then bytes


def _json_key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, (int, float)):
        return json.dumps(k)
    raise TypeError(f"JSON object keys must be str, not {type(k).__name__}")


def _json_write(v: Any, out: list, jsonb: bool) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        if jsonb and "\x00" in v:
            raise InvalidValue("unsupported Unicode escape sequence", "22P05", "\\u0000 cannot be converted to text.")
        out.append(_json_str(v))
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, (float, Decimal)):
        out.append(_json_number(v, jsonb))
    elif isinstance(v, dict):
        items = [(_json_key(k), x) for k, x in v.items()]
        if jsonb:
            items = sorted(dict(items).items(), key=lambda kv: _jsonb_key(kv[0]))
        out.append("{")
        first = True
        for k, x in items:
            if not first:
                out.append(", " if jsonb else ",")
            first = False
            out.append(_json_str(k))
            out.append(": " if jsonb else ":")
            _json_write(x, out, jsonb)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        first = True
        for x in v:
            if not first:
                out.append(", " if jsonb else ",")
            first = False
            _json_write(x, out, jsonb)
        out.append("]")
    else:
        raise TypeError(f"value of type {type(v).__name__} is not JSON serializable")


def _json_dump(v: Any, jsonb: bool) -> bytes:
    out: list[str] = []
    _json_write(v, out, jsonb)
    return "".join(out).encode()


def _json_float(s: str):
    f = float(s)
    return f if math.isfinite(f) else Decimal(s)  # 1e400 is a valid JSON (numeric) number


def _json_reject_constant(s: str):
    raise ValueError(f'Token "{s}" is invalid.')


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_nul(x) for x in v)
    return False


def _json_codec(jsonb: bool) -> Codec:
    """json / jsonb. A top-level Python str is JSON *text* (the driver convention: psycopg, asyncpg):
    encode validates it (json: emitted verbatim, as PostgreSQL keeps json text; jsonb: normalized),
    and a document that is a JSON string decodes to its JSON text ('"x"'), so that round trips hold.
    Everything else decodes to Python objects (nested strings are plain str)."""
    display = "jsonb" if jsonb else "json"

    def parse(s: str, data: Any):
        try:
            v = json.loads(s, parse_float=_json_float, parse_constant=_json_reject_constant)
        except (ValueError, RecursionError) as e:
            raise InvalidValue("invalid input syntax for type json", _SYNTAX,
                               getattr(e, "msg", str(e))) from None
        if jsonb and "\\u0000" in s and _has_nul(v):
            raise InvalidValue("unsupported Unicode escape sequence", "22P05", "\\u0000 cannot be converted to text.")
        return v

    def dec_text(data):
        try:
            s = data.decode()
        except UnicodeDecodeError as e:
            raise _bad_utf8(data, e) from None
        v = parse(s, data)
        if isinstance(v, str):
            return _json_dump(v, True).decode() if jsonb else s
        return v

    def enc_text(v):
        if isinstance(v, str):
            parsed = parse(v, v)
            if not jsonb:
                return v.encode()
            v = parsed
        try:
            return _json_dump(v, jsonb)
        except TypeError:
            raise _NotCanonical from None

    if jsonb:
        def enc_bin(v):
            return b"\x01" + enc_text(v)  # jsonb_send: version byte 1, then the text

        def dec_bin(data):
            if not data:
                raise InvalidValue("insufficient data left in message", _PROTOCOL)
            if data[0] != 1:
                raise InvalidValue(f"unsupported jsonb version number {data[0]}", _BINARY)
            return dec_text(data[1:])
    else:
        enc_bin, dec_bin = enc_text, dec_text  # json_send is the text

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, str):
            try:
                parsed = parse(v, v)
            except InvalidValue as e:
                raise InvalidValue(f"value {_fmt(v)} is not valid for type {display}: {e}", e.sqlstate,
                                   e.detail) from None
            if not jsonb:
                return str(v)  # json keeps its text
            return _json_dump(parsed, True).decode() if isinstance(parsed, str) else parsed
        try:
            _json_dump(v, jsonb)
        except TypeError as e:
            raise TypeError(f"value {_fmt(v)} is not valid for type {display}: {e}") from None
        except InvalidValue as e:
            raise InvalidValue(f"value {_fmt(v)} is not valid for type {display}: {e}", e.sqlstate) from None
        return v

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, list_is_scalar=True, name=display)


# --------------------------------------------------------------------------- inet / cidr

_PGSQL_AF_INET, _PGSQL_AF_INET6 = 2, 3
_IP_TYPES_INET = (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface)
_IP_TYPES_CIDR = (IPv4Network, IPv6Network)


def _ipv6_text(packed: bytes) -> str:
    """PostgreSQL's inet_net_ntop: Python's compression plus the IPv4-embedded forms."""
    w = struct.unpack(">8H", packed)
    if w[0] == w[1] == w[2] == w[3] == w[4] == 0 and ((w[5] == 0 and w[6] != 0) or w[5] == 0xFFFF):
        v4 = "%d.%d.%d.%d" % tuple(packed[12:])
        return ("::" if w[5] == 0 else "::ffff:") + v4
    return IPv6Address(packed).compressed


def _ip_text(addr, bits: int, maxbits: int, always_bits: bool) -> str:
    s = str(addr) if addr.version == 4 else _ipv6_text(addr.packed)
    if always_bits or bits != maxbits:
        s += "/%d" % bits
    return s


def _inet_parts(v) -> tuple[Any, int]:
    cls = v.__class__
    if cls is IPv4Address or cls is IPv6Address:
        return v, v.max_prefixlen
    if cls is IPv4Interface or cls is IPv6Interface:
        return v.ip, v.network.prefixlen
    raise _NotCanonical


def _cidr_parts(v) -> tuple[Any, int]:
    cls = v.__class__
    if cls is IPv4Network or cls is IPv6Network:
        return v.network_address, v.prefixlen
    raise _NotCanonical


def _parse_inet(data, is_cidr: bool):
    display = "cidr" if is_cidr else "inet"
    s = _show(data)
    addr_s, slash, bits_s = s.partition("/")
    try:
        if slash and not (bits_s.isdigit() and bits_s.isascii()):
            raise ValueError
        if ":" in addr_s:
            if "%" in addr_s:
                raise ValueError
            addr = IPv6Address(addr_s)
            maxbits = 128
            bits = int(bits_s) if slash else 128
        else:
            octs = addr_s.split(".")
            if not 1 <= len(octs) <= 4 or not all(o.isdigit() and o.isascii() and int(o) <= 255 for o in octs):
                raise ValueError
            if len(octs) < 4 and not (slash or is_cidr):
                raise ValueError  # inet needs all four octets unless a mask is given
            vals = [int(o) for o in octs] + [0] * (4 - len(octs))
            addr = IPv4Address(bytes(vals))
            maxbits = 32
            if slash:
                bits = int(bits_s)
            elif is_cidr:  # classful default, widened to cover the octets written
                a = vals[0]
                bits = 32 if a >= 240 else 8 if a >= 224 else 24 if a >= 192 else 16 if a >= 128 else 8
                bits = max(bits, 8 * len(octs))
                if bits == 8 and a == 224:
                    bits = 4
            else:
                bits = 32
        if bits > maxbits:
            raise ValueError
    except ValueError:
        raise _syntax(display, data) from None
    if is_cidr:
        net_cls = IPv4Network if maxbits == 32 else IPv6Network
        try:
            return net_cls((addr, bits))
        except ValueError:
            raise InvalidValue(f'invalid cidr value: "{s}"', _SYNTAX, "Value has bits set to right of mask.") from None
    if bits == maxbits:
        return addr
    return (IPv4Interface if maxbits == 32 else IPv6Interface)((addr, bits))


def _inet_codec(is_cidr: bool) -> Codec:
    display = "cidr" if is_cidr else "inet"
    parts = _cidr_parts if is_cidr else _inet_parts
    flag = 1 if is_cidr else 0

    def enc_text(v):
        addr, bits = parts(v)
        return _ip_text(addr, bits, addr.max_prefixlen, is_cidr).encode()

    def enc_bin(v):
        addr, bits = parts(v)
        packed = addr.packed
        fam = _PGSQL_AF_INET if len(packed) == 4 else _PGSQL_AF_INET6
        return bytes((fam, bits, flag, len(packed))) + packed

    def dec_text(data):
        return _parse_inet(data, is_cidr)

    def dec_bin(data):
        if len(data) < 4:
            raise InvalidValue("insufficient data left in message", _PROTOCOL)
        fam, bits, _, nb = data[0], data[1], data[2], data[3]  # the is_cidr flag is ignored, like PG
        if fam not in (_PGSQL_AF_INET, _PGSQL_AF_INET6):
            raise InvalidValue(f'invalid address family in external "{display}" value', _BINARY)
        maxbits = 32 if fam == _PGSQL_AF_INET else 128
        if bits > maxbits:
            raise InvalidValue(f'invalid bits in external "{display}" value', _BINARY)
        if nb != maxbits // 8 or len(data) != 4 + nb:
            raise InvalidValue(f'invalid length in external "{display}" value', _BINARY)
        raw = bytes(data[4:])
        if is_cidr:
            try:
                return (IPv4Network if nb == 4 else IPv6Network)((raw, bits))
            except ValueError:
                raise InvalidValue('invalid external "cidr" value', _BINARY,
                                   "Value has bits set to right of mask.") from None
        addr = IPv4Address(raw) if nb == 4 else IPv6Address(raw)
        if bits == maxbits:
            return addr
        return (IPv4Interface if nb == 4 else IPv6Interface)((addr, bits))

    def coerce(v):
        if v is None:
            return None
        if is_cidr:
            if isinstance(v, _IP_TYPES_CIDR):
                return v
            if isinstance(v, (IPv4Interface, IPv6Interface)):
                if v.ip != v.network.network_address:
                    raise InvalidValue(f"value {_fmt(v)} is not valid for type cidr: "
                                       "Value has bits set to right of mask.")
                return v.network
            if isinstance(v, (IPv4Address, IPv6Address)):
                return (IPv4Network if v.version == 4 else IPv6Network)((v, v.max_prefixlen))
        else:
            if isinstance(v, (IPv4Interface, IPv6Interface)):  # (an Interface is also an Address)
                if v.network.prefixlen == v.max_prefixlen:
                    return v.ip
                return v
            if isinstance(v, (IPv4Address, IPv6Address)):
                return v
            if isinstance(v, _IP_TYPES_CIDR):
                if v.prefixlen == v.max_prefixlen:
                    return v.network_address
                return (IPv4Interface if v.version == 4 else IPv6Interface)((v.network_address, v.prefixlen))
        if isinstance(v, str):
            return _coerce_via_text(display, dec_text, v)
        raise _bad_type(v, display)

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, name=display)


# --------------------------------------------------------------------------- small scalar kinds


def _pg_lsn_codec() -> Codec:
    def enc_text(v):
        if 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            return b"%X/%X" % (v >> 32, v & 0xFFFFFFFF)
        raise _NotCanonical

    def enc_bin(v):
        if 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            return _U64.pack(v)
        raise _NotCanonical

    def dec_text(data):
        s = _show(data)
        hi, sep, lo = s.partition("/")
        if not (sep and 1 <= len(hi) <= 8 and 1 <= len(lo) <= 8 and all(c in _HEX for c in hi + lo)):
            raise _syntax("pg_lsn", data)
        return (int(hi, 16) << 32) | int(lo, 16)

    def dec_bin(data):
        try:
            return _U64.unpack(data)[0]
        except struct.error:
            raise _bin_len_error(data, 8) from None

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            if 0 <= v <= 0xFFFFFFFFFFFFFFFF:
                return int(v)
            raise InvalidValue(f"value {_fmt(v)} is out of range for type pg_lsn", _RANGE)
        if isinstance(v, str):
            return _coerce_via_text("pg_lsn", dec_text, v)
        raise _bad_type(v, "pg_lsn")

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, array_safe=True, name="pg_lsn")


def _reg_codec(display: str) -> Codec:
    """regclass/regtype/regproc...: text is a name (or a bare OID); binary is the OID.

    There is no catalog here, so a name is kept as a str; regtype names resolve through REGISTRY.
    """
    base = _int_codec(display, 32, _U32, unsigned=True)

    def enc_text(v):
        if v.__class__ is str:
            return v.encode()
        return base.encode_text(v)

    def enc_bin(v):
        if v.__class__ is str:
            if display == "regtype":
                try:
                    return _U32.pack(REGISTRY.parse_type_spec(v)[0].oid)
                except (UnknownType, ValueError):
                    pass
            raise InvalidValue(f'cannot send {display} "{v}" in binary without its OID (no catalog)', _PARAM)
        return base.encode_binary(v)

    def dec_text(data):
        s = _show(data).strip()
        if s.isdigit() and s.isascii():
            return base.decode_text(data)
        if not s:
            raise _syntax(display, data)
        return s

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, str):
            return dec_text(v.encode())
        return base.coerce(v)

    return Codec(enc_text, dec_text, enc_bin, base.decode_binary, coerce, name=display)


def _void_codec() -> Codec:
    def enc(v):
        return b""

    def dec(data):
        return None

    return Codec(enc, dec, enc, dec, lambda v: None, name="void")


def _record_codec() -> Codec:
    """Anonymous records, text only: (1,"a b",) with record_out's quoting."""

    def enc_text(v):
        if not isinstance(v, (tuple, list)):
            raise _NotCanonical
        out = []
        for x in v:
            if x is None:
                out.append(b"")
                continue
            b = REGISTRY.infer(x).encode_text(x)
            if not b or any(c in b'"\\(),' or c in b" \t\n\r\v\f" for c in b):
                b = b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'""') + b'"'
            out.append(b)
        return b"(" + b",".join(out) + b")"

    def dec_text(data):
        s = _show(data).strip()
        if not (s.startswith("(") and s.endswith(")")):
            raise InvalidValue(f'malformed record literal: "{s}"', _SYNTAX, 'Missing left parenthesis.')
        items: list = []
        i, n = 1, len(s) - 1
        while True:
            if i >= n:
                items.append(None)
                break
            if s[i] == ",":
                items.append(None)
                i += 1
                continue
            buf = []
            quoted = False
            while i < n and (quoted or s[i] != ","):
                c = s[i]
                if c == '"':
                    if quoted and i + 1 < n and s[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    quoted = not quoted
                elif c == "\\" and i + 1 < n:
                    buf.append(s[i + 1])
                    i += 1
                else:
                    buf.append(c)
                i += 1
            items.append("".join(buf))
            if i >= n:
                break
            i += 1  # the comma
            if i >= n:
                items.append(None)
                break
        return tuple(items)

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, (tuple, list)):
            return tuple(v)
        if isinstance(v, str):
            return _coerce_via_text("record", dec_text, v)
        raise _bad_type(v, "record")

    return Codec(enc_text, dec_text, None, None, coerce, name="record")


# --------------------------------------------------------------------------- arrays

_ARR_QUOTE = re.compile(rb'[{}",\\\s]')  # array_out quotes these; \s is exactly array_isspace's set
_ARR_WS = b" \t\n\r\v\f"


def _array_quote(b: bytes) -> bytes:
    if b and not _ARR_QUOTE.search(b) and not (len(b) == 4 and b.lower() == b"null"):
        return b
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _malformed(data, detail: str) -> InvalidValue:
    return InvalidValue(f'malformed array literal: "{_show(data)}"', _SYNTAX, detail)


def _array_parse(data: bytes) -> list:
    """array_in's grammar -> nested lists of raw element bytes (None for NULL)."""
    n = len(data)
    i = 0
    while i < n and data[i] in _ARR_WS:
        i += 1
    if i < n and data[i] == 0x5B:  # '[1:3]={...}' dimension decoration: bounds are not kept
        eq = data.find(b"=", i)
        if eq < 0:
            raise _malformed(data, 'Missing "=" after array dimensions.')
        i = eq + 1
        while i < n and data[i] in _ARR_WS:
            i += 1
    if i >= n or data[i] != 0x7B:
        raise _malformed(data, 'Array value must start with "{" or dimension information.')

    def level(i: int, nested: bool = False) -> tuple[list, int]:
        i += 1  # '{'
        items: list = []
        while i < n and data[i] in _ARR_WS:
            i += 1
        if i < n and data[i] == 0x7D:
            if nested:  # only the whole array may be empty: {{}} is malformed
                raise _malformed(data, 'Unexpected "}" character.')
            return items, i + 1
        while True:
            while i < n and data[i] in _ARR_WS:
                i += 1
            if i >= n:
                raise _malformed(data, "Unexpected end of input.")
            c = data[i]
            if c == 0x7B:
                sub, i = level(i, True)
                items.append(sub)
            elif c == 0x22:  # quoted
                i += 1
                buf = bytearray()
                while True:
                    if i >= n:
                        raise _malformed(data, "Unexpected end of input.")
                    c = data[i]
                    if c == 0x22:
                        i += 1
                        break
                    if c == 0x5C:
                        i += 1
                        if i >= n:
                            raise _malformed(data, "Unexpected end of input.")
                        c = data[i]
                    buf.append(c)
                    i += 1
                items.append(bytes(buf))
            elif c in b",}":
                raise _malformed(data, 'Unexpected "%s" character.' % chr(c))
            else:  # unquoted: up to , or }; backslashes escape; trailing blanks dropped
                buf = bytearray()
                escaped = False
                keep = 0  # length up to the last escaped char (never trimmed)
                while i < n:
                    c = data[i]
                    if c == 0x5C:
                        i += 1
                        if i >= n:
                            raise _malformed(data, "Unexpected end of input.")
                        buf.append(data[i])
                        escaped = True
                        keep = len(buf)
                        i += 1
                        continue
                    if c in b",}":
                        break
                    if c in b'{"':
                        raise _malformed(data, 'Unexpected "%s" character.' % chr(c))
                    buf.append(c)
                    i += 1
                while len(buf) > keep and buf[-1] in _ARR_WS:
                    buf.pop()
                v = bytes(buf)
                items.append(None if not escaped and v.lower() == b"null" else v)
            while i < n and data[i] in _ARR_WS:
                i += 1
            if i >= n:
                raise _malformed(data, "Unexpected end of input.")
            if data[i] == 0x2C:
                i += 1
                continue
            if data[i] == 0x7D:
                return items, i + 1
            raise _malformed(data, 'Unexpected array element.')

    items, i = level(i)
    while i < n and data[i] in _ARR_WS:
        i += 1
    if i != n:
        raise _malformed(data, "Junk after closing right brace.")
    return items


def _dims_of(v: list, list_is_scalar: bool) -> list[int]:
    dims = []
    while isinstance(v, list) and not (dims and list_is_scalar):
        dims.append(len(v))
        if not v or not isinstance(v[0], list) or list_is_scalar:
            break
        v = v[0]
    return dims


def _check_rect(v: list, dims: list[int], depth: int = 0) -> bool:
    if len(v) != dims[depth]:
        return False
    if depth + 1 == len(dims):
        return not any(isinstance(x, list) for x in v)
    return all(isinstance(x, list) and _check_rect(x, dims, depth + 1) for x in v)


def _array_codec(elem: "PgType", display: str) -> Codec:
    e_enc_t, e_dec_t = elem.encode_text, elem.decode_text
    e_enc_b, e_dec_b = elem.encode_binary, elem.decode_binary
    e_coerce = elem.coerce
    eoid = elem.oid
    safe = elem.codec.array_safe
    scalar_lists = elem.codec.list_is_scalar
    null = b"NULL"
    neg1 = _I32.pack(-1)
    pack32 = _I32.pack

    def enc_text(v):
        if v.__class__ is not list:
            raise _NotCanonical
        out = []
        for x in v:
            if x is None:
                out.append(null)
            elif x.__class__ is list and not scalar_lists:
                out.append(enc_text(x))
            elif safe:
                out.append(e_enc_t(x))
            else:
                out.append(_array_quote(e_enc_t(x)))
        return b"{" + b",".join(out) + b"}"

    def enc_bin(v):
        if v.__class__ is not list:
            raise _NotCanonical
        if not v:
            return _ARRHDR.pack(0, 0, eoid)
        if v[0].__class__ is list and not scalar_lists:
            dims = _dims_of(v, False)
            if not _check_rect(v, dims):
                raise _NotCanonical
            flat = v
            for _ in range(len(dims) - 1):
                flat = [x for sub in flat for x in sub]
        else:
            dims = [len(v)]
            flat = v
        parts = []
        has_null = 0
        for x in flat:
            if x is None:
                parts.append(neg1)
                has_null = 1
            else:
                b = e_enc_b(x)
                parts.append(pack32(len(b)))
                parts.append(b)
        head = _ARRHDR.pack(len(dims), has_null, eoid) + b"".join(_II.pack(d, 1) for d in dims)
        return head + b"".join(parts)

    def decode_items(items):
        return [None if x is None else (decode_items(x) if x.__class__ is list else e_dec_t(x)) for x in items]

    def dec_text(data):
        if data[:1] == b"{" and data[-1:] == b"}":
            inner = data[1:-1]
            if not inner:
                return []
            if b'"' not in inner and b"\\" not in inner and b"{" not in inner:  # fast path: flat, unquoted
                out = []
                for part in inner.split(b","):
                    p = part.strip(_ARR_WS)
                    if not p:
                        raise _malformed(data, "Unexpected \",\" character." if part != inner else
                                         "Unexpected \"}\" character.")
                    out.append(None if len(p) == 4 and p.lower() == b"null" else e_dec_t(p))
                return out
        items = _array_parse(data)
        if items and isinstance(items[0], list):
            dims = _dims_of(items, False)
            if not _check_rect(items, dims):
                raise _malformed(data, "Multidimensional arrays must have sub-arrays with matching dimensions.")
            if 0 in dims:
                return []
        elif any(isinstance(x, list) for x in items):
            raise _malformed(data, "Multidimensional arrays must have sub-arrays with matching dimensions.")
        return decode_items(items)

    def dec_bin(data):
        try:
            ndim, flags, toid = _ARRHDR.unpack_from(data)
            if not 0 <= ndim <= 6:
                raise InvalidValue(f"invalid number of dimensions: {ndim}", _BINARY)
            if flags not in (0, 1):
                raise InvalidValue("invalid array flags", _BINARY)
            if toid != eoid:
                raise InvalidValue(f"binary data has array element type {toid} instead of expected "
                                   f"{eoid} ({elem.display})", "42804")
            if ndim == 0:
                return []
            dims = []
            off = 12
            total = 1
            for _ in range(ndim):
                d, _lb = _II.unpack_from(data, off)
                off += 8
                if d < 0:
                    raise InvalidValue("array size exceeds the maximum allowed", "54000")
                dims.append(d)
                total *= d
            n = len(data)
            flat = []
            unpack32 = _I32.unpack_from
            for _ in range(total):
                ln = unpack32(data, off)[0]
                off += 4
                if ln == -1:
                    flat.append(None)
                    continue
                if ln < 0 or off + ln > n:
                    raise InvalidValue("insufficient data left in message", _PROTOCOL)
                flat.append(e_dec_b(data[off:off + ln]))
                off += ln
        except struct.error:
            raise InvalidValue("insufficient data left in message", _PROTOCOL) from None
        if off != len(data):
            raise InvalidValue("incorrect binary data format", _BINARY)
        if total == 0:
            return []
        for d in reversed(dims[1:]):
            flat = [flat[k:k + d] for k in range(0, len(flat), d)]
        return flat

    def coerce_items(v, top):
        out = []
        for x in v:
            if x is None:
                out.append(None)
            elif isinstance(x, (list, tuple)) and not scalar_lists:
                out.append(coerce_items(x, False))
            else:
                out.append(e_coerce(x))
        return out

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, str):
            return _coerce_via_text(display, dec_text, v)
        if not isinstance(v, (list, tuple)):
            raise _bad_type(v, display)
        try:
            out = coerce_items(v, True)
        except (ValueError, TypeError) as e:
            raise e.__class__(f"value {_fmt(v)} is not valid for type {display}: {e}") from None
        if out and isinstance(out[0], list) and not scalar_lists:
            dims = _dims_of(out, False)
            if not _check_rect(out, dims):
                raise InvalidValue(f"value {_fmt(v)} is not valid for type {display}: multidimensional "
                                   "arrays must have sub-arrays with matching dimensions")
            if 0 in dims:
                return []
        elif not scalar_lists and any(isinstance(x, list) for x in out):
            raise InvalidValue(f"value {_fmt(v)} is not valid for type {display}: multidimensional "
                               "arrays must have sub-arrays with matching dimensions")
        return out

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, name=display)


def _vector_codec(display: str, elem_oid: int, bits: int, unsigned: bool) -> Codec:
    """int2vector / oidvector: text is space-separated; binary is array_send with lower bound 0."""
    base = _int_codec("smallint" if bits == 16 else "oid", 32 if unsigned else 16,
                      _U32 if unsigned else _I16, unsigned)
    st = _U32 if unsigned else _I16
    b_enc, b_dec, b_coerce = base.encode_text, base.decode_text, base.coerce

    def enc_text(v):
        if v.__class__ is not list:
            raise _NotCanonical
        return b" ".join([b_enc(x) for x in v])

    def enc_bin(v):
        if v.__class__ is not list:
            raise _NotCanonical
        head = _ARRHDR.pack(1, 0, elem_oid) + _II.pack(len(v), 0)
        ln = _I32.pack(st.size)
        return head + b"".join(ln + st.pack(x) for x in v)

    def dec_text(data):
        return [b_dec(p) for p in data.split()]

    def dec_bin(data):
        try:
            ndim, flags, toid = _ARRHDR.unpack_from(data)
            if ndim == 0:
                return []
            if ndim != 1 or flags != 0 or toid != elem_oid:
                raise InvalidValue(f"invalid {display} data", _BINARY)
            n, _lb = _II.unpack_from(data, 12)
            off = 20
            out = []
            for _ in range(n):
                ln = _I32.unpack_from(data, off)[0]
                if ln != st.size:
                    raise InvalidValue(f"invalid {display} data", _BINARY)
                out.append(st.unpack_from(data, off + 4)[0])
                off += 4 + ln
        except struct.error:
            raise InvalidValue("insufficient data left in message", _PROTOCOL) from None
        if off != len(data):
            raise InvalidValue("incorrect binary data format", _BINARY)
        return out

    def coerce(v):
        if v is None:
            return None
        if isinstance(v, str):
            return _coerce_via_text(display, dec_text, v)
        if isinstance(v, (list, tuple)):
            return [b_coerce(x) for x in v]
        raise _bad_type(v, display)

    return Codec(enc_text, dec_text, enc_bin, dec_bin, coerce, list_is_scalar=True, name=display)


# --------------------------------------------------------------------------- PgType

_ENCODE_FALLBACK = (TypeError, AttributeError, KeyError, struct.error, OverflowError, _NotCanonical)


def _with_coerce(fast: Callable[[Any], bytes], coerce: Callable[[Any], Any], display: str):
    """The encoder PgType exposes: fast path for canonical values, coerce() for the rest."""

    def encode(value):
        try:
            return fast(value)
        except _ENCODE_FALLBACK:
            if value is None:
                raise TypeError(f"NULL has no {display} encoding (send a -1 length instead)") from None
            return fast(coerce(value))

    encode.__wrapped__ = fast  # type: ignore[attr-defined]
    return encode


@dataclass(frozen=True, eq=False)
class PgType:
    """One PostgreSQL type. Compared by identity; the registry holds one instance per OID.

    ``encode_text``/``decode_text``/``encode_binary``/``decode_binary``/``coerce`` are set per
    instance from ``codec`` (one call less on the hot path than delegating methods).
    A user type without a codec is text-coded (str values, binary = the text bytes).
    """

    name: str
    oid: int
    typlen: int = -1
    array_oid: int = 0
    elem: "PgType | None" = None
    category: str = "U"
    display: str = ""
    codec: Codec | None = field(default=None, repr=False)
    delim: str = ","
    has_binary: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        if not self.display:
            object.__setattr__(self, "display", self.name)
        codec = self.codec or _text_codec(self.display)
        setter = object.__setattr__
        setter(self, "codec", codec)
        setter(self, "has_binary", codec.has_binary)
        setter(self, "encode_text", _with_coerce(codec.encode_text, codec.coerce, self.display))
        setter(self, "encode_binary", _with_coerce(codec.encode_binary, codec.coerce, self.display))
        setter(self, "decode_text", codec.decode_text)
        setter(self, "decode_binary", codec.decode_binary)
        setter(self, "coerce", codec.coerce)

    # These document the interface; __post_init__ shadows them with the codec's functions.
    def encode_text(self, value: Any) -> bytes:  # pragma: no cover - shadowed
        """Natural Python value -> PostgreSQL text output (UTF-8 bytes)."""
        raise NotImplementedError

    def decode_text(self, data: bytes) -> Any:  # pragma: no cover - shadowed
        """PostgreSQL text input -> natural value; InvalidValue with PostgreSQL's message on bad input."""
        raise NotImplementedError

    def encode_binary(self, value: Any) -> bytes:  # pragma: no cover - shadowed
        """Natural value -> typsend bytes."""
        raise NotImplementedError

    def decode_binary(self, data: bytes) -> Any:  # pragma: no cover - shadowed
        """typreceive bytes -> natural value; InvalidValue on bad input."""
        raise NotImplementedError

    def coerce(self, value: Any) -> Any:  # pragma: no cover - shadowed
        """A value as written in YAML/Python -> the canonical value; TypeError/ValueError naming type and value."""
        raise NotImplementedError

    @property
    def is_array(self) -> bool:
        """A real array type (``_int4``...), not int2vector/oidvector."""
        return self.category == "A" and self.elem is not None and self.name.startswith("_")

    def __repr__(self) -> str:
        return f"PgType({self.name!r}, oid={self.oid})"


def _make_array(elem: PgType, oid: int | None = None) -> PgType:
    display = elem.display + "[]"
    return PgType(
        name="_" + elem.name,
        oid=oid if oid is not None else elem.array_oid,
        typlen=-1,
        array_oid=0,
        elem=elem,
        category="P" if elem.category == "P" and elem.name == "record" else "A",  # _record is a pseudo-type
        display=display,
        codec=_array_codec(elem, display),
    )


def enum_type(name: str, oid: int, labels, array_oid: int = 0) -> PgType:
    """A user enum: text-coded, values must be one of ``labels``. Register it with REGISTRY.register()."""
    return PgType(name=name, oid=oid, typlen=4, array_oid=array_oid, category="E", display=name,
                  codec=_text_codec(name, labels=frozenset(labels)))


# --------------------------------------------------------------------------- the table

# name, oid, typlen, array_oid, category, display, codec, aliases (besides the name itself)
_BUILTINS: list[tuple] = [
    ("bool", 16, 1, 1000, "B", "boolean", _bool_codec(), ("boolean",)),
    ("bytea", 17, -1, 1001, "U", "bytea", _bytea_codec(), ()),
    ("char", 18, 1, 1002, "Z", '"char"', _char1_codec(), ('"char"',)),  # plain `char` means bpchar
    ("name", 19, 64, 1003, "S", "name", _text_codec("name", truncate=63), ()),
    ("int8", 20, 8, 1016, "N", "bigint", _int_codec("bigint", 64, _I64), ("bigint", "bigserial", "serial8")),
    ("int2", 21, 2, 1005, "N", "smallint", _int_codec("smallint", 16, _I16),
     ("smallint", "smallserial", "serial2")),
    ("int2vector", 22, -1, 1006, "A", "int2vector", _vector_codec("int2vector", 21, 16, False), ()),
    ("int4", 23, 4, 1007, "N", "integer", _int_codec("integer", 32, _I32), ("int", "integer", "serial", "serial4")),
    ("regproc", 24, 4, 1008, "N", "regproc", _reg_codec("regproc"), ()),
    ("text", 25, -1, 1009, "S", "text", _text_codec("text"), ()),
    ("oid", 26, 4, 1028, "N", "oid", _int_codec("oid", 32, _U32, unsigned=True), ()),
    ("xid", 28, 4, 1011, "U", "xid", _int_codec("xid", 32, _U32, unsigned=True), ()),
    ("cid", 29, 4, 1012, "U", "cid", _int_codec("cid", 32, _U32, unsigned=True), ()),
    ("oidvector", 30, -1, 1013, "A", "oidvector", _vector_codec("oidvector", 26, 32, True), ()),
    ("json", 114, -1, 199, "U", "json", _json_codec(False), ()),
    ("xml", 142, -1, 143, "U", "xml", _text_codec("xml"), ()),
    ("cidr", 650, -1, 651, "I", "cidr", _inet_codec(True), ()),
    ("float4", 700, 4, 1021, "N", "real", _float_codec("real", 4), ("real",)),
    ("float8", 701, 8, 1022, "N", "double precision", _float_codec("double precision", 8),
     ("double precision", "float", "double")),
    ("unknown", 705, -2, 0, "X", "unknown", _text_codec("unknown"), ()),
    ("inet", 869, -1, 1041, "I", "inet", _inet_codec(False), ()),
    ("aclitem", 1033, 12, 1034, "U", "aclitem", _text_codec("aclitem", binary=False), ()),
    ("bpchar", 1042, -1, 1014, "S", "character", _text_codec("character"), ("character", "char")),
    ("varchar", 1043, -1, 1015, "S", "character varying", _text_codec("character varying"),
     ("character varying", "char varying")),
    ("date", 1082, 4, 1182, "D", "date", _date_codec(), ()),
    ("time", 1083, 8, 1183, "D", "time without time zone", _time_codec(False), ("time without time zone",)),
    ("timestamp", 1114, 8, 1115, "D", "timestamp without time zone", _timestamp_codec(False),
     ("timestamp without time zone",)),
    ("timestamptz", 1184, 8, 1185, "D", "timestamp with time zone", _timestamp_codec(True),
     ("timestamp with time zone",)),
    ("interval", 1186, 16, 1187, "T", "interval", _interval_codec(), ()),
    ("timetz", 1266, 12, 1270, "D", "time with time zone", _time_codec(True), ("time with time zone",)),
    ("numeric", 1700, -1, 1231, "N", "numeric", _numeric_codec(), ("decimal",)),
    ("regprocedure", 2202, 4, 2207, "N", "regprocedure", _reg_codec("regprocedure"), ()),
    ("regoper", 2203, 4, 2208, "N", "regoper", _reg_codec("regoper"), ()),
    ("regclass", 2205, 4, 2210, "N", "regclass", _reg_codec("regclass"), ()),
    ("regtype", 2206, 4, 2211, "N", "regtype", _reg_codec("regtype"), ()),
    ("record", 2249, -1, 2287, "P", "record", _record_codec(), ()),
    ("cstring", 2275, -2, 1263, "P", "cstring", _text_codec("cstring"), ()),
    ("void", 2278, 4, 0, "P", "void", _void_codec(), ()),
    ("uuid", 2950, 16, 2951, "U", "uuid", _uuid_codec(), ()),
    ("pg_lsn", 3220, 8, 3221, "U", "pg_lsn", _pg_lsn_codec(), ()),
    ("jsonb", 3802, -1, 3807, "U", "jsonb", _json_codec(True), ()),
    ("regnamespace", 4089, 4, 4090, "N", "regnamespace", _reg_codec("regnamespace"), ()),
    ("regrole", 4096, 4, 4097, "N", "regrole", _reg_codec("regrole"), ()),
    ("xid8", 5069, 8, 271, "U", "xid8", _int_codec("xid8", 64, _U64, unsigned=True), ()),
]
_VECTOR_ELEMS = {"int2vector": "int2", "oidvector": "oid"}

# typmod encodings (src/include/utils/timestamp.h, numeric.h)
_VARHDRSZ = 4
_INTERVAL_FULL_RANGE = 0x7FFF
_INTERVAL_FULL_PRECISION = 0xFFFF
_IV_MONTH, _IV_YEAR, _IV_DAY, _IV_HOUR, _IV_MINUTE, _IV_SECOND = (1 << 1, 1 << 2, 1 << 3, 1 << 10, 1 << 11, 1 << 12)
_INTERVAL_FIELDS = {
    "year": _IV_YEAR, "month": _IV_MONTH, "day": _IV_DAY, "hour": _IV_HOUR, "minute": _IV_MINUTE,
    "second": _IV_SECOND,
    "year to month": _IV_YEAR | _IV_MONTH,
    "day to hour": _IV_DAY | _IV_HOUR,
    "day to minute": _IV_DAY | _IV_HOUR | _IV_MINUTE,
    "day to second": _IV_DAY | _IV_HOUR | _IV_MINUTE | _IV_SECOND,
    "hour to minute": _IV_HOUR | _IV_MINUTE,
    "hour to second": _IV_HOUR | _IV_MINUTE | _IV_SECOND,
    "minute to second": _IV_MINUTE | _IV_SECOND,
}
_INTERVAL_FIELD_NAMES = {v: k for k, v in _INTERVAL_FIELDS.items()}


def _typmod(t: PgType, args: list[str] | None, spec: str) -> int:
    if args is None:
        return -1
    try:
        nums = [int(a) for a in args]
    except ValueError:
        raise ValueError(f'invalid type modifier in "{spec}"') from None
    name = t.name
    if name in ("varchar", "bpchar"):
        kind = "varchar" if name == "varchar" else "char"
        if len(nums) != 1:
            raise ValueError(f'invalid type modifier in "{spec}"')
        if nums[0] < 1:
            raise ValueError(f"length for type {kind} must be at least 1")
        if nums[0] > 10485760:
            raise ValueError(f"length for type {kind} cannot exceed 10485760")
        return nums[0] + _VARHDRSZ
    if name == "numeric":
        if not 1 <= len(nums) <= 2:
            raise ValueError(f'invalid NUMERIC type modifier in "{spec}"')
        p, s = nums[0], (nums[1] if len(nums) == 2 else 0)
        if not 1 <= p <= 1000:
            raise ValueError(f"NUMERIC precision {p} must be between 1 and 1000")
        if not -1000 <= s <= 1000:
            raise ValueError(f"NUMERIC scale {s} must be between -1000 and 1000")
        return ((p << 16) | (s & 0x7FF)) + _VARHDRSZ
    if name in ("time", "timetz", "timestamp", "timestamptz", "interval"):
        if len(nums) != 1:
            raise ValueError(f'invalid type modifier in "{spec}"')
        if nums[0] < 0:
            raise ValueError(f"{t.display.upper()}({nums[0]}) precision must not be negative")
        return min(nums[0], 6)  # PostgreSQL warns and reduces > 6 to 6
    raise ValueError(f'type modifier is not allowed for type "{t.name}"')


def format_type(t: PgType, typmod: int | None = None) -> str:
    """What PostgreSQL's format_type(oid, typmod) prints.

    ``typmod=None`` is format_type(oid, NULL) (== ``t.display``); an int -- even -1 -- follows
    PostgreSQL's "typmod given" rules (so format_type(bpchar, -1) is 'bpchar', as in PostgreSQL).
    """
    if t.is_array:
        return format_type(t.elem, typmod) + "[]"  # type: ignore[arg-type]
    if typmod is None:
        return t.display
    name = t.name
    if typmod < 0:
        return "bpchar" if name == "bpchar" else t.display
    if name in ("varchar", "bpchar"):
        return f"{t.display}({typmod - _VARHDRSZ})"
    if name == "numeric":
        tm = typmod - _VARHDRSZ
        p = (tm >> 16) & 0xFFFF
        s = ((tm & 0x7FF) ^ 1024) - 1024
        return f"numeric({p},{s})"
    if name in ("time", "timetz", "timestamp", "timestamptz"):
        base, _, zone = t.display.partition(" ")
        return f"{base}({typmod}) {zone}"
    if name == "interval":
        rng = (typmod >> 16) & 0x7FFF
        prec = typmod & 0xFFFF
        fields = "" if rng == _INTERVAL_FULL_RANGE else " " + _INTERVAL_FIELD_NAMES.get(rng, "")
        return "interval" + fields + (f"({prec})" if prec != _INTERVAL_FULL_PRECISION else "")
    return t.display


# --------------------------------------------------------------------------- registry


def _norm(name: str) -> str:
    return " ".join(name.strip().lower().split())


class TypeRegistry:
    """Types by OID and by name (canonical names and SQL aliases, case/space-insensitive)."""

    def __init__(self) -> None:
        self._by_oid: dict[int, PgType] = {}
        self._names: dict[str, PgType] = {}  # canonical pg_type names
        self._aliases: dict[str, PgType] = {}  # SQL spellings; win over canonical names ("char")
        self._spec_cache: dict[str, tuple[PgType, int]] = {}

    # -- registration
    def register(self, t: PgType, aliases: tuple[str, ...] | list[str] = ()) -> PgType:
        """Add a type (and its array type when ``array_oid`` is set and not yet known)."""
        if not isinstance(t, PgType):
            raise TypeError(f"register() takes a PgType, not {type(t).__name__}")
        self._by_oid[t.oid] = t
        self._names[t.name.lower()] = t
        for a in aliases:
            self._aliases[_norm(a)] = t
        if t.array_oid and t.array_oid not in self._by_oid:
            self.register(_make_array(t))
        self._spec_cache.clear()
        return t

    # -- lookups
    def by_oid(self, oid: int) -> PgType:
        try:
            return self._by_oid[oid]
        except KeyError:
            raise UnknownType(f"unknown type OID {oid}") from None

    def get_oid(self, oid: int) -> PgType | None:
        return self._by_oid.get(oid)

    def by_name(self, name: str) -> PgType:
        """A type from a name or SQL spelling (typmods accepted and ignored; see parse_type_spec)."""
        return self.parse_type_spec(name)[0]

    def array_of(self, t: PgType) -> PgType:
        if t.is_array:
            return t  # PostgreSQL has one array type per element type, whatever the dimensions
        if not t.array_oid:
            raise UnknownType(f'type "{t.display}" has no array type')
        arr = self._by_oid.get(t.array_oid)
        if arr is None:
            arr = self.register(_make_array(t))
        return arr

    def copy(self) -> "TypeRegistry":
        """An independent registry with the same types and aliases (e.g. per server, for user enums)."""
        new = TypeRegistry()
        new._by_oid = dict(self._by_oid)
        new._names = dict(self._names)
        new._aliases = dict(self._aliases)
        return new

    def names(self) -> list[str]:
        """Every name by_name accepts without typmod or [] (canonical names and aliases), sorted."""
        return sorted(set(self._names) | set(self._aliases))

    def __contains__(self, key: object) -> bool:
        if isinstance(key, int):
            return key in self._by_oid
        if isinstance(key, str):
            try:
                self.parse_type_spec(key)
                return True
            except (UnknownType, ValueError):
                return False
        return False

    def __iter__(self):
        return iter(list(self._by_oid.values()))

    # -- type specs
    def parse_type_spec(self, spec: str) -> tuple[PgType, int]:
        """'varchar(20)' -> (varchar, 24); 'numeric(10,2)' -> (numeric, 655366); 'text[]' -> (_text, -1).

        typmod uses PostgreSQL's encoding: varchar/char(n) -> n+4; numeric(p,s) -> ((p<<16)|s)+4;
        time/timestamp(p) -> p; interval(p) / interval day to second(p) -> (range<<16)|p; else -1.
        A bare ``char``/``character`` is character(1) (typmod 5), as in PostgreSQL column definitions.
        """
        hit = self._spec_cache.get(spec)
        if hit is not None:
            return hit
        if not isinstance(spec, str):
            raise TypeError(f"type spec must be a str, not {type(spec).__name__}")
        result = self._parse_spec(spec)
        if len(self._spec_cache) > 4096:
            self._spec_cache.clear()
        self._spec_cache[spec] = result
        return result

    def _parse_spec(self, spec: str) -> tuple[PgType, int]:
        s = _norm(spec)
        ndims = 0
        while True:  # array suffixes: [] [3] or the ARRAY keyword
            if s.endswith("]"):
                j = s.rfind("[")
                inner = s[j + 1:-1].strip() if j >= 0 else "x"
                if j < 0 or (inner and not inner.isdigit()):
                    raise self._unknown(spec)
                s = s[:j].rstrip()
                ndims += 1
            elif s.endswith(" array"):
                s = s[:-6].rstrip()
                ndims += 1
            else:
                break
        args = None
        p = s.find("(")
        if p >= 0:
            q = s.find(")", p)
            if q < 0:
                raise self._unknown(spec)
            args = [a.strip() for a in s[p + 1:q].split(",")]
            s = _norm(s[:p] + " " + s[q + 1:])
        if s.startswith("pg_catalog."):
            s = s[len("pg_catalog."):]
        t, typmod = self._base(s, args, spec)
        if ndims:
            t = self.array_of(t)
        return t, typmod

    def _base(self, s: str, args: list[str] | None, spec: str) -> tuple[PgType, int]:
        if s in ("float", "double"):  # float(p): 1-24 -> real, 25-53 -> double precision
            if args:
                try:
                    prec = int(args[0])
                except ValueError:
                    raise ValueError(f'invalid type modifier in "{spec}"') from None
                if not 1 <= prec <= 53:
                    raise ValueError(f"precision for type float must be {'at least 1 bit' if prec < 1 else 'less than 54 bits'}")
                return self._names["float4" if prec <= 24 else "float8"], -1
            return self._names["float8"], -1
        t = self._aliases.get(s) or self._names.get(s)
        if t is None and len(s) > 2 and s[0] == '"' and s[-1] == '"':
            inner = s[1:-1]
            t = self._names.get(inner) or self._aliases.get(inner)
        if t is None and s.startswith("interval "):
            rng = _INTERVAL_FIELDS.get(s[len("interval "):])
            if rng is not None:
                t = self._names["interval"]
                prec = _INTERVAL_FULL_PRECISION if args is None else _typmod(t, args, spec)
                return t, (rng << 16) | prec
        if t is None:
            raise self._unknown(spec)
        if t.name == "interval" and args is not None:
            return t, (_INTERVAL_FULL_RANGE << 16) | _typmod(t, args, spec)
        if args is None and s in ("char", "character"):
            return t, 1 + _VARHDRSZ
        return t, _typmod(t, args, spec)

    def _unknown(self, spec: str) -> UnknownType:
        msg = f'unknown type "{spec}"'
        s = _norm(spec)
        close = difflib.get_close_matches(s, self.names(), n=1, cutoff=0.6)
        if close:
            msg += f'; did you mean "{close[0]}"?'
        return UnknownType(msg)

    # -- inference
    def infer(self, value: Any) -> PgType:
        """A sensible type for a natural Python value (None -> text)."""
        n = self._names
        if value is None:
            return n["text"]
        if isinstance(value, bool):
            return n["bool"]
        if isinstance(value, int):
            if _INT32_MIN <= value <= _INT32_MAX:
                return n["int4"]
            if _INT64_MIN <= value <= _INT64_MAX:
                return n["int8"]
            return n["numeric"]
        if isinstance(value, float):
            return n["float8"]
        if isinstance(value, Decimal):
            return n["numeric"]
        if isinstance(value, str):
            return n["text"]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return n["bytea"]
        if isinstance(value, datetime):
            return n["timestamptz"] if value.tzinfo is not None else n["timestamp"]
        if isinstance(value, date):
            return n["date"]
        if isinstance(value, time):
            return n["timetz"] if value.tzinfo is not None else n["time"]
        if isinstance(value, (timedelta, Interval)):
            return n["interval"]
        if isinstance(value, UUID):
            return n["uuid"]
        if isinstance(value, dict):
            return n["jsonb"]
        if isinstance(value, (IPv4Network, IPv6Network)):
            return n["cidr"]
        if isinstance(value, _IP_TYPES_INET):
            return n["inet"]
        if isinstance(value, (list, tuple)):
            flat = list(_iter_leaves(value))
            first = next((x for x in flat if x is not None), None)
            if first is None:
                return self.array_of(n["text"])
            et = self.infer(first)
            if et is n["int4"] and any(isinstance(x, int) and not _INT32_MIN <= x <= _INT32_MAX
                                       for x in flat if x is not None):
                et = n["int8"] if all(_INT64_MIN <= x <= _INT64_MAX for x in flat
                                      if isinstance(x, int)) else n["numeric"]
            if et.is_array or not et.array_oid:
                raise TypeError(f"cannot infer an array type for {_fmt(value)}")
            return self.array_of(et)
        raise TypeError(f"cannot infer a PostgreSQL type for a {type(value).__name__} value")


def _iter_leaves(v):
    for x in v:
        if isinstance(x, (list, tuple)):
            yield from _iter_leaves(x)
        else:
            yield x


def _build_default() -> TypeRegistry:
    reg = TypeRegistry()
    for name, oid, typlen, array_oid, cat, display, codec, aliases in _BUILTINS:
        elem = None
        if name in _VECTOR_ELEMS:
            elem = reg._names[_VECTOR_ELEMS[name]]
        reg.register(PgType(name, oid, typlen, array_oid, elem, cat, display, codec))
    for name, oid, typlen, array_oid, cat, display, codec, aliases in _BUILTINS:
        for a in aliases:
            reg._aliases[_norm(a)] = reg._names[name]
    return reg


REGISTRY: TypeRegistry = _build_default()


def lookup(name_or_oid: "str | int | PgType") -> PgType:
    """REGISTRY.by_name for a str, by_oid for an int; a PgType is returned as is."""
    if isinstance(name_or_oid, PgType):
        return name_or_oid
    if isinstance(name_or_oid, int) and not isinstance(name_or_oid, bool):
        return REGISTRY.by_oid(name_or_oid)
    if isinstance(name_or_oid, str):
        return REGISTRY.by_name(name_or_oid)
    raise TypeError(f"lookup() takes a type name or OID, not {type(name_or_oid).__name__}")
