"""COPY statements: parse them and decide the COPY a client gets (a `CopySpec` in `Result.copy`).

Understands what PostgreSQL 15 accepts (and what clients send):

* ``COPY t [(a, b)] FROM STDIN [WITH] (FORMAT csv, HEADER, DELIMITER ';', ...)``;
* ``COPY {t [(a, b)] | (SELECT ...)} TO STDOUT [WITH] (...)``;
* the legacy option spellings psycopg2 and psql still send: ``WITH DELIMITER AS '\\t' NULL AS
  '\\N'``, ``CSV HEADER QUOTE AS '"' ESCAPE AS '\\\\' FORCE NOT NULL a`` / ``FORCE QUOTE *``,
  ``BINARY``.

Who answers a COPY (in this order, like every statement): a user rule on the COPY text (an
error; ``columns`` for an undeclared table; ``columns`` + ``rows`` for COPY TO; or a
ready-made ``Result(copy=CopySpec(...))``, e.g. a COPY-both channel), then the builtin here:
column types from the declared table (``pg.table(...)`` / YAML ``tables:``); COPY FROM an
undeclared table is accepted and its rows stay text fields; COPY TO an undeclared table has
nothing to send and is "unmatched" (FP000) unless a rule gives rows; ``COPY (query) TO`` runs
the inner query through the rules and builtins (the session does that).

No wire bytes here: the session's copy module (session/copy.py) runs the sub-protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..protocol.copyformat import CopyOptionError, CopyOptions, option_error_as
from ..protocol.errors import PgError
from ..protocol.types import REGISTRY, PgType
from ..sql.lexer import Token, tokens
from .result import Column, Query, Result

__all__ = ["CopyStatement", "CopySpec", "CopyFault", "parse_copy", "builtin_copy", "copy_from_rule",
           "copy_both", "describe_declared_select"]


@dataclass(frozen=True)
class CopyStatement:
    """A parsed COPY statement."""

    table: str | None  # relation name as written (unquoted), without schema
    schema: str | None
    columns: tuple[str, ...] | None  # the column list, if any
    query: str | None  # the inner query of COPY (query) TO
    direction: str  # "in" (FROM) | "out" (TO)
    endpoint: str  # "stdin" | "stdout" | "file" | "program"
    filename: str | None
    given: dict  # options as written (lower-case names)
    options: CopyOptions
    where: str | None = None


@dataclass
class CopyFault:
    """The seam for COPY faults (the fault-injection room fills it):
    COPY OUT: after `after_rows` rows, `disconnect` (close the socket) or send `error`;
    COPY IN: after `after_rows` rows received, answer `error` (a PgError) and stop."""

    after_rows: int
    disconnect: bool = False
    error: PgError | None = None


@dataclass
class CopySpec:
    """What the session's COPY sub-protocol runs.

    direction "in": CopyInResponse, then rows typed by `types` (None entries = text fields;
    `types` None = column count unknown, every row kept as text fields).
    direction "out": rows from `rows` (a list or zero-argument callable returning an
    iterator), or from running `query` (the inner SELECT) through the rules.
    direction "both": CopyBothResponse, then a channel: `handler(channel)` runs on its own
    thread, or `script` (a list of steps) is played; see session/copy.py.
    """

    direction: str
    table: str | None = None
    schema: str | None = None
    names: tuple[str, ...] = ()
    types: tuple[PgType | None, ...] | None = ()
    options: CopyOptions = field(default_factory=CopyOptions)
    rows: Any = None
    query: str | None = None
    handler: Callable | None = None
    script: list | None = None
    fault: CopyFault | None = None
    tag: str | None = None
    column_formats: tuple | None = None  # COPY both: per-column formats to announce
    where: str | None = None  # COPY FROM ... WHERE: not evaluated, kept for the journal

    @property
    def ncolumns(self) -> int:
        return len(self.types) if self.types is not None else 0


# ----------------------------------------------------------------------------------------
# the grammar (gram.y's CopyStmt), on fakepm.sql.lexer's tokens


class _Parser:
    def __init__(self, sql: str):
        self.sql = sql
        self.toks = tokens(sql)
        self.i = 0

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> Token | None:
        t = self.peek()
        if t is not None:
            self.i += 1
        return t

    def error(self, tok: Token | None = None) -> PgError:
        tok = tok if tok is not None else self.peek()
        if tok is None:
            return PgError("42601", "syntax error at end of input", position=len(self.sql) + 1)
        return PgError("42601", f'syntax error at or near "{self.sql[tok.start:tok.end]}"', position=tok.start + 1)

    def word(self, *words: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "w" and t.value in words:
            self.i += 1
            return True
        return False

    def expect_word(self, *words: str) -> str:
        t = self.peek()
        if t is None or t.kind != "w" or t.value not in words:
            raise self.error(t)
        self.i += 1
        return t.value

    def punct(self, p: str) -> bool:
        t = self.peek()
        if t is not None and (t.kind == "c" or t.kind == "o") and t.value == p:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if not self.punct(p):
            raise self.error()

    def ident(self) -> str:
        t = self.peek()
        if t is None or t.kind not in ("w", "q"):
            raise self.error(t)
        self.i += 1
        return t.value

    def string(self) -> str:
        t = self.peek()
        if t is None or t.kind != "s":
            raise self.error(t)
        self.i += 1
        return t.value

    def at_end(self) -> bool:
        t = self.peek()
        return t is None or (t.kind == "c" and t.value == ";" and self.i == len(self.toks) - 1)


def parse_copy(sql: str) -> CopyStatement:
    """Parse one COPY statement; PgError (42601 and friends, PostgreSQL's wording) when invalid."""
    p = _Parser(sql)
    p.expect_word("copy")
    given: dict = {}
    legacy_binary = p.word("binary")  # COPY BINARY t ... (pre-7.3 syntax, still accepted)
    table = schema = query = None
    columns = None
    if p.punct("("):
        start = p.peek()
        if start is None:
            raise p.error()
        depth = 1
        end_tok = None
        while True:
            t = p.next()
            if t is None:
                raise p.error()
            if t.kind == "c" and t.value == "(":
                depth += 1
            elif t.kind == "c" and t.value == ")":
                depth -= 1
                if depth == 0:
                    end_tok = t
                    break
        query = sql[start.start:end_tok.start].strip()
    else:
        name = p.ident()
        if p.punct("."):
            schema, name = name, p.ident()
            if p.punct("."):  # database.schema.table
                schema, name = name, p.ident()
        table = name
        if p.punct("("):
            columns = [p.ident()]
            while p.punct(","):
                columns.append(p.ident())
            p.expect_punct(")")
            columns = tuple(columns)
    t = p.peek()
    direction = p.expect_word("from", "to")
    direction = "in" if direction == "from" else "out"
    if query is not None and direction == "in":
        raise p.error(t)
    filename = None
    if p.word("stdin", "stdout"):
        endpoint = p.toks[p.i - 1].value
        if (endpoint == "stdin") != (direction == "in"):
            raise p.error(p.toks[p.i - 1])
    elif p.word("program"):
        endpoint, filename = "program", p.string()
    else:
        endpoint, filename = "file", p.string()
    if legacy_binary:
        given["format"] = "binary"
    p.word("with")
    if p.punct("("):
        _parse_new_options(p, given)
    else:
        _parse_legacy_options(p, given)
    where = None
    if direction == "in" and p.word("where"):
        rest = p.peek()
        where = sql[rest.start:].strip().rstrip(";") if rest is not None else ""
        p.i = len(p.toks)
    if not p.at_end():
        raise p.error()
    try:
        options = CopyOptions.build(given, direction=direction)
    except CopyOptionError as e:
        raise PgError(e.sqlstate, e.message) from None
    return CopyStatement(table, schema, columns, query, direction, endpoint, filename, given, options, where)


_BOOL_TRUE = {"true", "on", "1", "yes"}
_BOOL_FALSE = {"false", "off", "0", "no"}
_NEW_OPTIONS = {"format", "freeze", "delimiter", "null", "header", "quote", "escape", "force_quote",
                "force_not_null", "force_null", "encoding"}


def _set_option(given: dict, name: str, value) -> None:
    if name in given:
        raise PgError("42601", "conflicting or redundant options")
    given[name] = value


def _option_value(p: _Parser):
    """An option argument: string, number, word, '*', or a parenthesised list; None when absent."""
    t = p.peek()
    if t is None or (t.kind == "c" and t.value in ",)"):
        return None
    if t.kind == "o" and t.value == "*":
        p.next()
        return "*"
    if t.kind == "c" and t.value == "(":
        p.next()
        items = [p.ident()]
        while p.punct(","):
            items.append(p.ident())
        p.expect_punct(")")
        return tuple(items)
    if t.kind == "o" and t.value in "+-":  # a signed number
        n = p.peek(1)
        if n is not None and n.kind == "n":
            p.i += 2
            return t.value + n.value
    if t.kind in ("s", "w", "q", "n"):
        p.next()
        return t.value
    raise p.error(t)


def _bool(name: str, v, allow_match: bool = False):
    if v is None:
        return True
    s = str(v).lower()
    if s in _BOOL_TRUE:
        return True
    if s in _BOOL_FALSE:
        return False
    if allow_match and s == "match":
        return "match"
    raise PgError("22023", f"{name} requires a Boolean value" if not allow_match else
                  f"{name} requires a Boolean value or \"match\"")


def _parse_new_options(p: _Parser, given: dict) -> None:
    while True:
        t = p.peek()
        if t is None or t.kind not in ("w", "q"):
            raise p.error(t)
        name = p.ident().lower()
        value = _option_value(p)
        if name not in _NEW_OPTIONS:
            raise PgError("42601", f'option "{name}" not recognized', position=t.start + 1)
        if name in ("freeze",):
            value = _bool(name, value)
        elif name == "header":
            value = _bool(name, value, allow_match=True)
        elif name in ("force_quote", "force_not_null", "force_null"):
            if value is None or (isinstance(value, str) and (value != "*" or name != "force_quote")):
                raise PgError("22023", f'argument to option "{name}" must be a list of column names')
        elif value is None or isinstance(value, tuple) or value == "*":
            raise PgError("22023", f'{name} requires a string value' if name != "format" else
                          f'{name} requires a string value')
        else:
            value = str(value)
        _set_option(given, name, value)
        if p.punct(")"):
            return
        p.expect_punct(",")


def _parse_legacy_options(p: _Parser, given: dict) -> None:
    while True:
        if p.word("binary"):
            _set_option(given, "format", "binary")
        elif p.word("csv"):
            _set_option(given, "format", "csv")
        elif p.word("oids"):
            raise PgError("0A000", "COPY with OIDS is not supported")
        elif p.word("delimiter"):
            p.word("as")
            _set_option(given, "delimiter", p.string())
        elif p.word("null"):
            p.word("as")
            _set_option(given, "null", p.string())
        elif p.word("header"):
            _set_option(given, "header", True)
        elif p.word("quote"):
            p.word("as")
            _set_option(given, "quote", p.string())
        elif p.word("escape"):
            p.word("as")
            _set_option(given, "escape", p.string())
        elif p.word("encoding"):
            p.word("as")
            _set_option(given, "encoding", p.string())
        elif p.word("freeze"):
            _set_option(given, "freeze", True)
        elif p.word("force"):
            if p.word("quote"):
                name = "force_quote"
                if p.punct("*"):
                    _set_option(given, name, "*")
                    continue
            elif p.word("not"):
                p.expect_word("null")
                name = "force_not_null"
            else:
                p.expect_word("null")
                name = "force_null"
            cols = [p.ident()]
            while p.punct(","):
                cols.append(p.ident())
            _set_option(given, name, tuple(cols))
        else:
            return


# ----------------------------------------------------------------------------------------
# deciding the COPY


def _parse_or_error(sql: str):
    try:
        return parse_copy(sql), None
    except PgError as e:
        return None, Result(error=e)


def _server_file_error(st: CopyStatement) -> Result:
    what = "program" if st.endpoint == "program" else "file"
    return Result(error=PgError(
        "0A000", f"fakepm: COPY {'FROM' if st.direction == 'in' else 'TO'} a server {what} is not supported",
        hint="Use COPY ... FROM STDIN / TO STDOUT (psql's \\copy does that)."))


def _table_columns(st: CopyStatement, table) -> tuple[tuple[str, ...], tuple] | Result:
    """(names, types) of the columns this COPY moves, or an error Result."""
    if st.columns is None:
        return tuple(c.name for c in table.columns), tuple(c.type for c in table.columns)
    seen = set()
    types = []
    for name in st.columns:
        if name in seen:
            return Result(error=PgError("42701", f'column "{name}" specified more than once'))
        seen.add(name)
        col = table.column(name)
        if col is None:
            return Result(error=PgError("42703", f'column "{name}" of relation "{table.name}" does not exist'))
        types.append(col.type)
    return tuple(st.columns), tuple(types)


def _check_force_columns(st: CopyStatement, names, table=None) -> Result | None:
    for opt in ("force_quote", "force_not_null", "force_null"):
        cols = st.given.get(opt)
        if isinstance(cols, tuple):
            for c in cols:
                if table is not None and table.column(c) is None:
                    return Result(error=PgError("42703", f'column "{c}" of relation "{table.name}" does not exist'))
                if c not in names:
                    return Result(error=PgError("42P10", f'{opt.upper()} column "{c}" not referenced by COPY'))
    return None


def _lookup(catalog, st: CopyStatement):
    if not catalog or st.table is None:
        return None
    return catalog.get(st.table, st.schema or "public")


def builtin_copy(query: Query, catalog) -> Result | None:
    """The builtin answer to a COPY statement; None = nothing to say (COPY TO an undeclared table)."""
    st, err = _parse_or_error(query.sql)
    if err is not None:
        e = err.error
        major = int(query.settings.get("server_version_num") or 150000) // 10000
        code, message = option_error_as(major, e.code, e.message)
        if (code, message) != (e.code, e.message):
            err = Result(error=PgError(code, message))
        return err
    if st.endpoint in ("file", "program"):
        return _server_file_error(st)
    table = _lookup(catalog, st)
    spec = CopySpec(direction=st.direction, table=st.table, schema=st.schema, options=st.options, where=st.where)
    if st.query is not None:
        spec.query = st.query
        return Result(copy=spec)
    if table is None:
        if st.direction == "out":
            return None
        spec.names = st.columns or ()
        spec.types = (None,) * len(st.columns) if st.columns is not None else None
        return Result(copy=spec)
    cols = _table_columns(st, table)
    if isinstance(cols, Result):
        return cols
    spec.names, spec.types = cols
    bad = _check_force_columns(st, spec.names, table)
    if bad is not None:
        return bad
    if st.direction == "out":
        idx = [table.column_names.index(n) for n in spec.names]
        rows = table.rows
        spec.rows = lambda: (tuple(r[i] for i in idx) for r in rows)
    return Result(copy=spec)


def copy_from_rule(sql: str, answer: Result, catalog) -> Result:
    """A user rule answered a COPY statement with a plain Result: make it a COPY.

    `columns` name the columns (and types) of the COPY; for COPY TO, `rows` are sent.
    Without columns the table's declaration (or text fields) applies, as for the builtin.
    """
    if answer.copy is not None or answer.error is not None:
        return answer
    st, err = _parse_or_error(sql)
    if err is not None:
        return err
    if st.endpoint in ("file", "program"):
        return _server_file_error(st)
    if answer.columns is None:
        res = builtin_copy(Query(sql=sql), catalog)
        if res is None:  # COPY TO an undeclared table and the rule gave no columns: no rows to send
            names = st.columns or ()
            res = Result(copy=CopySpec(direction="out", table=st.table, schema=st.schema, options=st.options,
                                       names=names, types=(REGISTRY.by_name("text"),) * len(names), rows=[]))
        if res.copy is not None:
            res.copy.tag = answer.tag
        return _with_notices(res, answer)
    cols = answer.columns
    spec = CopySpec(direction=st.direction, table=st.table, schema=st.schema, options=st.options,
                    names=tuple(c.name for c in cols), types=tuple(c.type for c in cols), tag=answer.tag,
                    where=st.where)
    if st.direction == "out":
        spec.rows = answer.rows
    bad = _check_force_columns(st, spec.names)
    if bad is not None:
        return bad
    return _with_notices(Result(copy=spec), answer)


def _with_notices(res: Result, answer: Result) -> Result:
    res.notices = answer.notices
    res.notify = answer.notify
    res.delay = answer.delay
    res.fault = answer.fault
    return res


def copy_both(handler: Callable | None = None, *, script: list | None = None, binary: bool = False,
              columns: int = 0, tag: str | None = None) -> Result:
    """A Result that answers a statement with CopyBothResponse and opens a two-way channel.

    handler(channel) runs on its own thread: `channel.recv(timeout)` -> bytes, or None after
    the client's CopyDone; `channel.send(data)`; returning (or `channel.done()`) sends CopyDone.
    script: a list of steps played in order: {"send": data} sends, {"expect": data} waits for
    the next CopyData (checked when given as bytes/str), {"recv": data, "send": ...} both.
    """
    if (handler is None) == (script is None):
        raise ValueError("copy_both() needs exactly one of handler= or script=")
    if script is not None:
        script = normalize_script(script)
    fmt = 1 if binary else 0
    spec = CopySpec(direction="both", options=CopyOptions(format="binary" if binary else "text"), handler=handler,
                    script=script, tag=tag, column_formats=(fmt,) * columns)
    return Result(copy=spec)


def _as_bytes(v, where: str) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise ValueError(f"{where}: expected a string or bytes, got {type(v).__name__}")


def normalize_script(script) -> list:
    """Validate a COPY-both script (YAML or Python) into [("expect", bytes|None) | ("send", bytes)]."""
    out = []
    if not isinstance(script, (list, tuple)):
        raise ValueError("copy_both script: expected a list of steps")
    for i, step in enumerate(script):
        where = f"copy_both script step {i + 1}"
        if isinstance(step, (tuple, list)) and len(step) == 2:
            step = {"recv": step[0], "send": step[1]}
        if not isinstance(step, dict) or not step:
            raise ValueError(f"{where}: expected a mapping with recv/expect and/or send, got {step!r}")
        unknown = set(step) - {"recv", "expect", "send"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; use recv/expect and send")
        for key in ("recv", "expect"):
            if key in step:
                v = step[key]
                out.append(("expect", None if v is None or v is True else _as_bytes(v, where)))
        if "send" in step:
            sends = step["send"]
            for s in sends if isinstance(sends, list) else [sends]:
                out.append(("send", _as_bytes(s, where)))
    return out


def _select_table(sql: str):
    """`SELECT a, b FROM [s.]t [LIMIT n] [;]` -> (column names or None for `*`, schema or None,
    table), names as PostgreSQL reads them; None for any other text."""
    toks = tokens(sql)
    while toks and toks[-1].kind == "c" and toks[-1].value == ";":
        toks.pop()
    if len(toks) >= 3 and toks[-2].is_word("limit") and toks[-1].kind == "n" and toks[-1].value.isdigit():
        del toks[-2:]
    if not toks or not toks[0].is_word("select"):
        return None
    i = 1
    cols: list[str] | None = []
    if i < len(toks) and toks[i].kind == "o" and toks[i].value == "*":
        cols, i = None, i + 1
    else:
        while i < len(toks) and toks[i].kind in ("w", "q") and not toks[i].is_word("from"):
            cols.append(toks[i].value)
            i += 1
            if i < len(toks) and toks[i].kind == "c" and toks[i].value == ",":
                i += 1
                continue
            break
        if not cols:
            return None
    if i >= len(toks) or not toks[i].is_word("from"):
        return None
    rest = toks[i + 1:]
    if len(rest) == 1 and rest[0].kind in ("w", "q"):
        return cols, None, rest[0].value
    if len(rest) == 3 and rest[0].kind in ("w", "q") and rest[1].kind == "c" and rest[1].value == "." \
            and rest[2].kind in ("w", "q"):
        return cols, rest[0].value, rest[2].value
    return None


def describe_declared_select(sql: str, catalog) -> tuple[Column, ...] | None:
    """Columns of `SELECT a, b FROM t [LIMIT n]` over a declared table (asyncpg asks this
    before copy_records_to_table), else None."""
    if not catalog:
        return None
    found = _select_table(sql)
    if found is None:
        return None
    cols, schema, name = found
    table = catalog.get(name, schema or "public")
    if table is None:
        return None
    if cols is None:
        return tuple(table.columns)
    out = []
    for name in cols:
        col = table.column(name)
        if col is None:
            return None
        out.append(col)
    return tuple(out)


# ----------------------------------------------------------------------------------------
# YAML: a rule's `copy:` key (the scenario room imports this module to learn it)
#
#   - query: START_CHAT
#     copy:
#       both: [{send: welcome}, {recv: ping, send: pong}]   # a COPY-both script
#       binary: false                                      # optional
#       tag: COPY 0                                        # optional CommandComplete
#
# (COPY IN/OUT need no key: `columns:` / `rows:` on a rule for a COPY statement already apply.)

_SCENARIO_COPY_KEYS = ("both", "binary", "tag")


def parse_scenario_copy(ctx, node):
    """`copy:` in a scenario rule -> {"copy": CopySpec}; problems are reported at the node."""
    data = node.plain()
    if not isinstance(data, dict) or "both" not in data:
        ctx.error(node, 'copy: expected a mapping with "both:" (a list of recv/send steps)')
        return None
    unknown = sorted(set(data) - set(_SCENARIO_COPY_KEYS))
    if unknown:
        ctx.error(node, f"copy: unknown key(s) {unknown}; allowed: {list(_SCENARIO_COPY_KEYS)}")
        return None
    try:
        res = copy_both(script=data["both"], binary=bool(data.get("binary", False)),
                        tag=str(data["tag"]) if data.get("tag") is not None else None)
    except ValueError as e:
        ctx.error(node, f"copy: {e}")
        return None
    return {"copy": res.copy}


def _register_scenario_key() -> None:
    try:
        from ..scenario import registry
    except ImportError:  # the scenario room is absent: Python API only
        return
    registry.register_rule_key("copy", parse_scenario_copy)


_register_scenario_key()
