"""Default answers every driver needs, used when no rule matches.

* What drivers and ORMs send on connect or pool checkout: `select pg_catalog.version()`,
  `current_schema()`, asyncpg's pool reset, psycopg's to_regtype TypeInfo probe, the
  psycopg2/SQLAlchemy hstore probe, asyncpg's jit toggle, `set_config(...)`.
* SELECTs of constants and a few functions without FROM (`SELECT 1`, `SELECT 1 + 1 AS y`,
  `SELECT $1::int`, `SELECT now()`, `SELECT pg_sleep(0.5)`), evaluated from the parse tree;
  among them the one-value functions clients call at connect, answered as PostgreSQL 15
  does: pg_is_in_recovery(), format_type(oid, typmod), pg_backend_pid(), txid_current().

Every answer has exactly the columns the query's select list asks for (names as PostgreSQL
gives them), or there is none and the query gets FP000 (answers/selectlist.py: conform).

Answers that do not depend on the connection are cached per SQL text, so a pool's
`SELECT 1` ping is served from prebuilt bytes. Every cache here is bounded by count and by
bytes: the answers and evaluations belong to one server (a Builtins object, gone with it);
the one process-wide cache (text normalisation) keeps short texts only. A text longer than
MAX_BUILTIN_SQL is never a builtin (what drivers send at connect is a few kB at most).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import re
import uuid
from decimal import Decimal, localcontext

from ..bounded import SHORT_KEY_CHARS, BoundedCache, short_key
from ..protocol.errors import PgError
from ..protocol.types import REGISTRY
from ..protocol.textstyle import style_of, styled, styled_input
from .catalog import FIRST_USER_OID
from .result import Column, Query, Result
from .selectlist import conform, quote_ident, select_items

_T = REGISTRY.by_name
TEXT, NAME, INT4, INT8, OID, BOOL, VOID = (_T("text"), _T("name"), _T("int4"), _T("int8"), _T("oid"), _T("bool"),
                                           _T("void"))
NUMERIC, FLOAT8, TIMESTAMPTZ, DATE, UUID, REGTYPE = (_T("numeric"), _T("float8"), _T("timestamptz"), _T("date"),
                                                     _T("uuid"), _T("text"))

_WS = re.compile(r"\s+")
_FIRST_TXID = 1001


# The longest text a builtin answers: driver bootstrap queries are a few kB (SQLAlchemy's
# get_columns ~3 kB); a longer text is not looked at (no normalising, no parsing, no caching).
MAX_BUILTIN_SQL = 64 * 1024
# Per server: constant answers (`SELECT 1`) and parsed SELECT evaluations, each bounded by
# count (pools and drivers send a few dozen distinct texts; 4096 leaves room for generated
# ones) and by bytes (texts are at most MAX_BUILTIN_SQL; 8 MiB keeps a full cache small).
STATIC_MAX_ENTRIES = 4096
STATIC_MAX_BYTES = 8 << 20
EVALUATED_MAX_ENTRIES = 2048
EVALUATED_MAX_BYTES = 8 << 20
_MISS = object()


def _normalise(sql: str) -> str:
    return _WS.sub(" ", sql.strip().rstrip(";").strip()).lower()


# process-wide, so short texts only: 4096 entries of at most SHORT_KEY_CHARS (1 KiB) texts
# and their normal forms stay under ~10 MiB whatever clients send, and nothing long outlives
# the server that saw it
_short_key = functools.lru_cache(maxsize=4096)(_normalise)


def _key(sql: str) -> str:
    """The normal form builtins match on (every query without a rule passes here)."""
    return _short_key(sql) if len(sql) <= SHORT_KEY_CHARS else _normalise(sql)


def _entry_size(key, value) -> int:
    """Bytes a cached answer or evaluation holds, estimated from its text: the key and at
    most about as much again (constants come from the text), plus the objects around them."""
    n = key[0] if isinstance(key, tuple) else len(key)  # short_key: (length, digest) of a long text
    return 2 * n + 256


def _cols(*pairs) -> tuple[Column, ...]:
    return tuple(Column(n, REGISTRY.by_name(t)) for n, t in pairs)


# psycopg TypeInfo / EnumInfo / CompositeInfo / RangeInfo / MultirangeInfo and the
# psycopg2/SQLAlchemy hstore probe: answered with zero rows ("no such type"), which makes the
# drivers fall back to text. Recognised by text; the columns are the ones the query's select
# list names, each typed as pg_type/pg_range/pg_enum type it (a name not listed: FP000).
_REGTYPE_PROBE = re.compile(r"\bto_regtype\(")
_HSTORE_PROBE = ("select t.oid, typarray from pg_type t join pg_namespace ns on typnamespace = ns.oid "
                 "where typname = 'hstore'")
_PROBE_COLUMN_TYPES = {
    "name": "name", "oid": "oid", "array_oid": "oid", "typarray": "oid", "regtype": "text", "delimiter": '"char"',
    "labels": "name[]", "field_names": "name[]", "field_types": "oid[]", "subtype_oid": "oid", "range_oid": "oid",
}


def _probe(key: str, sql: str) -> Result | None:
    if key != _HSTORE_PROBE and not _REGTYPE_PROBE.search(key):
        return None
    items = select_items(sql)
    if items is None or any(it.name not in _PROBE_COLUMN_TYPES for it in items):
        return None
    return Result(columns=_cols(*((it.name, _PROBE_COLUMN_TYPES[it.name]) for it in items)), rows=[], static=True)


class Builtins:
    """Answers for what drivers send at connect. Every answer passes selectlist.conform():
    its columns are exactly the ones the query's select list asks for, or there is no answer
    (FP000) -- never a RowDescription or DataRow of another shape."""

    def __init__(self, config):
        self.config = config
        self._static = BoundedCache(STATIC_MAX_ENTRIES, STATIC_MAX_BYTES, _entry_size)  # key -> Result
        # short_key(sql) -> _evaluate_select's answer (None: not a constant SELECT)
        self._evaluated = BoundedCache(EVALUATED_MAX_ENTRIES, EVALUATED_MAX_BYTES, _entry_size)
        self._txids = itertools.count(_FIRST_TXID)
        self._open_txid: dict[int, int] = {}  # connection id -> txid of its open transaction block

    def _evaluate(self, sql: str):
        k = short_key(sql)
        ev = self._evaluated.get(k, _MISS)
        if ev is _MISS:
            ev = _evaluate_select(sql)
            self._evaluated.put(k, ev)
        return ev

    def answer(self, query: Query) -> tuple[Result | None, str | None]:
        if len(query.sql) > MAX_BUILTIN_SQL:
            return None, None
        key = _key(query.sql)
        cached = self._static.get(key)
        if cached is not None:
            return cached, "builtin:" + key[:40]
        res = self._special(query, key)
        if res is not None:
            res = conform(res, query.sql)
            return (res, "builtin:" + key[:40]) if res is not None else (None, None)
        ev = self._evaluate(query.sql)
        if ev is None:
            return None, None
        res, pure = self._run(ev, query)
        if res is None:
            return None, None
        res = conform(res, query.sql, rename=True)  # PostgreSQL's column names, or no answer
        if res is None:
            return None, None
        if pure and not query.params and res.error is None:
            res.static = True
            self._static.put(key, res)
        return res, "builtin:" + key[:40]

    def describe(self, query: Query) -> tuple[Column, ...] | None:
        """Columns of a builtin answer without running it (Describe Statement)."""
        if len(query.sql) > MAX_BUILTIN_SQL:
            return None
        key = _key(query.sql)
        res = _probe(key, query.sql)
        if res is None:
            ev = self._evaluate(query.sql)
            if ev is None:
                res = self._special(query, key)
                res = conform(res, query.sql) if res is not None else None
            else:
                cols = resolve_param_types(tuple(Column(name, t) for name, t, _ in ev), query)
                res = conform(Result(columns=cols), query.sql, rename=True)
        return res.columns if res is not None else None

    # -- fixed answers --------------------------------------------------------------------
    def _special(self, query: Query, key: str) -> Result | None:
        res = _probe(key, query.sql)
        if res is not None:
            return res
        if key.startswith("select pg_advisory_unlock_all()") and "close all" in key:
            return None  # asyncpg's reset batch arrives split into statements; each is answered alone
        if key.startswith("with recursive typeinfo_tree(") and "any($1::oid[])" in key:
            return asyncpg_typeinfo(query)
        if key.startswith(_PGJDBC_TYPE_LOOKUP):
            return pgjdbc_type_lookup(query)
        if key.startswith(_PGJDBC_TYPE_BY_OID) and "where pg_type.oid = $1" in key:
            return pgjdbc_type_lookup(query, by_oid=True)
        if "current_setting('jit') as cur" in key and "set_config('jit', 'off', false) as new" in key:
            return Result(columns=_cols(("cur", "text"), ("new", "text")), rows=[("off", "off")])
        return None

    # -- constant SELECT evaluation -------------------------------------------------------
    def _run(self, ev, query: Query):
        row = []
        cols = []
        pure = True
        delay = 0.0
        try:
            for name, t, fn in ev:
                value, is_pure, extra_delay = fn(self, query)
                pure = pure and is_pure
                delay += extra_delay
                cols.append(Column(name, t))
                row.append(value)
        except PgError as e:
            return Result(error=e), False
        except _NotBuiltin:
            return None, False
        return Result(columns=resolve_param_types(tuple(cols), query), rows=[tuple(row)], delay=delay), pure

    # values needing the connection or config
    def session_value(self, what: str, query: Query):
        c = query.connection
        if what == "version":
            return self.config.version_string()
        if what == "current_database":
            return c.database if c else "postgres"
        if what in ("current_user", "session_user", "user", "current_role"):
            return c.user if c else "postgres"
        if what == "current_schema":
            return "public"
        if what == "pg_backend_pid":
            return c.pid if c else 0  # the pid of BackendKeyData
        if what == "txid_current":
            return self._txid_current(query)
        if what == "pg_is_in_recovery":
            return False  # a primary, as the walsender's IDENTIFY_SYSTEM implies
        raise _NotBuiltin(what)

    def _txid_current(self, query: Query) -> int:
        """One txid per transaction: a statement outside a transaction block is a transaction
        of its own (a new txid each time); inside a block the first call assigns the txid and
        later calls repeat it. Known gap: the session does not tell a block from the next one,
        so BEGIN..COMMIT BEGIN.. without any statement outside a block in between keeps the txid."""
        conn = query.connection.id if query.connection is not None else None
        if query.transaction_status == "I" or conn is None:
            self._open_txid.pop(conn, None)
            return next(self._txids)
        txid = self._open_txid.get(conn)
        if txid is None:
            if len(self._open_txid) > 10_000:  # connections gone inside a block: forget them
                self._open_txid.clear()
            txid = self._open_txid[conn] = next(self._txids)
        return txid


class _NotBuiltin(Exception):
    pass


# pgjdbc's TypeInfoCache asks this when getObject() meets an OID it has not cached (interval, say)
_PGJDBC_TYPE_LOOKUP = ("select n.nspname = any(current_schemas(true)), n.nspname, t.typname from pg_catalog.pg_type t "
                       "join pg_catalog.pg_namespace n on t.typnamespace = n.oid where t.oid = $1")


_PGJDBC_TYPE_BY_OID = "select typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid "


def pgjdbc_type_lookup(query: Query, by_oid: bool = False) -> Result:
    """One OID's pg_type facts from the type registry (no row when unknown): (on search path,
    schema, name), or with by_oid (is_array, typtype, typname, oid)."""
    raw = query.params[0] if query.params else None
    try:
        t = REGISTRY.get_oid(int(raw)) if raw is not None else None
    except (TypeError, ValueError):
        t = None
    if by_oid:
        cols = _cols(("is_array", "bool"), ("typtype", "char"), ("typname", "name"), ("oid", "oid"))
        return Result(columns=cols, rows=[(t.elem is not None, "b", t.name, t.oid)] if t is not None else [])
    cols = _cols(("?column?", "bool"), ("nspname", "name"), ("typname", "name"))
    return Result(columns=cols, rows=[(True, "pg_catalog", t.name)] if t is not None else [])


# ---------------------------------------------------------------------------------------
# A tiny evaluator over sqlglot trees: enough for pings and driver bootstrap queries.

logging.getLogger("sqlglot").setLevel(logging.ERROR)


def _evaluate_select(sql: str):
    """[(column name, PgType, fn(builtins, query) -> (value, pure, delay))] or None if not constant."""
    s = sql.strip().rstrip(";").strip()
    if not s[:6].lower() == "select":
        return None
    try:
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(s, read="postgres")
    except Exception:  # noqa: BLE001 - anything sqlglot cannot parse is simply not a builtin
        return None
    if not isinstance(tree, exp.Select):
        return None
    for arg in ("from", "from_", "joins", "where", "group", "having", "order", "limit", "offset", "with", "with_",
                "distinct", "into", "laterals"):
        if tree.args.get(arg):
            return None
    out = []
    for e in tree.expressions:
        alias = None
        if isinstance(e, exp.Alias):
            alias = e.alias
            e = e.this
        compiled = _compile(e)
        if compiled is None:
            return None
        t, fn, default_name = compiled
        out.append((alias or default_name, t, fn))
    return out or None


def _const(value, t):
    return lambda b, q: (value, True, 0.0)


def _text_output(t, v, settings: dict) -> str:
    """`v::text`: type t's text output in the session's style (DateStyle, TimeZone ...)."""
    style = style_of(settings) if settings else None
    enc = (styled(t, style) if style is not None else None) or t.encode_text
    return enc(v).decode()


def _text_input(t, text: str, settings: dict):
    """`'text'::t`, read in the session's settings (a zoneless timestamptz is local time there)."""
    style = style_of(settings) if settings else None
    dec = styled_input(t, style) if style is not None else None
    return (dec or t.decode_text)(text.encode())


