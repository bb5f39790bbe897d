"""Declared tables: the one place that knows table names, columns, keys and rows.

Used by type inference for parameters (`WHERE id = $1` -> the type of column id), COPY
(column types of the target table), the walsender (Relation messages, initial table copy),
and catalog answers (psql's `\\d`). Declared from YAML (`tables:`) or Python (`pg.table(...)`).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from .result import Column, coerce_rows, make_columns

FIRST_USER_OID = 16384


@dataclass
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    rows: list = field(default_factory=list)
    oid: int = 0
    replica_identity: str = "d"  # d default (key), f full, n nothing, i index

    @property
    def qualname(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def split_name(name: str, default_schema: str = "public") -> tuple[str, str]:
    """'public.t' -> ('public', 't'); 't' -> (default_schema, 't'); quotes removed."""
    parts = [p.strip().strip('"') for p in name.split(".")]
    if len(parts) == 1:
        return default_schema, parts[0]
    return parts[-2], parts[-1]


class Catalog:
    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self._oids = itertools.count(FIRST_USER_OID)
        self._lock = threading.Lock()

    def add(self, name: str, columns, *, key=(), rows=(), replica_identity: str = "d", oid: int | None = None,
            where: str = "table") -> Table:
        """Declare a table; rows are natural values checked against the column types now."""
        schema, tname = split_name(name)
        with self._lock:
            oid = oid or next(self._oids)
        cols = tuple(
            Column(c.name, c.type, c.typmod, table_oid=oid, attnum=i + 1) for i, c in enumerate(make_columns(columns))
        )
        names = [c.name for c in cols]
        for k in key:
            if k not in names:
                raise ValueError(f"{where} {schema}.{tname}: key column {k!r} is not one of its columns {names}")
        if replica_identity not in ("d", "f", "n", "i"):
            raise ValueError(f"{where} {schema}.{tname}: replica_identity must be d, f, n or i")
        table = Table(schema, tname, cols, tuple(key), coerce_rows(cols, rows, where=f"{where} {schema}.{tname} rows"),
                      oid, replica_identity)
        self.tables[table.qualname] = table
        return table

    def get(self, name: str, schema: str | None = None) -> Table | None:
        if schema is None:
            schema, name = split_name(name)
        t = self.tables.get(f"{schema}.{name}")
        if t is None and schema == "public":
            # unqualified names: fall back to any schema with that table name
            for table in self.tables.values():
                if table.name == name:
                    return table
        return t

    def by_oid(self, oid: int) -> Table | None:
        for t in self.tables.values():
            if t.oid == oid:
                return t
        return None

    def column_types(self, schema: str | None, table: str) -> dict | None:
        t = self.get(table, schema or "public")
        if t is None:
            return None
        return {c.name: c.type.name for c in t.columns}

    def __bool__(self) -> bool:
        return bool(self.tables)

    def clear(self) -> None:
        self.tables.clear()
