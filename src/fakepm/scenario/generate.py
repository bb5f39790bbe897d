"""Generated rows (`generate: {rows, seed}`): deterministic per seed, produced lazily.

`make_rows(...)` returns a zero-argument callable that yields fresh rows each time it is
called (Result.rows accepts that): a million rows never sit in memory, and every call --
every query, every connection, every process -- yields the same rows for the same seed.

Columns with `faker: PROVIDER` (and optional `args:`) use that Faker provider; the others
get cheap values derived from the row number and the seed (ids 1, 2, 3, ...), so big
generated results stay fast.
"""

from __future__ import annotations

import contextvars
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Iterator

_faker_probe = None

# Faker's relative dates (date_time_this_year, past_date, ...) read the clock; generated rows
# must not change between two queries, so during generation Faker's clock is pinned to a
# reference time (`generate: {now: ...}`, else midnight UTC of the day the scenario loaded).
_pinned_now: contextvars.ContextVar = contextvars.ContextVar("fakepm_faker_now", default=None)


def _pin_faker_clock() -> None:
    import faker.providers.date_time as dtp

    real = dtp.datetime
    if getattr(real, "_fakepm_pinned", False):
        return

    class PinnedClock(real):  # type: ignore[misc, valid-type]
        _fakepm_pinned = True

        @classmethod
        def now(cls, tz=None):
            ref = _pinned_now.get()
            if ref is None:
                return real.now(tz)
            return ref.astimezone(tz) if tz is not None else ref.replace(tzinfo=None)

    dtp.datetime = PinnedClock


def default_reference_time() -> datetime:
    today = datetime.now(timezone.utc).date()
    return datetime(today.year, today.month, today.day, tzinfo=timezone.utc)


def faker_providers_probe():
    """One shared Faker instance used only to check provider names at load time."""
    global _faker_probe
    if _faker_probe is None:
        from faker import Faker

        _faker_probe = Faker()
    return _faker_probe


def has_provider(name: str) -> bool:
    fake = faker_providers_probe()
    return not name.startswith("_") and callable(getattr(fake, name, None))


def provider_names() -> list[str]:
    fake = faker_providers_probe()
    return [n for n in dir(fake) if not n.startswith("_")]


_BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _default_maker(col, rnd: random.Random) -> Callable[[int], object]:
    """A cheap deterministic value function of the row index (0-based) for a column without faker."""
    t = col.type
    name = t.name
    if t.is_array:
        return lambda i: []
    if name in ("int2", "int4", "int8", "oid"):
        return lambda i: i + 1
    if name == "numeric":
        return lambda i: Decimal(i + 1)
    if name in ("float4", "float8"):
        return lambda i: float(i + 1)
    if name == "bool":
        return lambda i: i % 2 == 0
    if name == "uuid":
        return lambda i: uuid.UUID(int=rnd.getrandbits(128), version=4)
    if name == "timestamptz":
        return lambda i: _BASE_TIME + timedelta(minutes=i)
    if name == "timestamp":
        base = _BASE_TIME.replace(tzinfo=None)
        return lambda i: base + timedelta(minutes=i)
    if name == "date":
        base_date = _BASE_TIME.date()
        return lambda i: base_date + timedelta(days=i)
    if name in ("json", "jsonb"):
        return lambda i: {"n": i + 1}
    if name == "bytea":
        return lambda i: (i + 1).to_bytes(8, "big")
    if name == "void":
        return lambda i: None
    prefix = f"{col.name} "
    return lambda i: prefix + str(i + 1)


def _faker_cell(col, provider, kwargs: dict) -> Callable[[int], object]:
    coerce = col.type.coerce
    as_datetime = col.type.name in ("timestamp", "timestamptz")

    def cell(i: int):
        v = provider(**kwargs)
        if v is None:
            return None
        if as_datetime and isinstance(v, date) and not isinstance(v, datetime):
            v = datetime(v.year, v.month, v.day)
        return coerce(v)

    return cell


def make_rows(columns, fakers: list, count: int, seed: int, locale: str | None = None,
              now: datetime | None = None) -> Callable[[], Iterator]:
    """columns: Column tuple; fakers: per column None or (provider, kwargs); now: Faker's pinned clock."""
    columns = tuple(columns)
    now = now or default_reference_time()
    fakers = list(fakers)
    uses_faker = any(f is not None for f in fakers)

    def rows() -> Iterator[tuple]:
        rnd = random.Random(seed)
        if not uses_faker:
            makers = [_default_maker(c, rnd) for c in columns]
            for i in range(count):
                yield tuple([f(i) for f in makers])
            return
        from faker import Faker

        _pin_faker_clock()
        fake = Faker(locale) if locale else Faker()
        fake.seed_instance(seed)
        cells = []
        for col, spec in zip(columns, fakers):
            if spec is None:
                cells.append(_default_maker(col, rnd))
            else:
                cells.append(_faker_cell(col, getattr(fake, spec[0]), spec[1]))
        for i in range(count):
            token = _pinned_now.set(now)
            try:
                row = tuple([f(i) for f in cells])
            finally:
                _pinned_now.reset(token)
            yield row

    return rows
