"""Text output under a session's settings: DateStyle, IntervalStyle, TimeZone, extra_float_digits,
bytea_output -- what `SET DateStyle = 'German'` and friends change, as PostgreSQL's
EncodeDateOnly / EncodeDateTime / EncodeInterval / float8out / byteaout do.

The type registry's text encoders (protocol/types.py) write the defaults (ISO, MDY;
postgres; UTC; 1; hex). `style_of(settings)` is None for those (the fast path stays as it
is); otherwise `styled(pgtype, style)` gives the encoder to use instead for the types whose
text the settings change (date, timestamp, timestamptz, interval, float4, float8, bytea), or
None when the type's text does not depend on them. Input too: `styled_input(pgtype, style)` reads
a timestamptz written without a zone in the session's TimeZone. Sans-I/O, no state: the session
keeps the style it last computed (session/commands.py) and session/encode.py asks here.

Not covered: values inside arrays and records keep the default text.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Callable, NamedTuple

from .fardates import FarDateTime, weekday
from .types import timestamptz_in_zone

_DEFAULTS = {"datestyle": "iso, mdy", "intervalstyle": "postgres", "timezone": "utc", "extra_float_digits": "1",
             "bytea_output": "hex"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TextStyle(NamedTuple):
    dates: str  # ISO | SQL | Postgres | German
    order: str  # MDY | DMY | YMD
    interval: str  # postgres | postgres_verbose | sql_standard | iso_8601
    timezone: str  # the TimeZone setting as written
    extra_float_digits: int
    bytea_escape: bool


def parse_datestyle(value: str, current: tuple[str, str] = ("ISO", "MDY")) -> tuple[str, str]:
    """'German' -> (German, DMY); 'SQL, DMY' -> (SQL, DMY); parts not given keep `current`
    (German alone sets DMY unless an order is given, as PostgreSQL's check_datestyle)."""
    style, order = current
    new_style = new_order = None
    for part in (p.strip().lower() for p in value.replace(" ", ",").split(",") if p.strip()):
        if part == "iso":
            new_style = "ISO"
        elif part == "sql":
            new_style = "SQL"
        elif part.startswith("postgres"):
            new_style = "Postgres"
        elif part == "german":
            new_style = "German"
            if new_order is None:
                new_order = "DMY"
        elif part in ("ymd",):
            new_order = "YMD"
        elif part in ("dmy", "euro", "european"):
            new_order = "DMY"
        elif part in ("mdy", "us", "noneuro", "noneuropean"):
            new_order = "MDY"
        elif part == "default":
            new_style, new_order = "ISO", "MDY"
        else:
            raise ValueError(f'invalid value for parameter "DateStyle": "{value}"')
    return new_style or style, new_order or order


def style_of(settings: dict) -> TextStyle | None:
    """The session's style, None when every setting is at the default (the registry's text)."""
    ds = settings.get("datestyle", "ISO, MDY")
    ist = settings.get("intervalstyle", "postgres")
    tz = settings.get("timezone", "UTC")
    efd = settings.get("extra_float_digits", "1")
    bo = settings.get("bytea_output", "hex")
    if ds.lower() in ("iso, mdy", "iso,mdy", "iso") and ist.lower() == "postgres" and tz.lower() in (
            "utc", "etc/utc", "gmt", "z", "zulu", "uct", "etc/uct", "universal") and str(efd).strip() in (
            "1", "2", "3") and bo.lower() == "hex":
        return None
    try:
        dates, order = parse_datestyle(ds)
    except ValueError:
        dates, order = "ISO", "MDY"
    try:
        digits = int(str(efd).strip())
    except ValueError:
        digits = 1
    return TextStyle(dates, order, ist.lower(), tz, digits, bo.lower() == "escape")


def styled(t, style: TextStyle) -> Callable | None:
    """The text encoder of type `t` under `style`, or None when the default is right."""
    name = t.name
    if name in ("float8", "float4"):
        if style.extra_float_digits > 0:
            return None
        digits = (15 if name == "float8" else 6) + style.extra_float_digits
        return _float(t.encode_text, max(1, digits))
    if name == "bytea":
        return _bytea_escape if style.bytea_escape else None
    if name == "interval":
        return None if style.interval == "postgres" else _interval(t.encode_text, style.interval)
    if name in ("date", "timestamp", "timestamptz"):
        zone = _zone(style.timezone) if name == "timestamptz" else None
        if style.dates == "ISO" and (zone is None or zone is timezone.utc):
            return None
        return _datetime(t.encode_text, name, style, zone)
    return None


def styled_input(t, style: TextStyle) -> Callable | None:
    """The text decoder of type `t` under `style`, or None when the default is right: a
    timestamptz written without a zone is local time in the session's TimeZone."""
    if t.name != "timestamptz":
        return None
    zone = _zone(style.timezone)
    if zone is timezone.utc:
        return None
    return lambda data: timestamptz_in_zone(data, zone)


# ------------------------------------------------------------------------------ floats, bytea
def _float(default, digits: int):
    def enc(v) -> bytes:
        if isinstance(v, float) and math.isfinite(v):
            return ("%.*g" % (digits, v)).encode()
        return default(v)
    return enc


def _bytea_escape(v) -> bytes:
    out = bytearray()
    for b in bytes(v):
        if b == 92:
            out += b"\\\\"
        elif 32 <= b <= 126:
            out.append(b)
        else:
            out += b"\\%03o" % b
    return bytes(out)


# ------------------------------------------------------------------------------ dates and times
@lru_cache(maxsize=64)
def _zone(name: str):
    if name.lower() in ("utc", "etc/utc", "gmt", "z", "zulu", "uct", "etc/uct", "universal"):
        return timezone.utc
    m = re.fullmatch(r"\s*([+-]?)(\d{1,2})(?::(\d\d))?\s*", name)
    if m:  # a POSIX-style offset: '+5' means 5 hours WEST of Greenwich (PostgreSQL follows POSIX)
        sign = -1 if m.group(1) != "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - an unknown zone: PostgreSQL refused the SET already
        return timezone.utc


_ISO = re.compile(rb"(\d{4,})-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(\.\d+)?)?([+-]\d\d(?::\d\d){0,2})?( BC)?$")


def _offset_text(off: timedelta) -> str:
    secs = int(off.total_seconds())
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    text = f"{sign}{h:02d}"
    if m or s:
        text += f":{m:02d}"
    if s:
        text += f":{s:02d}"
    return text


def _datetime(default, name: str, style: TextStyle, zone):
    def enc(v) -> bytes:
        abbrev = offset = None
        if name == "timestamptz" and isinstance(v, datetime):
            local = (v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)).astimezone(zone)
            off = local.utcoffset() or timedelta(0)
            offset = _offset_text(off)
            abbrev = local.tzname() or offset
            if abbrev.startswith(("+", "-")):
                abbrev = offset  # zones without an abbreviation: PostgreSQL prints the offset
            v = local.replace(tzinfo=None)
            text = v.isoformat(" ").encode()
        elif name == "timestamptz" and v.__class__ is FarDateTime:
            secs, abbrev = v.zone_at(zone)
            offset = _offset_text(timedelta(seconds=secs))
            if not abbrev or abbrev.startswith(("+", "-")):
                abbrev = offset
            text = FarDateTime(v.us + secs * 1_000_000, "timestamp").text().encode()
        else:
            text = default(v)
        m = _ISO.match(text)
        if m is None:
            return text  # infinity, -infinity
        y, mo, d, hh, mi, ss, frac, _tz, bc = m.groups()
        y, mo, d = y.decode(), mo.decode(), d.decode()
        frac = (frac or b"").decode().rstrip("0").rstrip(".") if frac else ""
        bc = " BC" if bc else ""
        if name == "date":
            return (_date_part(style, y, mo, d) + bc).encode()
        clock = f"{hh.decode()}:{mi.decode()}:{ss.decode()}{frac}"
        s = style.dates
        if s == "ISO":
            return f"{y}-{mo}-{d} {clock}{offset or ''}{bc}".encode()
        tz = f" {abbrev}" if abbrev else ""
        if s == "Postgres":
            wd = _DAYS[weekday(1 - int(y) if bc else int(y), int(mo), int(d))]
            mon = _MONTHS[int(mo) - 1]
            mid = f"{d} {mon}" if style.order == "DMY" else f"{mon} {d}"
            return f"{wd} {mid} {clock} {y}{tz}{bc}".lstrip().encode()
        return f"{_date_part(style, y, mo, d)} {clock}{tz}{bc}".encode()
    return enc


