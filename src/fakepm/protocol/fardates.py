"""Dates and timestamps PostgreSQL has and Python's `datetime` has not: BC, and after year 9999.

PostgreSQL's dates run from 4714-11-24 BC to 5874897-12-31 and its timestamps to 294276-12-31;
Python's from year 1 to 9999. A value outside Python's range is a `FarDateTime`: PostgreSQL's own
representation (microseconds from 2000-01-01 00:00, UTC for timestamptz) with the type it was read
as. Bound parameters and binary rows decode to it, the codecs encode it back as PostgreSQL prints
it, and the calendar arithmetic reuses Python's: the Gregorian calendar repeats every 400 years
(146,097 days), so a far date is shifted into years 1-9999 by whole cycles, converted there, and
shifted back. The same shift gives a zone's offset as PostgreSQL extrapolates it (before the
first transition: local mean time; after the last: the zone's last rule)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

_CYCLE_DAYS = 146_097  # days in 400 Gregorian years
_CYCLE_YEARS = 400
_DAY_US = 86_400_000_000
_EPOCH_ORD = date(2000, 1, 1).toordinal()
_MAX_ORD = date.max.toordinal()

# PostgreSQL's limits (datatype/timestamp.h): Julian day 0 (4714-11-24 BC) for both; the end
# of date (5874897-12-31) and of timestamp (294276-12-31 23:59:59.999999)
MIN_DAYS = -2_451_545  # 4714-11-24 BC, days from 2000-01-01
MAX_DATE_DAYS = 2_145_031_948  # 5874897-12-31
MAX_TIMESTAMP_US = 9_223_371_331_199_999_999  # 294276-12-31 23:59:59.999999


class FarDateTime:
    """A date, timestamp or timestamptz outside Python's years 1-9999. `us`: microseconds from
    2000-01-01 00:00 (UTC for timestamptz); `kind`: "date", "timestamp" or "timestamptz".
    str() is PostgreSQL's ISO text (`0044-03-15 BC`, `10000-01-01 00:00:00+00`)."""

    __slots__ = ("us", "kind")

    def __init__(self, us: int, kind: str):
        self.us = us
        self.kind = kind

    def __eq__(self, other) -> bool:
        return other.__class__ is FarDateTime and other.us == self.us and other.kind == self.kind

    def __hash__(self) -> int:
        return hash((self.us, self.kind))

    def __lt__(self, other) -> bool:
        return self.us < other.us

    def __repr__(self) -> str:
        return f"FarDateTime({self.text()!r}, {self.kind!r})"

    def __str__(self) -> str:
        return self.text()

    def as_kind(self, kind: str) -> FarDateTime:
        """The same instant read as another type (timestamps lose their time of day as a date)."""
        if kind == self.kind:
            return self
        us = self.us - self.us % _DAY_US if kind == "date" else self.us
        return FarDateTime(us, kind)

    def text(self, offset_seconds: int = 0) -> str:
        """PostgreSQL's ISO output; timestamptz in the zone `offset_seconds` east of UTC."""
        us = self.us + offset_seconds * 1_000_000
        days, in_day = divmod(us, _DAY_US)
        y, mo, d = ymd(days)
        year = f"{1 - y:04d}" if y <= 0 else f"{y:04d}"
        bc = " BC" if y <= 0 else ""
        if self.kind == "date":
            return f"{year}-{mo:02d}-{d:02d}{bc}"
        secs, frac = divmod(in_day, 1_000_000)
        hh, rest = divmod(secs, 3600)
        mi, ss = divmod(rest, 60)
        clock = f"{hh:02d}:{mi:02d}:{ss:02d}" + (f".{frac:06d}".rstrip("0") if frac else "")
        zone = offset_text(offset_seconds) if self.kind == "timestamptz" else ""
        return f"{year}-{mo:02d}-{d:02d} {clock}{zone}{bc}"

    def zone_at(self, zone) -> tuple[int, str | None]:
        """(seconds east of UTC, abbreviation) of `zone` at this instant (timestamptz), as
        PostgreSQL extrapolates them."""
        days, in_day = divmod(self.us, _DAY_US)
        ordinal, _cycles = _shift(days + _EPOCH_ORD)
        near = datetime.fromordinal(ordinal).replace(tzinfo=timezone.utc) + timedelta(microseconds=in_day)
        local = near.astimezone(zone)
        off = local.utcoffset()
        return (int(off.total_seconds()) if off is not None else 0), local.tzname()


def offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}" + (f":{m:02d}" if m or s else "") + (f":{s:02d}" if s else "")


def _shift(ordinal: int) -> tuple[int, int]:
    """(an ordinal within Python's range on the same day of the 400-year cycle, cycles moved)."""
    if ordinal < 1:
        k = (1 - ordinal) // _CYCLE_DAYS + 1
        return ordinal + k * _CYCLE_DAYS, -k
    if ordinal > _MAX_ORD:
        k = (ordinal - _MAX_ORD) // _CYCLE_DAYS + 1
        return ordinal - k * _CYCLE_DAYS, k
    return ordinal, 0


def ymd(days: int) -> tuple[int, int, int]:
    """Astronomical (year, month, day) of `days` from 2000-01-01 (year 0 is 1 BC)."""
    ordinal, cycles = _shift(days + _EPOCH_ORD)
    d = date.fromordinal(ordinal)
    return d.year + cycles * _CYCLE_YEARS, d.month, d.day


def weekday(year: int, month: int, day: int) -> int:
    """Monday 0 ... Sunday 6 of an astronomical date (the 400-year cycle keeps weekdays)."""
    return (days_of(year, month, day) + 5) % 7  # 2000-01-01 was a Saturday


def days_of(year: int, month: int, day: int) -> int:
    """Days from 2000-01-01 of an astronomical date; ValueError for a day the month lacks."""
    cycles = 0
    if year < 1:
        cycles = (1 - year) // _CYCLE_YEARS + 1
    elif year > 9999:
        cycles = -((year - 9999) // _CYCLE_YEARS + 1)
    ordinal = date(year + cycles * _CYCLE_YEARS, month, day).toordinal()
    return ordinal - cycles * _CYCLE_DAYS - _EPOCH_ORD
