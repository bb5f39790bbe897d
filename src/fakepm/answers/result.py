"""What a responder says: the Result of one statement, and the Query it answers.

answers/ never builds wire bytes. A Result carries natural Python values; session/ encodes
them and may cache the encoding on the Result (`wire_cache`) so that a rule's answer is
encoded once per result-format vector and then served as prebuilt bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from ..protocol.errors import PgError
from ..protocol.types import REGISTRY, PgType
from ..sql.tags import classify
from .shape import shape_of


@dataclass(frozen=True)
class Column:
    """One result column. `type` accepts a PgType or a type name such as "int4" or "numeric(10,2)"."""

    name: str
    type: PgType
    typmod: int = -1
    table_oid: int = 0
    attnum: int = 0

    @classmethod
    def of(cls, name: str, spec: "str | PgType | Column") -> "Column":
        if isinstance(spec, Column):
            return spec
        if isinstance(spec, PgType):
            return cls(name, spec)
        t, typmod = REGISTRY.parse_type_spec(spec)
        return cls(name, t, typmod)


def make_columns(spec) -> tuple[Column, ...]:
    """Columns from a mapping {name: type}, a list of (name, type) pairs / Columns / {name,type} dicts."""
    if spec is None:
        return ()
    if isinstance(spec, dict):
        return tuple(Column.of(str(n), t) for n, t in spec.items())
    out = []
    for item in spec:
        if isinstance(item, Column):
            out.append(item)
        elif isinstance(item, dict):
            out.append(Column.of(str(item["name"]), item.get("type", "text")))
        else:
            name, t = item
            out.append(Column.of(str(name), t))
    return tuple(out)


def coerce_rows(columns: Sequence[Column], rows: Iterable, *, where: str = "rows") -> list[tuple]:
    """Validate natural values against their column types at rule creation.

    Rows may be sequences or mappings keyed by column name. A value that does not fit its
    column type raises ValueError naming the row, the column and the problem.
    """
    names = [c.name for c in columns]
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            unknown = set(row) - set(names)
            if unknown:
                raise ValueError(f"{where}[{i}]: unknown column(s) {sorted(unknown)}; columns are {names}")
            row = [row.get(n) for n in names]
        elif isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            if len(columns) == 1:
                row = [row]
            else:
                raise ValueError(f"{where}[{i}]: expected a list of {len(columns)} values, got {row!r}")
        if len(row) != len(columns):
            raise ValueError(
                f"{where}[{i}]: has {len(row)} value(s) but there are {len(columns)} column(s) {names}"
            )
        values = []
        for col, v in zip(columns, row):
            if v is None:
                values.append(None)
                continue
            try:
                values.append(col.type.coerce(v))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{where}[{i}], column {col.name!r}: {e}") from None
        out.append(tuple(values))
    return out


@dataclass
class Result:
    """The answer to one statement.

    columns None -> the statement returns no rows (NoData; e.g. INSERT without RETURNING).
    rows: a list of tuples of natural values, or a zero-argument callable returning an
    iterator (generated/streamed results: memory stays flat).
    tag None -> derived from the statement (`SELECT n`, `INSERT 0 n`, ...).
    """

    columns: tuple[Column, ...] | None = None
    rows: Any = ()
    tag: str | None = None
    error: PgError | None = None
    notices: tuple[PgError, ...] = ()
    notify: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    set_parameters: dict | None = None  # ParameterStatus to send after CommandComplete
    fault: Any = None  # a faults.FaultPlan (fault-injection issue)
    copy: Any = None  # a COPY answer (COPY issue)
    param_types: tuple[PgType, ...] | None = None  # for Describe Statement
    empty: bool = False  # EmptyQueryResponse
    formats: tuple | None = None  # forced result formats (a BINARY cursor's FETCH)
    static: bool = False  # rows are a fixed list: encodings may be cached on this object
    wire_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def iter_rows(self):
        rows = self.rows
        if callable(rows):
            return iter(rows())
        return iter(rows)


@dataclass(frozen=True)
class ConnectionInfo:
    """Facts about the connection a query arrived on (handlers and rules may look at them)."""

    id: int
    pid: int
    user: str
    database: str
    application_name: str
    parameters: dict
    peer: Any = None
    tls: bool = False
    replication: str | None = None  # None | "database" | "true"


@dataclass
class Query:
    """A statement as a rule or handler sees it."""

    sql: str
    params: list = field(default_factory=list)
    param_types: tuple = ()
    protocol: str = "simple"  # "simple" | "extended"
    connection: ConnectionInfo | None = None
    statement: str | None = None  # prepared statement name (extended)
    settings: dict = field(default_factory=dict)
    transaction_status: str = "I"
    describe_only: bool = False  # Describe Statement: params are unknown (None)
    raw_params: tuple = ()
    param_formats: tuple = ()
    _shape: Any = field(default=None, repr=False)

    @property
    def shape(self):
        if self._shape is None:
            self._shape = shape_of(self.sql)
        return self._shape

    @property
    def kind(self) -> str:
        return classify(self.sql)


class Deferred:
    """An answer that must be computed off the I/O thread (a Python handler) and/or after a delay.

    The server runs `compute()` on a worker thread (if given) after `delay` seconds and
    resumes the session with the Result it returns (or the PgError it raises).
    """

    __slots__ = ("compute", "delay", "label")

    def __init__(self, compute: Callable[[], Result] | None = None, delay: float = 0.0, label: str = ""):
        self.compute = compute
        self.delay = delay
        self.label = label