def _date_part(style: TextStyle, y: str, mo: str, d: str) -> str:
    s = style.dates
    if s == "ISO":
        return f"{y}-{mo}-{d}"
    if s == "German":
        return f"{d}.{mo}.{y}"
    if s == "SQL":
        return f"{d}/{mo}/{y}" if style.order == "DMY" else f"{mo}/{d}/{y}"
    return f"{d}-{mo}-{y}" if style.order == "DMY" else f"{mo}-{d}-{y}"  # Postgres


# ------------------------------------------------------------------------------ intervals
def _fields(v):
    from .types import _interval_fields

    return _interval_fields(v)


def _interval(default, style: str):
    def enc(v) -> bytes:
        try:
            months, days, us = _fields(v)
        except Exception:  # noqa: BLE001 - not canonical: the default's coercion says what is wrong
            return default(v)
        return _encode_interval(months, days, us, style).encode()
    return enc


def _split_us(us: int) -> tuple[int, int, int, int]:
    a = abs(us)
    h, r = divmod(a, 3_600_000_000)
    m, r = divmod(r, 60_000_000)
    s, f = divmod(r, 1_000_000)
    return h, m, s, f


def _secs(s: int, f: int, neg: bool = False) -> str:
    text = "%s%d" % ("-" if neg else "", s)
    if f:
        text += ("." + "%06d" % f).rstrip("0")
    return text