def _compile(e):
    """(PgType, fn, default column name) or None."""
    from sqlglot import exp

    if isinstance(e, exp.Paren):
        return _compile(e.this)
    if isinstance(e, exp.Literal):
        if e.is_string:
            return TEXT, _const(e.this, TEXT), "?column?"
        return _number_literal(e.this)
    if isinstance(e, exp.RawString):  # a dollar-quoted string ($$x$$): psql scripts use them
        return TEXT, _const(e.this, TEXT), "?column?"
    if isinstance(e, exp.Boolean):
        return BOOL, _const(bool(e.this), BOOL), "?column?"
    if isinstance(e, exp.Null):
        return TEXT, _const(None, TEXT), "?column?"
    if isinstance(e, exp.Neg):
        inner, signs = e.this, 1
        while isinstance(inner, exp.Neg):  # - -9223372036854775808: each minus folds into the text
            inner, signs = inner.this, signs + 1
        if isinstance(inner, exp.Literal) and not inner.is_string:
            # PostgreSQL folds the sign into a numeric literal (doNegate): -2147483648 is an int4,
            # - -9223372036854775808 the numeric 9223372036854775808
            return _number_literal(("-" if signs % 2 else "") + inner.this)
        inner = _compile(e.this)
        if inner is None or inner[0] not in (INT4, INT8, NUMERIC, FLOAT8):
            return None
        t, fn, _ = inner

        def neg(b, q, fn=fn, t=t):
            v, pure, d = fn(b, q)
            if v is None:
                return None, pure, d
            v = v.copy_negate() if isinstance(v, Decimal) else -v  # exact: no rounding to 28 digits
            _check_range(t, v)
            return v, pure, d

        return t, neg, "?column?"
    if isinstance(e, (exp.Placeholder, exp.Parameter)) or (isinstance(e, exp.Var) and str(e.name).startswith("$")):
        idx = _param_index(e)
        if idx is None:
            return None

        def param(b, q, idx=idx):
            if idx >= len(q.params):
                raise PgError("42P02", f"there is no parameter ${idx + 1}")
            return q.params[idx], False, 0.0

        return _ParamType(idx), param, "?column?"
    if isinstance(e, exp.Cast):
        inner = _compile(e.this)
        if inner is None:
            return None
        try:
            spec = e.to.sql(dialect="postgres")
            if spec.lower().startswith(('"pg_catalog".', "pg_catalog.")):  # asyncpg writes $1::"pg_catalog"."int4"
                spec = spec.split(".", 1)[1].strip('"')
            t, _mod = REGISTRY.parse_type_spec(spec)
        except Exception:  # noqa: BLE001
            return None
        src, fn, _ = inner

        def cast(b, q, fn=fn, t=t, src=src):
            v, pure, d = fn(b, q)
            if v is None:
                return None, pure, d
            try:
                if not isinstance(v, str) and t.category == "S" and isinstance(src, _ParamType):
                    # a bound date (say) cast to text: its text output, by the type the client declared
                    pt = q.param_types[src.idx] if src.idx < len(q.param_types) else None
                    if pt is not None and not isinstance(pt, _ParamType):
                        v = _text_output(pt, pt.coerce(v), q.settings)
                        pure = False  # the text depends on the session's DateStyle & co.
                if not isinstance(v, str) and t.category == "S" and not isinstance(src, _ParamType):
                    v = _text_output(src, v, q.settings)  # now()::text is the timestamp's text output
                    pure = False
                elif t is DATE and isinstance(v, dt.datetime):
                    v = v.date()  # now()::date
                if isinstance(v, str):
                    v = _text_input(t, v, q.settings)
                    pure = pure and t.name != "timestamptz"  # read in the session's TimeZone
                else:
                    v = t.coerce(v)
            except (TypeError, ValueError) as err:
                raise PgError("22P02", str(err)) from None
            return v, pure, d

        return t, cast, t.name
    negate = isinstance(e, exp.Not) and isinstance(e.this, exp.Is)  # older sqlglot: NOT (x IS NULL)
    if isinstance(e, exp.Is) or negate:
        is_ = e.this if negate else e
        inner = _compile(is_.this)
        if inner is None or not isinstance(is_.expression, exp.Null):
            return None
        negate = negate or bool(is_.args.get("negate"))

        def is_null(b, q, fn=inner[1], negate=negate):  # `SELECT now() IS NOT NULL AS ok` (psql scripts)
            v, pure, d = fn(b, q)
            return (v is None) != negate, pure, d

        return BOOL, is_null, "?column?"
    if isinstance(e, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        left, right = _compile(e.this), _compile(e.expression)
        if left is None or right is None:
            return None
        op = type(e).__name__
        t = _arith_type(left[0], right[0], op)
        if t is None:
            return None

        def arith(b, q, lf=left[1], rf=right[1], op=op, t=t):
            a, p1, d1 = lf(b, q)
            c, p2, d2 = rf(b, q)
            if a is None or c is None:
                return None, p1 and p2, d1 + d2
            if isinstance(a, dt.date) or isinstance(c, dt.date):  # date +/- integer (a bound date)
                return _date_arith(a, c, op), p1 and p2, d1 + d2
            a, c = _num(a), _num(c)
            if isinstance(a, Decimal) or isinstance(c, Decimal):
                with localcontext() as ctx:  # numeric is exact: no rounding to 28 digits
                    ctx.prec = 1000
                    v = _arith(a, c, op)
                return v, p1 and p2, d1 + d2
            if op == "Add":
                v = a + c
            elif op == "Sub":
                v = a - c
            elif op == "Mul":
                v = a * c
            else:
                if c == 0:
                    raise PgError("22012", "division by zero")
                if op == "Div":
                    v = a // c if (isinstance(a, int) and isinstance(c, int)) else a / c
                    if isinstance(a, int) and isinstance(c, int) and (a < 0) != (c < 0) and a % c:
                        v += 1  # PostgreSQL truncates toward zero
                else:
                    v = a % c
            if not isinstance(t, _ParamArith):
                _check_range(t, v)
            return v, p1 and p2, d1 + d2

        return t, arith, "?column?"
    return _compile_function(e)


def _number_literal(text: str):
    """A numeric constant typed as PostgreSQL types it: int4, int8, else numeric."""
    try:
        v = int(text)
        if -(2**31) <= v < 2**31:
            return INT4, _const(v, INT4), "?column?"
        if -(2**63) <= v < 2**63:
            return INT8, _const(v, INT8), "?column?"
        return NUMERIC, _const(Decimal(text), NUMERIC), "?column?"
    except ValueError:
        return NUMERIC, _const(Decimal(text), NUMERIC), "?column?"


class _ParamType:
    """Placeholder type for `SELECT $1`: resolved per query from the bound parameter's type."""

    def __init__(self, idx: int):
        self.idx = idx


def _param_index(e) -> int | None:
    text = e.sql(dialect="postgres") if hasattr(e, "sql") else str(e)
    m = re.match(r"^\$(\d+)$", text.strip())
    return int(m.group(1)) - 1 if m else None


def _num(v):
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return Decimal(v)
    return v


def _check_range(t, v) -> None:
    if t is INT4 and isinstance(v, int) and not -(2**31) <= v < 2**31:
        raise PgError("22003", "integer out of range")
    if t is INT8 and isinstance(v, int) and not -(2**63) <= v < 2**63:
        raise PgError("22003", "bigint out of range")


def _arith(a, c, op: str):
    if op == "Add":
        return a + c
    if op == "Sub":
        return a - c
    if op == "Mul":
        return a * c
    if c == 0:
        raise PgError("22012", "division by zero")
    if op == "Div":
        return a / c
    return a % c


def _date_arith(a, c, op: str):
    """date + integer, integer + date, date - integer (days), date - date (an integer)."""
    if op == "Add" and isinstance(a, dt.date) and isinstance(c, int):
        return a + dt.timedelta(days=c)
    if op == "Add" and isinstance(c, dt.date) and isinstance(a, int):
        return c + dt.timedelta(days=a)
    if op == "Sub" and isinstance(a, dt.date) and isinstance(c, int):
        return a - dt.timedelta(days=c)
    if op == "Sub" and isinstance(a, dt.date) and isinstance(c, dt.date):
        return (a - c).days
    raise PgError("42883", f"operator does not exist: {type(a).__name__} {op} {type(c).__name__}")


class _ParamArith:
    """The type of `$n <op> <number>`: per query, from the type the client declared for $n
    (date + integer is a date, as in PostgreSQL); `other` when it declared none."""

    def __init__(self, idx: int, other, op: str):
        self.idx, self.other, self.op = idx, other, op

    def resolve(self, query: Query):
        pt = query.param_types[self.idx] if self.idx < len(query.param_types) else None
        if pt is DATE and self.other in (INT4, INT8) and self.op in ("Add", "Sub"):
            return DATE
        if pt is not None and not isinstance(pt, _ParamType):
            return _arith_type(pt, self.other) or self.other
        return self.other


def _arith_type(a, b, op: str = "Add"):
    if isinstance(a, _ParamType) or isinstance(b, _ParamType):
        other = b if isinstance(a, _ParamType) else a
        idx = a.idx if isinstance(a, _ParamType) else b.idx
        return _ParamArith(idx, other, op) if other in (INT4, INT8, NUMERIC, FLOAT8) else None
    if a in (INT4, INT8) and b in (INT4, INT8):
        return INT8 if INT8 in (a, b) else INT4
    if FLOAT8 in (a, b) and {a, b} <= {INT4, INT8, NUMERIC, FLOAT8}:
        return FLOAT8
    if {a, b} <= {INT4, INT8, NUMERIC}:
        return NUMERIC
    return None


_SESSION_FUNCS = {
    "version": TEXT,
    "current_database": NAME,
    "current_schema": NAME,
    "current_user": NAME,
    "session_user": NAME,
    "user": NAME,
    "current_role": NAME,
    "pg_backend_pid": INT4,
    "txid_current": INT8,
    "pg_is_in_recovery": BOOL,
}
_PURE_SESSION_FUNCS = frozenset({"version", "pg_is_in_recovery"})  # the same answer on every connection


def _compile_function(e):
    from sqlglot import exp

    name = None
    args = []
    if isinstance(e, exp.Anonymous):
        name = str(e.this).lower()
        args = list(e.expressions)
    elif isinstance(e, exp.Func):
        name = e.sql_name().lower() if hasattr(e, "sql_name") else type(e).__name__.lower()
        args = [a for a in e.args.values() if isinstance(a, exp.Expression)]
        if isinstance(e, (exp.CurrentTimestamp,)):
            name = "now" if "now" in e.sql(dialect="postgres").lower() else "current_timestamp"
        elif isinstance(e, exp.CurrentDate):
            name = "current_date"
        elif isinstance(e, exp.CurrentUser):
            name = "current_user"
        elif isinstance(e, exp.CurrentSchema):
            name = "current_schema"
        elif type(e).__name__ == "CurrentVersion":  # newer sqlglot parses a bare version() into this
            name = "version"
    elif isinstance(e, exp.Column) and not e.table and str(e.name).lower() in (
        "current_user", "session_user", "user", "current_role", "current_timestamp", "current_date", "current_schema",
        "localtimestamp",
    ):
        name = str(e.name).lower()
    elif isinstance(e, exp.Dot):
        # pg_catalog.version() and friends
        if isinstance(e.this, exp.Identifier) and str(e.this.this).lower() == "pg_catalog":
            return _compile_function(e.expression)
        return None
    if name is None:
        return None
    name = name.split(".")[-1]
    if name in _SESSION_FUNCS:
        t = _SESSION_FUNCS[name]
        return t, lambda b, q, n=name: (b.session_value(n, q), n in _PURE_SESSION_FUNCS, 0.0), name
    if name in ("now", "current_timestamp", "statement_timestamp", "transaction_timestamp", "clock_timestamp",
                "localtimestamp"):
        return TIMESTAMPTZ, lambda b, q: (dt.datetime.now(dt.timezone.utc), False, 0.0), name
    if name == "current_date":
        return DATE, lambda b, q: (dt.date.today(), False, 0.0), name
    if name == "gen_random_uuid":
        return UUID, lambda b, q: (uuid.uuid4(), False, 0.0), name
    if name in ("pg_advisory_unlock_all", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_advisory_unlock_shared"):
        return VOID, lambda b, q: ("", True, 0.0), name
    if name in ("pg_try_advisory_lock", "pg_advisory_unlock", "pg_try_advisory_xact_lock"):
        return BOOL, lambda b, q: (True, True, 0.0), name
    if name == "pg_sleep" and len(args) == 1:
        inner = _compile(args[0])
        if inner is None:
            return None

        def sleep(b, q, fn=inner[1]):
            v, _p, _d = fn(b, q)
            return "", False, max(0.0, float(_num(v) if v is not None else 0))

        return VOID, sleep, "pg_sleep"
    if name == "current_setting" and args:
        inner = _compile(args[0])
        if inner is None:
            return None

        def setting(b, q, fn=inner[1]):
            v, _p, _d = fn(b, q)
            key = str(v).lower()
            if key not in q.settings:
                raise PgError("42704", f'unrecognized configuration parameter "{v}"')
            return q.settings[key], False, 0.0

        return TEXT, setting, "current_setting"
    if name == "set_config" and len(args) == 3:
        a, v = _compile(args[0]), _compile(args[1])
        if a is None or v is None:
            return None

        def set_config(b, q, af=a[1], vf=v[1]):
            key, _p, _d = af(b, q)
            val, _p, _d = vf(b, q)
            q.settings[str(key).lower()] = "" if val is None else str(val)
            return ("" if val is None else str(val)), False, 0.0

        return TEXT, set_config, "set_config"
    if name == "format_type" and len(args) == 2:
        oid_arg, mod_arg = _compile(args[0]), _compile(args[1])
        if oid_arg is None or mod_arg is None:
            return None

        def fmt(b, q, of=oid_arg[1], mf=mod_arg[1]):
            oid, p1, d1 = of(b, q)
            mod, p2, d2 = mf(b, q)
            if oid is None:
                return None, p1 and p2, d1 + d2
            major = int(q.settings.get("server_version_num") or 0) // 10000
            return sql_format_type(_to_oid(oid), None if mod is None else _to_int4(mod), major), p1 and p2, d1 + d2

        return TEXT, fmt, "format_type"
    if name == "quote_literal" and len(args) == 1:  # asyncpg's copy_from_query inlines its arguments with it
        inner = _compile(args[0])
        if inner is None:
            return None

        def quote_literal(b, q, fn=inner[1]):
            v, p, d = fn(b, q)
            if v is None:
                return None, p, d
            s = v if isinstance(v, str) else TEXT.encode_text(v).decode() if not isinstance(v, (int, Decimal)) \
                else str(v)
            body = s.replace("'", "''")
            if "\\" in s:
                return "E'" + body.replace("\\", "\\\\") + "'", p, d
            return "'" + body + "'", p, d

        return TEXT, quote_literal, "quote_literal"
    return None


def _to_oid(v) -> int:
    """An argument as PostgreSQL turns it into an oid (int4/int8 casts, oidin for text)."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise _NotBuiltin("format_type argument")
    if isinstance(v, str):
        text = v.strip()
        try:
            n = int(text)
        except ValueError:
            raise PgError("22P02", f'invalid input syntax for type oid: "{v}"') from None
        if not -(2**31) <= n < 2**32:
            raise PgError("22003", f'value "{v}" is out of range for type oid')
        return n & 0xFFFFFFFF
    if not -(2**31) <= v < 2**32:
        raise PgError("22003", "OID out of range")
    return v & 0xFFFFFFFF


def _to_int4(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise _NotBuiltin("format_type argument")
    if isinstance(v, str):
        try:
            n = int(v.strip())
        except ValueError:
            raise PgError("22P02", f'invalid input syntax for type integer: "{v}"') from None
        if not -(2**31) <= n < 2**31:
            raise PgError("22003", f'value "{v}" is out of range for type integer')
        return n
    if not -(2**31) <= v < 2**31:
        raise PgError("22003", "integer out of range")
    return v


# format_type's own spellings (format_type.c), and the typmod printers of the types that have one
_SQL_NAMES = {"bool": "boolean", "float4": "real", "float8": "double precision", "int2": "smallint",
              "int4": "integer", "int8": "bigint"}
_INTERVAL_RANGES = {  # INTERVAL_RANGE(typmod) -> the fields intervaltypmodout prints
    0x7FFF: "", 1 << 2: " year", 1 << 1: " month", 1 << 3: " day", 1 << 10: " hour", 1 << 11: " minute",
    1 << 12: " second", (1 << 2) | (1 << 1): " year to month", (1 << 3) | (1 << 10): " day to hour",
    (1 << 3) | (1 << 10) | (1 << 11): " day to minute", (1 << 3) | (1 << 10) | (1 << 11) | (1 << 12): " day to second",
    (1 << 10) | (1 << 11): " hour to minute", (1 << 10) | (1 << 11) | (1 << 12): " hour to second",
    (1 << 11) | (1 << 12): " minute to second",
}


def sql_format_type(oid: int, typmod: int | None, major: int = 15) -> str:
    """PostgreSQL 15's format_type(oid, typmod) (typmod None = SQL NULL) for the registry's types;
    `major` 18+: json (and json[]) never shows a typmod (checked against 18.6; 16/17 as 15).

    Unlike protocol.types.format_type (typmods that columns carry), any int is taken: a type
    without a typmod printer shows it in parentheses, bpchar/varchar ignore one of 4 or less,
    an invalid interval typmod is PostgreSQL's internal error. 0 is "-"; an unknown OID of a
    user object is "???"; an unknown built-in OID (below 16384) is not answered (FP000).
    """
    if oid == 0:
        return "-"
    t = REGISTRY.get_oid(oid)
    if t is None:
        if oid < FIRST_USER_OID:
            raise _NotBuiltin(f"type OID {oid}")  # a PostgreSQL type the registry does not hold
        return "???"
    suffix = ""
    if t.elem is not None and t.name.startswith("_"):  # a true array (record[] too; not int2vector)
        t, suffix = t.elem, "[]"
    given = typmod is not None
    with_mod = given and typmod >= 0
    name = t.name
    if name in _SQL_NAMES:
        return _SQL_NAMES[name] + suffix
    if name in ("bpchar", "varchar") and (with_mod or not given or name == "varchar"):
        base = "character" if name == "bpchar" else "character varying"
        return base + (f"({typmod - 4})" if with_mod and typmod > 4 else "") + suffix
    if name == "numeric":
        if with_mod and typmod >= 4:
            tm = typmod - 4
            return f"numeric({(tm >> 16) & 0xFFFF},{((tm & 0x7FF) ^ 1024) - 1024})" + suffix
        return "numeric" + suffix
    if name in ("time", "timetz", "timestamp", "timestamptz"):
        return (f"{name.rstrip('tz')}({typmod})" if with_mod else name.rstrip("tz")) \
            + (" with time zone" if name.endswith("tz") else " without time zone") + suffix
    if name == "interval":
        if not with_mod:
            return "interval" + suffix
        fields = _INTERVAL_RANGES.get((typmod >> 16) & 0x7FFF)
        if fields is None:
            raise PgError("XX000", f"invalid INTERVAL typmod: {typmod:#x}")
        prec = typmod & 0xFFFF
        return "interval" + fields + (f"({prec})" if prec != 0xFFFF else "") + suffix
    base = quote_ident(name)
    if name == "json" and major >= 18:
        with_mod = False
    return base + (f"({typmod})" if with_mod else "") + suffix


def resolve_param_types(columns: tuple[Column, ...], query: Query) -> tuple[Column, ...]:
    """Replace `$n` placeholder column types with the bound parameter's type (text if unknown)."""
    out = []
    for c in columns:
        if isinstance(c.type, _ParamType):
            idx = c.type.idx
            t = query.param_types[idx] if idx < len(query.param_types) and query.param_types[idx] else TEXT
            out.append(Column(c.name, t))
        elif isinstance(c.type, _ParamArith):
            out.append(Column(c.name, c.type.resolve(query)))
        else:
            out.append(c)
    return tuple(out)


_TYPEINFO_COLUMNS = _cols(
    ("oid", "oid"), ("ns", "name"), ("name", "name"), ("kind", "char"), ("basetype", "oid"), ("elemtype", "oid"),
    ("elemdelim", "char"), ("range_subtype", "oid"), ("attrtypoids", "oid[]"), ("attrnames", "text[]"),
    ("depth", "int4"), ("basetype_name", "text"), ("elemtype_name", "text"), ("range_subtype_name", "text"),
)


def asyncpg_typeinfo(query: Query) -> Result:
    """asyncpg's `typeinfo_tree` introspection ($1 = oid[]), answered from the type registry.

    asyncpg knows only scalar builtins natively; the first time it meets an array (int4[],
    uuid[], ...) or a registry type it asks this. Rows as PostgreSQL gives them: each
    requested type at depth 0, an array's element at depth 1, deepest first.
    """
    wanted = query.params[0] if query.params and isinstance(query.params[0], list) else []
    rows: dict[tuple[int, int], tuple] = {}
    for oid in wanted:
        t = REGISTRY.get_oid(oid) if oid is not None else None
        if t is None:
            continue  # unknown: asyncpg reports it as an unknown type, as with a real server
        if t.is_array:
            rows[(t.oid, 0)] = _typeinfo_row(t, 0)
            rows[(t.elem.oid, 1)] = _typeinfo_row(t.elem, 1)
        else:
            rows[(t.oid, 0)] = _typeinfo_row(t, 0)
    ordered = sorted(rows.values(), key=lambda r: -r[10])
    return Result(columns=_TYPEINFO_COLUMNS, rows=ordered)


def _typeinfo_row(t, depth: int) -> tuple:
    kind = "e" if t.category == "E" else "b"
    ns = "pg_catalog" if t.oid < 16384 else "public"
    if t.is_array:
        return (t.oid, ns, t.name, kind, None, t.elem.oid, t.delim, None, None, None, depth, None, t.elem.display, None)
    return (t.oid, ns, t.name, kind, None, 0, None, None, None, None, depth, None, "-", None)
