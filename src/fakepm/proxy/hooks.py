"""Proxy hooks: the programmable part of `fakepm proxy` (and of the recorder, which is a hook).

Subclass `ProxyHooks` and override what you need; every method has a do-nothing default.
Hooks run on the connection's relay thread, in the order they were given.

    class Mask(ProxyHooks):
        def on_query(self, sql, conn):
            if sql.startswith("DELETE"):
                return PgError("42501", "deletes are disabled by the proxy")   # answer locally
            return sql.replace("FROM users", "FROM users_view")              # rewrite
        def on_row(self, columns, row, conn):
            return ["***" if c.name == "email" else v for c, v in zip(columns, row)]

`Anonymize` is the ready-made hook that replaces column values both in query results and in a
logical replication stream (pgoutput Insert/Update tuples) passing through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class ConnInfo:
    """Facts about one proxied client connection."""

    id: int
    user: str
    database: str
    parameters: dict  # the client's startup parameters
    upstream_parameters: dict = field(default_factory=dict)  # the server's ParameterStatus values
    replication: str | None = None
    transaction_status: str = "I"
    pid: int = 0  # the upstream session's backend key (what the client sees)
    secret: int = 0


@dataclass(frozen=True)
class ColumnInfo:
    """A result column as a hook sees it: name, type name, type OID, table OID (0 if computed)."""

    name: str
    type: str
    type_oid: int
    table_oid: int = 0


class ProxyHooks:
    """Override any of these. Returning None always means "leave it as it is"."""

    def on_connect(self, conn: ConnInfo) -> None:
        """A client is authenticated and its upstream connection is ready."""

    def on_query(self, sql: str, conn: ConnInfo):
        """Before a statement (simple Query or Parse) goes upstream.

        Return None to pass it on, a str to send that SQL instead, or answer locally
        without asking upstream (simple and extended protocol): a `fakepm.Result` (see
        `answer()`) or a `PgError`.
        """
        return None

    def on_row(self, columns: list, row: list, conn: ConnInfo):
        """A DataRow coming back: natural Python values; return a new list to change it."""
        return None

    def on_change(self, relation: str, columns: list, row: list, conn: ConnInfo):
        """A tuple of a pgoutput Insert/Update/Delete in a replication stream passing through
        (called for the new tuple and for the key/old tuple when there is one). `relation` is
        "schema.table", `columns` the column names (from the Relation message), `row` natural
        values (None for NULL, unchanged TOAST and non-key columns of a key tuple). Return a
        new list to change it."""
        return None

    def on_exchange(self, exchange, conn: ConnInfo) -> None:
        """A statement finished (tracker.Exchange: sql, params(), fields, rows, tag, error ...)."""

    def on_disconnect(self, conn: ConnInfo) -> None:
        """The client or the upstream went away."""


def answer(columns=None, rows=(), tag: str | None = None):
    """A local answer for `on_query`: columns {name: type}, rows of natural values, optional tag."""
    from ..answers.rules import reply_result

    return reply_result(columns, rows, tag)


def pseudonym(value: Any) -> str | None:
    """A stable, irreversible stand-in for a value (same input -> same output): 'anon-<hash>'."""
    if value is None:
        return None
    return "anon-" + hashlib.sha256(str(value).encode()).hexdigest()[:10]


class Anonymize(ProxyHooks):
    """Replace column values in query results and in pgoutput Insert/Update tuples.

    `columns` maps a column to a replacement: a callable (value -> new value) or a constant.
    Keys are "column" (any table), "table.column" or "schema.table.column". Query results
    carry only column names, so there the last part of the key is compared with the column
    name; the replication stream knows the relation, so there the whole key must fit.
    """

    def __init__(self, columns: dict[str, Any] | None = None, **kw: Any):
        self.columns = dict(columns or {}, **kw)

    def _replace(self, value: Any, how: Any) -> Any:
        if value is None:
            return None
        return how(value) if callable(how) else how

    def _lookup_result(self, name: str):
        for key, how in self.columns.items():
            if key == name or key.rsplit(".", 1)[-1] == name:
                return how
        return _MISSING

    def _lookup_relation(self, relation: str, name: str):
        schema, _, table = relation.partition(".")
        for key in (f"{relation}.{name}", f"{table}.{name}", name):
            if key in self.columns:
                return self.columns[key]
        return _MISSING

    def on_row(self, columns, row, conn):
        out = list(row)
        changed = False
        for i, c in enumerate(columns):
            how = self._lookup_result(c.name)
            if how is not _MISSING:
                out[i] = self._replace(out[i], how)
                changed = True
        return out if changed else None

    def on_change(self, relation, columns, row, conn):
        out = list(row)
        changed = False
        for i, name in enumerate(columns):
            how = self._lookup_relation(relation, name)
            if how is not _MISSING:
                out[i] = self._replace(out[i], how)
                changed = True
        return out if changed else None


class _Missing:
    pass


_MISSING = _Missing()


class Log(ProxyHooks):
    """Log every finished statement through a callable (print by default)."""

    def __init__(self, write: Callable[[str], None] = print):
        self.write = write

    def on_exchange(self, exchange, conn):
        outcome = f"ERROR {exchange.error.code}" if exchange.error else (exchange.tag or "")
        self.write(f"#{conn.id} {exchange.sql!r} {exchange.params()!r} -> {outcome}")