def _encode_interval(months: int, days: int, us: int, style: str) -> str:
    """EncodeInterval (src/backend/utils/adt/datetime.c) for sql_standard, iso_8601, postgres_verbose."""
    year = int(months / 12)
    mon = months - year * 12
    hour = int(us / 3_600_000_000)
    rest = us - hour * 3_600_000_000
    minute = int(rest / 60_000_000)
    rest -= minute * 60_000_000
    sec, fsec = int(rest / 1_000_000), rest - int(rest / 1_000_000) * 1_000_000
    if style == "sql_standard":
        neg = year < 0 or mon < 0 or days < 0 or us < 0
        pos = year > 0 or mon > 0 or days > 0 or us > 0
        has_ym = bool(year or mon)
        has_dt = bool(days or us)
        standard = not (neg and pos) and not (has_ym and has_dt)
        if not neg and not pos:
            return "0"
        if not standard:  # mixed: every field signed (PostgreSQL forces the signs)
            ys = "-" if year < 0 or mon < 0 else "+"
            ds = "-" if days < 0 else "+"
            ts = "-" if us < 0 else "+"
            return "%s%d-%d %s%d %s%d:%02d:%s" % (ys, abs(year), abs(mon), ds, abs(days), ts, abs(hour), abs(minute),
                                                 _pad2(abs(sec), abs(fsec)))
        sign = "-" if neg else ""
        if has_ym:
            return "%s%d-%d" % (sign, abs(year), abs(mon))
        if days:
            return "%s%d %d:%02d:%s" % (sign, abs(days), abs(hour), abs(minute), _pad2(abs(sec), abs(fsec)))
        return "%s%d:%02d:%s" % (sign, abs(hour), abs(minute), _pad2(abs(sec), abs(fsec)))
    if style == "iso_8601":
        if not (year or mon or days or us):
            return "PT0S"
        out = "P"
        for value, unit in ((year, "Y"), (mon, "M"), (days, "D")):
            if value:
                out += f"{value}{unit}"
        if hour or minute or sec or fsec:
            out += "T"
            if hour:
                out += f"{hour}H"
            if minute:
                out += f"{minute}M"
            if sec or fsec:
                neg = sec < 0 or fsec < 0
                out += _secs(abs(sec), abs(fsec), neg) + "S"
        return out
    # postgres_verbose: AddVerboseIntPart -- the first non-zero field decides "ago"
    out = "@"
    is_zero, is_before = True, False
    for value, unit in ((year, "year"), (mon, "mon"), (days, "day"), (hour, "hour"), (minute, "min")):
        if not value:
            continue
        if is_zero:
            is_before = value < 0
            value = abs(value)
        elif is_before:
            value = -value
        out += " %d %s%s" % (value, unit, "" if value == 1 else "s")
        is_zero = False
    if sec or fsec:
        out += " "
        if sec < 0 or (sec == 0 and fsec < 0):
            if is_zero:
                is_before = True
            elif not is_before:
                out += "-"
        elif is_before:
            out += "-"
        out += _secs(abs(sec), abs(fsec)) + " sec" + ("s" if abs(sec) != 1 or fsec else "")
        is_zero = False
    if is_zero:
        out += " 0"
    if is_before:
        out += " ago"
    return out


def _pad2(s: int, f: int) -> str:
    text = "%02d" % s
    if f:
        text += ("." + "%06d" % f).rstrip("0")
    return text


__all__ = ["TextStyle", "style_of", "styled", "parse_datestyle"]
