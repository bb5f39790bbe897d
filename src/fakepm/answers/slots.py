"""The data of matching: a statement's Shape, its value positions (Slots), and MISSING.

A :class:`Shape` is one statement reduced to a template text (every value position replaced
by ``?``) plus the Slots in textual order; answers/shape.py makes them, answers/unify.py pairs
a rule's Shape with a query's, answers/paramtypes.py reads the hints for parameter types.

Slot values (``Slot.value``)
----------------------------
int for integer literals; ``decimal.Decimal`` for other numeric literals (``1.5``, ``1e5``);
str for string constants (after PostgreSQL unescaping: ``''``, ``E'\\n'``, dollar quotes,
``U&'\\0041'``); bool for TRUE/FALSE; None for NULL; ``bytes`` for ``'\\x...'::bytea``;
str of ``0``/``1`` digits for ``B'101'`` / ``X'1F'`` bit strings; the interval text for
``interval '1 day'``; a tuple of values for an ``ARRAY[...]`` of literals. A negative number
(``-5``) is one slot. ``ARRAY[...]`` containing parameters is one slot of kind ``"array"``
whose value is the tuple of element Slots. ``ORDER BY 1`` / ``GROUP BY 1`` and the
NULL/TRUE of ``IS NULL`` / ``IS TRUE`` are syntax, not slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MISSING", "Slot", "Shape"]


class _Missing:
    """A query parameter whose value is not known (yet): Describe before Bind."""

    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


# --------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Slot:
    """One value position of a statement.

    kind: "literal" (value is the Python value), "param" (index is the 1-based $n), or
    "array" (an ``ARRAY[...]`` holding parameters: value is the tuple of element Slots).
    cast: the PostgreSQL type name of the cast written directly around the slot
    (``$1::int4`` -> "int4", ``CAST($1 AS integer)`` -> "int4", ``'x'::pg_catalog.text`` ->
    "text", ``DATE '2024-01-02'`` -> "date", ``interval '1 day'`` -> "interval",
    ``$1::varchar(20)[]`` -> "varchar[]"); aliases become the catalog name (integer/int ->
    int4, bigint -> int8, smallint -> int2, real -> float4, double precision/float ->
    float8, decimal -> numeric, boolean -> bool, character varying -> varchar, char ->
    bpchar, timestamp with time zone -> timestamptz); type modifiers are dropped; unknown
    names are kept lower-cased (quoted ones as written) without a ``pg_catalog.`` prefix.
    For a chain (``$1::int4::text``) it is the innermost cast, the parameter's own type.
    """

    kind: str
    value: object = None
    index: int = 0
    cast: str | None = None


@dataclass(frozen=True)
class Shape:
    """A statement reduced to its template (see the module docstring).

    nparams is the highest $n the statement uses; hints (internal) carries what
    infer_param_types needs.
    """

    text: str
    slots: tuple[Slot, ...]
    parsed: bool
    kind: str
    nparams: int = 0
    hints: tuple = field(default=(), compare=False, repr=False)
