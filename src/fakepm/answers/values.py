"""Value equality between what a rule wrote and what a query sent: ``values_equal``.

A rule's ``$1`` bound to ``5`` must accept the query's ``'5'`` (psycopg2 interpolates text),
``Decimal('9.99')`` must equal ``9.99``, a ``datetime`` the ISO text a driver sent, a list the
PostgreSQL array text ``'{1,2}'``. The rules are lenient but symmetric and never raise; see
values_equal's docstring for the full table. unify (answers/unify.py) and the rules' ``params:``
checks (answers/rules.py) use it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import uuid
from decimal import Decimal, InvalidOperation

from .slots import MISSING

__all__ = ["values_equal", "parse_pg_array"]


_TRUE_STRINGS = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE_STRINGS = frozenset({"f", "false", "n", "no", "off", "0"})


def _str_bool(s: str):
    v = s.strip().lower()
    if v in _TRUE_STRINGS:
        return True
    if v in _FALSE_STRINGS:
        return False
    return None


def _to_decimal(v):
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        if math.isnan(v):
            return Decimal("NaN")
        if math.isinf(v):
            return Decimal("Infinity") if v > 0 else Decimal("-Infinity")
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip()
        low = s.lower()
        if low in ("infinity", "+infinity", "inf", "+inf"):
            return Decimal("Infinity")
        if low in ("-infinity", "-inf"):
            return Decimal("-Infinity")
        if low == "nan":
            return Decimal("NaN")
        try:
            return Decimal(s.replace("_", ""))
        except InvalidOperation:
            return None
    return None


def _num_eq(a, b) -> bool:
    da, db = _to_decimal(a), _to_decimal(b)
    if da is None or db is None:
        return False
    if da.is_nan() or db.is_nan():
        return da.is_nan() and db.is_nan()
    return da == db


def _parse_temporal(s: str, like):
    s = s.strip()
    try:
        if isinstance(like, _dt.date):
            if isinstance(like, _dt.datetime) or len(s) > 10:
                return _dt.datetime.fromisoformat(s.replace(" ", "T", 1) if len(s) > 10 else s)
            return _dt.date.fromisoformat(s)
        if isinstance(like, _dt.time):
            return _dt.time.fromisoformat(s)
    except ValueError:
        return None
    return None


def _temporal_eq(a, b) -> bool:
    """a and b are date/datetime/time objects (maybe different kinds)."""
    if isinstance(a, _dt.datetime) and isinstance(b, _dt.datetime):
        if (a.tzinfo is None) != (b.tzinfo is None):
            return a.replace(tzinfo=None) == b.replace(tzinfo=None)
        return a == b
    if isinstance(a, _dt.datetime) and isinstance(b, _dt.date):
        return a.time() == _dt.time(0) and a.date() == b
    if isinstance(b, _dt.datetime) and isinstance(a, _dt.date):
        return b.time() == _dt.time(0) and b.date() == a
    if isinstance(a, _dt.time) and isinstance(b, _dt.time):
        if (a.tzinfo is None) != (b.tzinfo is None):
            return a.replace(tzinfo=None) == b.replace(tzinfo=None)
        return a == b
    try:
        return a == b
    except Exception:  # noqa: BLE001
        return False


_RE_INTERVAL_PART = re.compile(
    r"([+-]?\d+(?:\.\d+)?)\s*(years?|months?|mons?|weeks?|days?|hours?|minutes?|mins?|seconds?|secs?)\b"
    r"|([+-]?)(\d+):(\d\d)(?::(\d\d(?:\.\d+)?))?",
    re.I,
)
_INTERVAL_UNITS = {"y": 360 * 86400, "mo": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "mi": 60,
                   "s": 1}


def _parse_interval(s: str) -> _dt.timedelta | None:
    text = s.strip().lstrip("@").strip()
    if not text:
        return None
    pos = 0
    total = Decimal(0)
    for m in _RE_INTERVAL_PART.finditer(text):
        if text[pos:m.start()].strip():
            return None
        pos = m.end()
        if m.group(1) is not None:
            unit = m.group(2).lower()
            key = "mo" if unit.startswith("mon") else "mi" if unit.startswith("min") else unit[0]
            total += Decimal(m.group(1)) * _INTERVAL_UNITS[key]
        else:
            sign = -1 if m.group(3) == "-" else 1
            secs = int(m.group(4)) * 3600 + int(m.group(5)) * 60 + Decimal(m.group(6) or 0)
            total += sign * secs
    if text[pos:].strip() not in ("", "ago"):
        return None
    if text.endswith("ago"):
        total = -total
    return _dt.timedelta(seconds=float(total))


def parse_pg_array(s: str):
    """Parse a PostgreSQL array literal ('{1,2,"a b",NULL}', nested too) into lists of
    str/None; return s unchanged when it is not one."""
    t = s.strip()
    if t.startswith("[") and "=" in t[:40]:  # '[0:1]={1,2}' bounds decoration
        t = t[t.index("=") + 1:].strip()
    if not (t.startswith("{") and t.endswith("}")):
        return s
    pos = 0

    def parse() -> list | None:
        nonlocal pos
        assert t[pos] == "{"
        pos += 1
        items: list = []
        if t[pos:pos + 1] == "}":
            pos += 1
            return items
        while pos < len(t):
            while pos < len(t) and t[pos] in " \t\n":
                pos += 1
            if t[pos] == "{":
                items.append(parse())
            elif t[pos] == '"':
                pos += 1
                buf = []
                while pos < len(t) and t[pos] != '"':
                    if t[pos] == "\\":
                        pos += 1
                    buf.append(t[pos])
                    pos += 1
                pos += 1
                items.append("".join(buf))
            else:
                start = pos
                while pos < len(t) and t[pos] not in ",}":
                    pos += 1
                raw = t[start:pos].strip()
                items.append(None if raw.upper() == "NULL" else raw)
            while pos < len(t) and t[pos] in " \t\n":
                pos += 1
            if pos < len(t) and t[pos] == ",":
                pos += 1
                continue
            if pos < len(t) and t[pos] == "}":
                pos += 1
                return items
            raise ValueError("bad array")
        raise ValueError("bad array")

    try:
        out = parse()
        if pos != len(t):
            return s
        return out
    except (ValueError, IndexError, AssertionError):
        return s


def _is_num(v) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def values_equal(expected, actual) -> bool:
    """Lenient equality between a rule's value and a query's value (symmetric).

    - None equals only None (and MISSING, the unknown value, equals anything).
    - Numbers (int/float/Decimal, not bool) compare numerically (9.99 == Decimal('9.99'));
      a str is parsed as a number first ('5' == 5, ' 9.99' == 9.99, 'NaN' == nan;
      NaN equals NaN as in PostgreSQL).
    - bool equals bool, or a str PostgreSQL reads as that boolean ('t', 'true', 'yes',
      'on', '1' / 'f', 'false', 'no', 'off', '0'); never a number.
    - date/datetime/time equal each other (a date equals a midnight datetime; when exactly
      one side is timezone-aware the wall-clock values are compared) or an ISO-8601 str
      ('2024-01-02', '2024-01-02 03:04:05+00', 'T' or ' ' separator).
    - timedelta equals a PostgreSQL interval str ('1 day 02:00:00', '3 days', '01:00:00',
      '1 mon' = 30 days).
    - bytes/bytearray/memoryview equal bytes, a '\\x..' hex str, or a str whose UTF-8
      encoding is those bytes.
    - UUID equals a str spelling it in any case/format uuid.UUID accepts.
    - list/tuple equal element-wise (same length) a list/tuple or a PostgreSQL array str
      ('{1,2,NULL}'); dict equals a JSON str that decodes to an equal dict (and a list
      equals a JSON array str when it is not a PostgreSQL array str).
    - str vs str: exact. Anything else vs str: str(value) == s. Otherwise ==.
    """
    if expected is actual:
        return True
    te = type(expected)
    ta = type(actual)
    if te is ta and te in (str, int):
        return expected == actual
    if te is int and ta is str or te is str and ta is int:  # the common '5' vs 5
        i, s = (expected, actual) if te is int else (actual, expected)
        try:
            return int(s) == i
        except ValueError:
            pass  # ' 5.0', '1e1' ... take the long way
    if expected is MISSING or actual is MISSING:
        return True
    if expected is None or actual is None:
        return False
    try:
        return _veq(expected, actual) or _veq(actual, expected)
    except Exception:  # noqa: BLE001 - user-supplied oddities
        return False


def _veq(a, b) -> bool:
    """One direction of values_equal (the caller also tries (b, a))."""
    if isinstance(a, (bytearray, memoryview)):
        a = bytes(a)
    if isinstance(b, (bytearray, memoryview)):
        b = bytes(b)
    if isinstance(a, bool):
        if isinstance(b, bool):
            return a == b
        if isinstance(b, str):
            return _str_bool(b) is a
        return False
    if isinstance(b, bool):
        return False  # handled when the roles are swapped
    if _is_num(a):
        if _is_num(b) or isinstance(b, str):
            return _num_eq(a, b)
        return False
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, bytes):
        if isinstance(b, bytes):
            return a == b
        if isinstance(b, str):
            if b.startswith("\\x"):
                try:
                    return bytes.fromhex(b[2:]) == a
                except ValueError:
                    return False
            return b.encode("utf-8") == a
        return False
    if isinstance(a, (_dt.date, _dt.time)):
        if isinstance(b, str):
            p = _parse_temporal(b, a)
            return p is not None and _temporal_eq(a, p)
        if isinstance(b, (_dt.date, _dt.time)):
            return _temporal_eq(a, b)
        return False
    if isinstance(a, _dt.timedelta):
        if isinstance(b, str):
            p = _parse_interval(b)
            return p is not None and p == a
        return a == b
    if isinstance(a, uuid.UUID):
        if isinstance(b, str):
            try:
                return uuid.UUID(b.strip()) == a
            except ValueError:
                return False
        return a == b
    if isinstance(a, (list, tuple)):
        if isinstance(b, str):
            parsed = parse_pg_array(b)
            if parsed is b:
                if b.strip().startswith("["):
                    try:
                        parsed = json.loads(b)
                    except ValueError:
                        return False
                else:
                    return False
            b = parsed
        if isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
        return False
    if isinstance(a, dict):
        if isinstance(b, (str, bytes)):
            try:
                b = json.loads(b)
            except ValueError:
                return False
        if isinstance(b, dict):
            return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
        return False
    if isinstance(b, str) and not isinstance(a, str):
        return str(a) == b
    if isinstance(a, str):
        return False
    return a == b
