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


def _default_value(col, i: int, rnd: random.Random):
    """A cheap deterministic value for row i (0-based) of a column without faker."""
    t = col.type
    name = t.name
    if t.is_array:
        return []
    if name in ("int2", "int4", "int8", "oid"):
        return i + 1
    if name in ("numeric",):
        return Decimal(i + 1)
    if name in ("float4", "float8"):
        return float(i + 1)
    if name == "bool":
        return i % 2 == 0
    if name == "uuid":
        return uuid.UUID(int=rnd.getrandbits(128), version=4)
    if name in ("timestamptz",):
        return _BASE_TIME + timedelta(minutes=i)
    if name == "timestamp":
        return (_BASE_TIME + timedelta(minutes=i)).replace(tzinfo=None)
    if name == "date":
        return _BASE_TIME.date() + timedelta(days=i)
    if name in ("json", "jsonb"):
        return {"n": i + 1}
    if name == "bytea":
        return (i + 1).to_bytes(4, "big")
    if name in ("void",):
        return None
    return f"{col.name} {i + 1}"


def make_rows(columns, fakers: list, count: int, seed: int, locale: str | None = None,
              now: datetime | None = None) -> Callable[[], Iterator]:
    """columns: Column tuple; fakers: per column None or (provider, kwargs); now: Faker's pinned clock."""
    columns = tuple(columns)
    now = now or default_reference_time()
    fakers = list(fakers)
    uses_faker = any(f is not None for f in fakers)

    def rows() -> Iterator[tuple]:
        rnd = random.Random(seed)
        fake = None
        if uses_faker:
            from faker import Faker

            _pin_faker_clock()
            fake = Faker(locale) if locale else Faker()
            fake.seed_instance(seed)
            providers = [getattr(fake, f[0]) if f else None for f in fakers]
        else:
            providers = [None] * len(columns)
        coercers = [c.type.coerce for c in columns]
        for i in range(count):
            row = []
            token = _pinned_now.set(now) if uses_faker else None
            for col, spec, provider, coerce in zip(columns, fakers, providers, coercers):
                if provider is not None:
                    v = provider(**spec[1])
                    if isinstance(v, date) and not isinstance(v, datetime) and col.type.name in ("timestamp", "timestamptz"):
                        v = datetime(v.year, v.month, v.day)
                    row.append(coerce(v) if v is not None else None)
                else:
                    row.append(_default_value(col, i, rnd))
            if token is not None:
                _pinned_now.reset(token)
            yield tuple(row)

    return rows
