"""What a database starts with: declared tables and SQL scripts, as SQL the engine runs.

A DatabaseSetup is a snapshot: its SQL (DDL, then one COPY per table with rows, then the
scripts) is generated when it is made, so later changes to the Table objects do not change a
setup, and `key()` (the content hash that names the template) is stable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..answers.catalog import Table
from ..protocol.types import format_type
from .client import ident
from .errors import EngineError

# Bump when the generated SQL changes meaning: templates built by an older generator are not reused.
GENERATOR_VERSION = "1"
FIRST_USER_OID = 16384  # PostgreSQL's FirstNormalObjectId: below it, types every server knows by name


@dataclass(frozen=True)
class Step:
    """One thing to run: `sql` alone, or a COPY FROM STDIN statement with its `data`."""

    label: str  # for error messages: "declared tables", "rows of public.users", "schema script 2"
    sql: str
    data: bytes | None = None


_COPY_ESCAPES = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def _copy_field(text: str) -> str:
    return text.translate(_COPY_ESCAPES)


def _column_type(table: Table, col) -> str:
    t = col.type
    base = t.elem if t.is_array else t
    if t.oid >= FIRST_USER_OID or (base is not None and base.oid >= FIRST_USER_OID):
        raise EngineError(f"table {table.qualname}, column {col.name!r}: type {t.display!r} is not built into "
                          f"PostgreSQL, so fakepm cannot create it; declare the table in a schema: script instead")
    return format_type(t, col.typmod)


def table_steps(table: Table, grant_public: bool) -> tuple[str, Step | None]:
    """(DDL of one table, the COPY step of its rows or None)."""
    qname = f"{ident(table.schema)}.{ident(table.name)}"
    parts = [f"{ident(c.name)} {_column_type(table, c)}" for c in table.columns]
    pkey_name = f"{table.name}_pkey"
    if table.key:
        constraint = f"CONSTRAINT {ident(pkey_name)} " if table.replica_identity == "i" else ""
        parts.append(f"{constraint}PRIMARY KEY ({', '.join(ident(k) for k in table.key)})")
    ddl = [f"CREATE TABLE {qname} ({', '.join(parts)});"]
    if table.replica_identity == "f":
        ddl.append(f"ALTER TABLE {qname} REPLICA IDENTITY FULL;")
    elif table.replica_identity == "n":
        ddl.append(f"ALTER TABLE {qname} REPLICA IDENTITY NOTHING;")
    elif table.replica_identity == "i" and table.key:
        ddl.append(f"ALTER TABLE {qname} REPLICA IDENTITY USING INDEX {ident(pkey_name)};")
    if grant_public:
        ddl.append(f"GRANT ALL ON TABLE {qname} TO PUBLIC;")
    if not table.rows:
        return "\n".join(ddl), None
    lines = []
    cols = table.columns
    for i, row in enumerate(table.rows):
        fields = []
        for col, v in zip(cols, row):
            if v is None:
                fields.append("\\N")
                continue
            try:
                fields.append(_copy_field(col.type.encode_text(v).decode()))
            except (TypeError, ValueError) as e:
                raise EngineError(f"table {table.qualname} row {i}, column {col.name!r}: {e}") from None
        lines.append("\t".join(fields) + "\n")
    copy_sql = f"COPY {qname} ({', '.join(ident(c.name) for c in cols)}) FROM STDIN"
    return "\n".join(ddl), Step(f"rows of {table.qualname}", copy_sql, "".join(lines).encode())


def _script(item, i: int) -> Step:
    if isinstance(item, tuple):
        label, text = item
        return Step(f"schema script {label}", str(text))
    if not isinstance(item, str):
        raise TypeError(f"schema[{i}] must be SQL text (str) or (label, text), not {type(item).__name__}")
    return Step(f"schema script {i + 1}", item)


@dataclass(frozen=True, eq=False)
class DatabaseSetup:
    """Tables to declare, then SQL scripts to run, in a fresh database.

    `tables`: answers.catalog.Table objects (columns with exact types and typmods, key, rows).
    `schema`: SQL scripts (text), each run as one simple query after the tables; an item may be
    a (label, text) pair, the label naming it in errors (e.g. its file name).
    `grant_public`: declared tables (and their non-public schemas) are usable by every role,
    as they are in pure mode, so a client logged in as a declared user can read them.
    Equal setups (same generated SQL) compare and hash equal.
    """

    tables: tuple = ()
    schema: tuple = ()
    grant_public: bool = True
    steps: tuple = field(init=False, repr=False)
    _digest: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tables = tuple(self.tables)
        schema = tuple(self.schema) if not isinstance(self.schema, str) else (self.schema,)
        object.__setattr__(self, "tables", tables)
        object.__setattr__(self, "schema", schema)
        ddl: list[str] = []
        copies: list[Step] = []
        schemas_done: set[str] = set()
        for t in tables:
            if not isinstance(t, Table):
                raise TypeError(f"DatabaseSetup.tables holds {type(t).__name__}, expected answers.catalog.Table")
            if t.schema != "public" and t.schema not in schemas_done:
                schemas_done.add(t.schema)
                ddl.append(f"CREATE SCHEMA IF NOT EXISTS {ident(t.schema)};")
                if self.grant_public:
                    ddl.append(f"GRANT USAGE ON SCHEMA {ident(t.schema)} TO PUBLIC;")
            text, copy = table_steps(t, self.grant_public)
            ddl.append(text)
            if copy is not None:
                copies.append(copy)
        steps = ([Step("declared tables", "\n".join(ddl))] if ddl else []) + copies
        steps += [_script(item, i) for i, item in enumerate(schema)]
        object.__setattr__(self, "steps", tuple(steps))
        h = hashlib.sha256(f"fakepm-setup/{GENERATOR_VERSION}\0".encode())
        for s in steps:
            for part in (s.sql.encode(), s.data if s.data is not None else b"\xff"):
                h.update(len(part).to_bytes(8, "big"))
                h.update(part)
        object.__setattr__(self, "_digest", h.hexdigest())

    def key(self, engine_version: str = "") -> str:
        """Content hash (hex) of the generated SQL, the scripts and `engine_version`."""
        return hashlib.sha256(f"{self._digest}\0{engine_version}".encode()).hexdigest()

    def script(self) -> str:
        """The whole setup as one psql script (COPY data inline, ended by \\.): for reading and debugging."""
        out = []
        for s in self.steps:
            out.append(f"-- {s.label}\n{s.sql}" + (";" if s.data is not None else ""))
            if s.data is not None:
                out.append(s.data.decode() + "\\.")
        return "\n".join(out) + "\n"

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __eq__(self, other) -> bool:
        return isinstance(other, DatabaseSetup) and other._digest == self._digest

    def __hash__(self) -> int:
        return hash(self._digest)
