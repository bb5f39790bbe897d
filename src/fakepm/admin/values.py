"""Python values <-> JSON for the control API.

JSON has numbers, strings, booleans, null, lists and objects. Everything else a column, a
parameter or a COPY row can hold travels as a one-key object naming its type:

    Decimal("9.99")            {"$decimal": "9.99"}
    b"\\x00\\x01"                {"$bytes": "AAE="}                  (base64)
    datetime(2024, 1, 2, ...)  {"$datetime": "2024-01-02T03:04:05+00:00"}
    date / time                {"$date": "2024-01-02"} / {"$time": "03:04:05"}
    timedelta(seconds=90)      {"$interval": 90.0}                 (seconds)
    UUID(...)                  {"$uuid": "..."}
    float("nan"), inf          {"$float": "NaN"} / {"$float": "Infinity"}
    anything else              {"$text": str(value), "$type": "IPv4Address"}

Input accepts the same objects, and plain JSON values wherever a column type tells how to read
them (a rule's rows: "9.99" or 9.99 for a numeric column, as in YAML).
"""

from __future__ import annotations

import base64
import math
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

TAGS = ("$decimal", "$bytes", "$datetime", "$date", "$time", "$interval", "$uuid", "$float", "$text")


def to_json(v: Any) -> Any:
    """A JSON-able form of a Python value (tagged objects for what JSON lacks)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return {"$float": "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")}
    if isinstance(v, Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    if isinstance(v, time):
        return {"$time": v.isoformat()}
    if isinstance(v, timedelta):
        return {"$interval": v.total_seconds()}
    if isinstance(v, uuid.UUID):
        return {"$uuid": str(v)}
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [to_json(x) for x in v]
    return {"$text": str(v), "$type": type(v).__name__}


def _is_tagged(v: dict) -> bool:
    keys = list(v)
    return (len(keys) == 1 and keys[0] in TAGS) or (len(keys) == 2 and set(keys) == {"$text", "$type"})


def from_json(v: Any) -> Any:
    """The Python value of `to_json`'s output (plain JSON values pass through)."""
    if isinstance(v, list):
        return [from_json(x) for x in v]
    if not isinstance(v, dict):
        return v
    if not _is_tagged(v):
        return {k: from_json(x) for k, x in v.items()}
    tag = next(k for k in v if k != "$type")
    x = v[tag]
    try:
        if tag == "$decimal":
            return Decimal(str(x))
        if tag == "$bytes":
            return base64.b64decode(x, validate=True)
        if tag == "$datetime":
            return datetime.fromisoformat(x)
        if tag == "$date":
            return date.fromisoformat(x)
        if tag == "$time":
            return time.fromisoformat(x)
        if tag == "$interval":
            return timedelta(seconds=float(x))
        if tag == "$uuid":
            return uuid.UUID(str(x))
        if tag == "$float":
            return float(x)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{tag}: cannot read {x!r}: {e}") from None
    return str(x)  # $text: the value as text
