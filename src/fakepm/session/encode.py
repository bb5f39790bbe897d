"""Results -> wire bytes: RowDescription and DataRows, with per-format caches for static answers."""

from __future__ import annotations

from typing import Sequence

from ..answers.result import Column, Result
from ..protocol import messages as m
from ..protocol.errors import PgError


def resolve_formats(codes: Sequence[int], n: int, what: str = "result") -> tuple[int, ...]:
    """Bind format codes: none = all text, one = applies to all, n = one per column."""
    if not codes:
        return (0,) * n
    for c in codes:
        if c not in (0, 1):
            raise PgError("22023", f"unsupported format code: {c}")
    if len(codes) == 1:
        return (codes[0],) * n
    if len(codes) != n:
        if what == "result":
            raise PgError("08P01", f"bind message has {len(codes)} result formats but query has {n} columns")
        raise PgError("08P01", f"bind message has {len(codes)} parameter formats but {n} parameters")
    return tuple(codes)


def field_descriptions(columns: Sequence[Column], formats: Sequence[int]) -> tuple[m.FieldDescription, ...]:
    return tuple(
        m.FieldDescription(
            name=c.name,
            type_oid=c.type.oid,
            type_size=c.type.typlen,
            type_modifier=c.typmod,
            format=f,
            table_oid=c.table_oid,
            column_attnum=c.attnum,
        )
        for c, f in zip(columns, formats)
    )


def row_description(result: Result, formats: tuple[int, ...]) -> bytes:
    key = ("T", formats)
    cached = result.wire_cache.get(key)
    if cached is None:
        cached = m.row_description(field_descriptions(result.columns, formats))
        result.wire_cache[key] = cached
    return cached


def row_encoders(columns: Sequence[Column], formats: Sequence[int], style=None) -> list:
    """Each column's encoder for its format; `style` (protocol/textstyle.py, the session's DateStyle,
    IntervalStyle, TimeZone, extra_float_digits, bytea_output) changes text where PostgreSQL's does."""
    if style is None:
        return [c.type.encode_binary if f else c.type.encode_text for c, f in zip(columns, formats)]
    from ..protocol.textstyle import styled

    return [c.type.encode_binary if f else (styled(c.type, style) or c.type.encode_text)
            for c, f in zip(columns, formats)]


def encode_row(encoders: list, row: Sequence, columns: Sequence[Column]) -> bytes:
    if len(row) != len(encoders):  # zip would send a short DataRow (or drop values) silently
        names = ", ".join(c.name for c in columns)
        raise PgError("XX000", f"fakepm: a row has {len(row)} values for the {len(encoders)} columns "
                               f"({names}): {row!r:.200}")
    try:
        return m.data_row([None if v is None else enc(v) for enc, v in zip(encoders, row)])
    except (TypeError, ValueError, OverflowError, AttributeError) as e:
        bad = _find_bad_column(encoders, row, columns)
        raise PgError("XX000", f"fakepm could not encode {bad}: {e}") from None


def _find_bad_column(encoders, row, columns) -> str:
    for enc, v, c in zip(encoders, row, columns):
        if v is None:
            continue
        try:
            enc(v)
        except Exception:  # noqa: BLE001 - diagnosing
            return f"value {v!r} of column {c.name!r} as {c.type.name}"
    return f"row {row!r}"


def static_rows(result: Result, formats: tuple[int, ...], style=None) -> list[bytes]:
    """DataRow bytes for a static answer, encoded once per format vector (and text style)."""
    key = ("D", formats) if style is None else ("D", formats, style)
    cached = result.wire_cache.get(key)
    if cached is None:
        encs = row_encoders(result.columns, formats, style)
        cached = [encode_row(encs, r, result.columns) for r in result.rows]
        result.wire_cache[key] = cached
    return cached


def static_rows_joined(result: Result, formats: tuple[int, ...], style=None) -> bytes:
    key = ("J", formats) if style is None else ("J", formats, style)
    cached = result.wire_cache.get(key)
    if cached is None:
        cached = b"".join(static_rows(result, formats, style))
        result.wire_cache[key] = cached
    return cached
