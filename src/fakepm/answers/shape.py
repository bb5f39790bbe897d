"""Shapes: one statement reduced to a template text and its value positions (``shape_of``).

``shape_of(sql)`` turns one statement into a :class:`~fakepm.answers.slots.Shape`: a canonical
*template* text in which every value position ("slot": a literal, a ``$n`` parameter, NULL,
TRUE/FALSE, a typed literal such as ``DATE '2024-01-02'``, an ``ARRAY[...]`` of those, each with
any casts around it) is replaced by ``?``, plus the slots in textual order.

Templates come from sqlglot (postgres dialect) for the statements it understands well
(SELECT/VALUES/TABLE/WITH, INSERT, UPDATE, DELETE, MERGE, SET). Unquoted identifiers fold
to lower case, a quoted identifier that is a plain lower-case non-keyword name loses its
quotes (``"users"`` == ``users`` but ``"Users"`` != ``users``), keyword case, whitespace,
comments and a trailing ``;`` disappear, and sqlglot's own equivalences apply (``!=`` and
``<>``, ``x::int`` and ``CAST(x AS INTEGER)``, ``int4`` and ``integer`` ...).

``DECLARE c CURSOR FOR <query>`` and ``EXPLAIN [...] <query>`` keep their prefix as
fallback tokens followed by the inner query's sqlglot template, so the inner values unify.

Everything else -- utility statements (BEGIN, SHOW, COPY, DDL ...), replication commands,
statements longer than 16 kB (sqlglot needs ~0.3 s for a 25 kB multi-row INSERT), and any
statement sqlglot raises on or might mangle (it cannot tokenize ``$1::oid[]``, so asyncpg's
typeinfo query lands here) -- takes the *fallback*: ``parsed=False``, ``slots=()``, and a
text made from fakepm.sql.lexer's tokens: joined by single spaces, comments and trailing
``;`` removed, unquoted words lower-cased (PostgreSQL folds them anyway; this deliberately
differs from a case-preserving normalisation so ``show transaction isolation level``
matches ``SHOW TRANSACTION ISOLATION LEVEL``), quoted identifiers unquoted under the same
rule as above, and string constants re-rendered as standard ``'...'`` strings (so
``E'it\\'s'``, ``$$it's$$`` and ``'it''s'`` are the same). Literal values then have to
match exactly; a ``$n`` in the rule pairs with the same ``$n`` in the query.

Safety against sqlglot losing meaning
-------------------------------------
sqlglot generates SQL from its AST; if it silently drops something it does not understand,
two different statements could share one template. Three cheap checks guard against that
(any failure means fallback): the top-level AST node must be the statement kind
``classify`` found (``SAVEPOINT x`` parses as an *alias*, ``ABORT`` as a column...); every
word (identifier or keyword) of the original must still appear in the generated template,
except for a short list of words sqlglot legitimately rewrites (type names and the like,
``_MAY_VANISH``); and the number of literal tokens (strings, numbers, ``$n``) must be
preserved. The remaining risk is a rewrite that keeps all words and literals but changes an
operator or the structure; none is known for the statement kinds routed to sqlglot.

sqlglot is imported on first use (``import fakepm`` stays cheap); shapes are cached per
distinct text (functools.lru_cache, 4096 entries; texts over 64 kB are computed each time).
"""

from __future__ import annotations

import functools
import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ..sql.lexer import Token, iter_tokens
from ..sql.statements import split_statements
from ..sql.tags import classify
from .paramtypes import param_hints
from .slots import MISSING, Shape, Slot
from .typenames import dt_name, parse_type

__all__ = ["shape_of", "shape_without_sqlglot", "could_have_template"]

logging.getLogger("sqlglot").setLevel(logging.ERROR)

_CACHE_SIZE = 4096
_CACHE_MAX_CHARS = 65536  # longer texts are computed every time instead of pinned in a cache
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


_KEEP_QUOTED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric both case cast check collate column constraint
    create current_catalog current_date current_role current_time current_timestamp current_user default
    deferrable desc distinct do else end except false fetch for foreign from grant group having in initially
    intersect into lateral leading limit localtime localtimestamp not null offset on only or order placing
    primary references returning select session_user some symmetric system_user table then to trailing true
    union unique user using variadic when where window with
    authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull join
    left like natural notnull outer overlaps right similar tablesample verbose
    between bigint bit boolean char character coalesce dec decimal exists extract float greatest grouping
    inout int integer interval json json_array json_arrayagg json_object json_objectagg least national nchar
    none normalize nullif numeric out overlay position precision real row setof smallint substring time
    timestamp treat trim values varchar xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces
    xmlparse xmlpi xmlroot xmlserialize xmltable
    """.split()
)
_RE_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def _unquote_ok(name: str) -> bool:
    """May the quoted identifier "name" be written without quotes, same meaning?"""
    return bool(_RE_PLAIN_IDENT.match(name)) and name not in _KEEP_QUOTED


# --------------------------------------------------------------------------------------
# fallback shapes (fakepm.sql.lexer's tokens only)


def _render_tok(t: Token) -> str:
    k = t.kind
    if k == "w":
        return t.value
    if k == "q":
        v = t.value
        return v if _unquote_ok(v) else '"' + v.replace('"', '""') + '"'
    if k == "s":
        return "'" + t.value.replace("'", "''") + "'"
    if k == "b":
        return "b'" + t.value + "'"
    if k == "n":
        return t.value.lower()
    if k == "p":
        return f"${t.value}"
    return t.value


def _fallback_hints(toks: list[Token]) -> dict[int, list]:
    hints: dict[int, list] = {}
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind != "p":
            continue
        h = hints.setdefault(t.value, [])
        if i + 1 < n and toks[i + 1].kind == "o" and toks[i + 1].value == "::":
            name, _ = parse_type(toks, i + 2)
            if name:
                h.append(("t", name))
        if (i >= 2 and toks[i - 1].kind == "c" and toks[i - 1].value == "(" and toks[i - 2].kind == "w"
                and toks[i - 2].value == "cast" and i + 1 < n and toks[i + 1].kind == "w"
                and toks[i + 1].value == "as"):
            name, _ = parse_type(toks, i + 2)
            if name:
                h.append(("t", name))
        if i >= 1 and toks[i - 1].kind == "w" and toks[i - 1].value in ("limit", "offset"):
            h.append(("t", "int8"))
    return hints


def _fallback(sql: str, kind: str) -> Shape:
    toks = list(iter_tokens(sql))
    while toks and toks[-1].kind == "c" and toks[-1].value == ";":
        toks.pop()
    text = " ".join(_render_tok(t) for t in toks)
    nparams = max((t.value for t in toks if t.kind == "p"), default=0)
    hints = ()
    if nparams:
        fh = _fallback_hints(toks)
        hints = tuple(tuple(fh.get(k, ())) for k in range(1, nparams + 1))
    return Shape(text=text, slots=(), parsed=False, kind=kind, nparams=nparams, hints=hints)


# --------------------------------------------------------------------------------------
# sqlglot shapes

_SQLGLOT_KINDS = frozenset({"SELECT", "VALUES", "INSERT", "UPDATE", "DELETE", "MERGE", "SET"})
_sg = None  # (sqlglot, exp, ErrorLevel), imported on first use


def _sqlglot():
    global _sg
    if _sg is None:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ErrorLevel

        _sg = (sqlglot, exp, ErrorLevel)
    return _sg


def _expected_nodes(kind: str, exp) -> tuple:
    if kind in ("SELECT", "VALUES"):
        return (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Values)
    return {
        "INSERT": (exp.Insert,),
        "UPDATE": (exp.Update,),
        "DELETE": (exp.Delete,),
        "MERGE": (exp.Merge,),
        "SET": (exp.Set,),
    }[kind]


# words sqlglot may legitimately rewrite away (type names and spellings it canonicalises)
_MAY_VANISH = frozenset(
    """
    as outer inner work transaction asc
    int int2 int4 int8 integer smallint bigint float float4 float8 real double precision numeric decimal dec
    bool boolean character varying char varchar nchar bpchar text bytea timestamp timestamptz timetz time
    with without zone date interval json jsonb uuid serial bigserial smallserial pg_catalog
    year years month months mon mons week weeks day days hour hours minute minutes min mins second seconds
    sec secs millisecond milliseconds microsecond microseconds
    true false null cast isnull notnull unknown temp
    current_schema current_date current_time current_timestamp current_user session_user user localtime
    localtimestamp current_role current_catalog
    """.split()
)


_known_functions: frozenset | None = None


def _sqlglot_functions() -> frozenset:
    """Lower-case names of the functions sqlglot's postgres parser knows (and may rename:
    now() -> CURRENT_TIMESTAMP, pow() -> POWER()); unknown functions are kept verbatim."""
    global _known_functions
    if _known_functions is None:
        try:
            from sqlglot.dialects.postgres import Postgres

            names = set(Postgres.Parser.FUNCTIONS) | set(Postgres.Parser.FUNCTION_PARSERS)
            _known_functions = frozenset(n.lower() for n in names)
        except Exception:  # noqa: BLE001
            _known_functions = frozenset()
    return _known_functions


def _tok_words(sql: str) -> tuple[set[str], int]:
    words: set[str] = set()
    nlit = 0
    for t in iter_tokens(sql):
        k = t.kind
        if k == "w":
            words.add(t.value)
        elif k == "q":
            words.add(t.value if _unquote_ok(t.value) else '"' + t.value)
        elif k in "snpb":
            nlit += 1
    return words, nlit


def _num_value(text: str):
    t = text.replace("_", "")
    try:
        if t.isdigit():
            return int(t)
        tl = t.lower()
        if tl.startswith("0x"):
            return int(tl[2:], 16)
        if tl.startswith("0o"):
            return int(tl[2:], 8)
        if tl.startswith("0b"):
            return int(tl[2:], 2)
        return Decimal(t)
    except (ValueError, InvalidOperation):
        return text


class _Builder:
    """Walks a parsed statement, turning value positions into slots."""

    def __init__(self, exp, toks_by_start: dict[int, Token]):
        self.exp = exp
        self.toks = toks_by_start
        self.slots: list[Slot] = []
        self.markers: list[tuple[Any, Slot]] = []  # (marker node, slot)
        self.extra_words: set[str] = set()
        self.nlit = 0
        e = exp
        self.skip_nodes = (e.DataType, e.Identifier)
        names = ("Parameter", "Literal", "Neg", "Boolean", "Null", "ByteString", "RawString", "National",
                 "BitString", "HexString", "Interval", "Cast", "Array")
        self.slot_types = tuple(c for c in (getattr(e, n, None) for n in names) if c is not None)
        names = ("ByteString", "RawString", "National", "BitString", "HexString")
        self.string_types = tuple(c for c in (getattr(e, n, None) for n in names) if c is not None)

    # -- values

    def _tok_value(self, node, default):
        """The value of the original string token behind `node` (PostgreSQL's unescaping),
        `default` if the node has no position (sqlglot synthesised or rewrote it)."""
        meta = getattr(node, "_meta", None)
        if meta:
            t = self.toks.get(meta.get("start"))
            if t is not None and t.kind in "sb":
                return t.value
        return default

    def _base(self, node):
        """(Slot kind, value/index, implicit cast, literal tokens) for a slot-able node, else None."""
        e = self.exp
        if isinstance(node, e.Parameter):
            inner = node.this
            if isinstance(inner, e.Literal) and not inner.is_string and str(inner.this).isdigit():
                return ("param", int(inner.this), None, 1)
            return None
        if isinstance(node, e.Literal):
            if node.is_string:
                # a string sqlglot made up or rewrote (to_char's 'YYYY' -> '%Y') has no
                # source position: it stays in the template instead of becoming a slot
                v = self._tok_value(node, MISSING)
                return None if v is MISSING else ("literal", v, None, 1)
            return ("literal", _num_value(str(node.this)), None, 1)
        if isinstance(node, e.Neg):
            inner = node.this
            if isinstance(inner, e.Literal) and not inner.is_string:
                v = _num_value(str(inner.this))
                if isinstance(v, (int, Decimal)):
                    return ("literal", -v, None, 1)
            return None
        if isinstance(node, e.Boolean):
            self.extra_words.add("true" if node.this else "false")
            return ("literal", bool(node.this), None, 0)
        if isinstance(node, e.Null):
            self.extra_words.add("null")
            return ("literal", None, None, 0)
        if isinstance(node, self.string_types):
            v = self._tok_value(node, MISSING)
            return None if v is MISSING else ("literal", v, None, 1)
        if isinstance(node, e.Interval):
            lit = node.this
            if not (isinstance(lit, e.Literal) and lit.is_string):
                return None
            unit = node.args.get("unit")
            value = self._tok_value(lit, None)
            if value is None:
                value = str(lit.this)
                if unit is not None:
                    value = f"{value} {unit.sql(dialect='postgres').lower()}"
            elif unit is not None:
                value = f"{value} {unit.sql(dialect='postgres').lower()}"
            if unit is not None:
                self.extra_words.update(unit.sql(dialect="postgres").lower().split())
            self.extra_words.add("interval")
            return ("literal", value, "interval", 1)
        return None

    def _unwrap(self, node):
        """Peel casts (and parentheses inside casts): (base node, innermost cast DataType)."""
        e = self.exp
        cast_to = None
        while isinstance(node, e.Cast):
            cast_to = node.args.get("to")
            if cast_to is not None:
                try:  # the cast leaves the template: account for its words and numbers
                    words, nlit = _tok_words(cast_to.sql(dialect="postgres"))
                    self.extra_words.update(words)
                    self.nlit += nlit
                except Exception:  # noqa: BLE001
                    pass
            node = node.this
            while isinstance(node, e.Paren) and isinstance(node.this, (e.Cast, e.Parameter, e.Literal)):
                node = node.this
        return node, cast_to

    def slot_for(self, node) -> Slot | None:
        """The Slot `node` (with any casts around it) stands for, or None."""
        e = self.exp
        if isinstance(node, e.Neg) and isinstance(node.this, e.Cast):
            # `-5::int4` parses as -(5::int4); psycopg2 writes negative numbers that way
            inner = node.this
            while isinstance(inner, e.Cast):
                inner = inner.this
            if isinstance(inner, e.Literal) and not inner.is_string:
                s = self.slot_for(node.this)
                if s is not None and s.kind == "literal" and isinstance(s.value, (int, Decimal)):
                    return Slot("literal", -s.value, s.index, s.cast)
        base, cast_to = self._unwrap(node)
        cast = dt_name(cast_to) if cast_to is not None else None
        if isinstance(base, e.Array):
            elems = base.expressions
            if not elems:
                return None
            subs = []
            for el in elems:
                s = self._leaf(el)
                if s is None:
                    return None
                subs.append(s)
            self.extra_words.add("array")
            if all(s.kind == "literal" for s in subs):
                return Slot("literal", tuple(s.value for s in subs), 0, cast)
            return Slot("array", tuple(subs), 0, cast)
        return self._leaf_from(base, cast)

    def _leaf(self, node) -> Slot | None:
        base, cast_to = self._unwrap(node)
        return self._leaf_from(base, dt_name(cast_to) if cast_to is not None else None)

    def _leaf_from(self, base, cast: str | None) -> Slot | None:
        b = self._base(base)
        if b is None:
            return None
        kind, v, implicit, nlit = b
        self.nlit += nlit
        cast = cast or implicit
        if kind == "param":
            return Slot("param", None, v, cast)
        if cast == "bytea" and isinstance(v, str) and v.startswith("\\x"):
            try:
                v = bytes.fromhex(v[2:])
            except ValueError:
                pass
        return Slot("literal", v, 0, cast)

    # -- walk

    def walk(self, node) -> None:
        e = self.exp
        args = node.args
        for key in type(node).arg_types:
            child = args.get(key)
            if child is None:
                continue
            if isinstance(child, list):
                for c in child:
                    if isinstance(c, e.Expression):
                        self._visit(c, node)
            elif isinstance(child, e.Expression):
                self._visit(child, node)

    def _visit(self, node, parent) -> None:
        e = self.exp
        if isinstance(node, self.skip_nodes):
            return
        if isinstance(parent, (e.Ordered, e.Group)) and isinstance(node, e.Literal) and not node.is_string:
            return  # ORDER BY 1: a column position, not a value (it stays in the text)
        if isinstance(parent, e.Is) and node is parent.args.get("expression"):
            return  # IS NULL / IS TRUE: syntax
        if isinstance(node, self.slot_types):
            saved = (self.nlit, set(self.extra_words))
            slot = self.slot_for(node)
            if slot is not None:
                marker = e.Var(this="?")
                node.replace(marker)
                self.slots.append(slot)
                self.markers.append((marker, slot))
                return
            self.nlit, self.extra_words = saved
        self.walk(node)


def _normalize_identifiers(tree, exp) -> None:
    for node in tree.find_all(exp.Identifier):
        name = node.this
        if not isinstance(name, str):
            continue
        if node.quoted:
            if _unquote_ok(name):
                node.set("quoted", False)
        else:
            node.set("this", name.translate(_ASCII_LOWER))
    for node in tree.find_all(exp.Anonymous):
        name = node.this
        if isinstance(name, str):
            node.set("this", name.translate(_ASCII_LOWER))


def _sqlglot_input(sql: str, toks: list[Token]) -> tuple[str, dict[int, Token]]:
    """The text handed to sqlglot and its string tokens by (new) start offset.

    sqlglot 30's tokenizer fails on a parameter glued to the previous token
    (``f($1,$2)``, ``$1+$2``), so a space goes in front of every such ``$n``.
    """
    parts: list[str] = []
    by_start: dict[int, Token] = {}
    prev = 0
    shift = 0
    for t in toks:
        if t.kind == "p" and t.start > 0 and t.start == prev:
            parts.append(sql[prev:t.start])
            parts.append(" ")
            shift += 1
            prev = t.start
        if t.kind in "sb":
            by_start[t.start + shift] = t
        prev_end = t.end
        parts.append(sql[prev:prev_end])
        prev = prev_end
    parts.append(sql[prev:])
    return ("".join(parts) if shift else sql), by_start


def _parsed(sql: str, kind: str) -> Shape | None:
    sqlglot, exp, ErrorLevel = _sqlglot()
    toks = list(iter_tokens(sql))
    sg_sql, strings_by_start = _sqlglot_input(sql, toks)
    trees = [t for t in sqlglot.parse(sg_sql, read="postgres") if t is not None]
    if len(trees) != 1:
        return None
    tree = trees[0]
    if not isinstance(tree, _expected_nodes(kind, exp)):
        return None
    if any(isinstance(n, exp.Command) for n in tree.walk()):
        return None
    orig_words = set()
    orig_lits = 0
    known = _sqlglot_functions()
    ntoks = len(toks)
    for i, t in enumerate(toks):
        if t.kind == "w":
            if t.value in known and i + 1 < ntoks and toks[i + 1].value == "(":
                continue  # a function sqlglot knows: it may print it under another name
            orig_words.add(t.value)
        elif t.kind == "q":
            orig_words.add(t.value if _unquote_ok(t.value) else '"' + t.value)
        elif t.kind in "snpb":
            orig_lits += 1
    _normalize_identifiers(tree, exp)
    b = _Builder(exp, strings_by_start)
    b.walk(tree)
    text = tree.sql(
        dialect="postgres", comments=False, normalize_functions=False, unsupported_level=ErrorLevel.RAISE
    )
    if not _PARSED_START.match(text):
        return None  # never seen; keeps parsed templates apart from fallback ones (see could_have_template)
    gen_words, gen_lits = _tok_words(text)
    lost = orig_words - gen_words - b.extra_words - _MAY_VANISH
    if lost:
        return None
    if gen_lits + b.nlit != orig_lits:
        return None
    nparams = 0
    for s in b.slots:
        if s.kind == "param":
            nparams = max(nparams, s.index)
        elif s.kind == "array":
            for sub in s.value:
                if sub.kind == "param":
                    nparams = max(nparams, sub.index)
    hints = param_hints(b.markers, nparams, exp) if nparams else ()
    return Shape(text=text, slots=tuple(b.slots), parsed=True, kind=kind, nparams=nparams, hints=hints)


# sqlglot needs ~0.3 s for a 25 kB multi-row INSERT (psycopg2's execute_values): longer
# statements take the fallback (~20 ms for 25 kB), and texts beyond _CACHE_MAX_CHARS are
# not cached at all, so the cache cannot pin megabytes of bulk SQL.
_SQLGLOT_MAX_CHARS = 16384


def _shape_compute(sql: str) -> Shape:
    kind = classify(sql)
    if kind in _SQLGLOT_KINDS and len(sql) <= _SQLGLOT_MAX_CHARS:
        stmts = split_statements(sql)
        if len(stmts) == 1 and not _prefix_at(stmts[0]):
            try:
                shape = _parsed(stmts[0], kind)
            except Exception:  # noqa: BLE001 - sqlglot raises many kinds; fall back
                shape = None
            if shape is not None:
                return shape
    elif kind in ("DECLARE", "EXPLAIN"):
        shape = _compound(sql, kind)
        if shape is not None:
            return shape
    return _fallback(sql, kind)


def _prefix_at(stmt: str) -> bool:
    """PostgreSQL's `@` operator alone (absolute value: `@ -5`): sqlglot reads `@1` as the
    parameter `$1`, so such statements keep the token shape (`@>`, `<@`, `@@` are other tokens)."""
    return "@" in stmt and any(t.kind == "o" and t.value == "@" for t in iter_tokens(stmt))


_INNER_VERBS = frozenset({"select", "insert", "update", "delete", "merge", "values", "table", "with"})


def _compound(sql: str, kind: str) -> Shape | None:
    """DECLARE c CURSOR FOR <query> / EXPLAIN [...] <query>: the prefix as fallback tokens,
    then the inner query's own shape (so its literals and $n unify as usual)."""
    stmts = split_statements(sql)
    if len(stmts) != 1:
        return None
    one = stmts[0]
    toks = list(iter_tokens(one))
    depth = 0
    cut = -1
    seen_cursor = False
    for i, t in enumerate(toks):
        if t.kind == "c" and t.value in "([":
            depth += 1
        elif t.kind == "c" and t.value in ")]":
            depth -= 1
        elif t.kind == "w" and depth == 0 and i > 0:
            if kind == "DECLARE":
                if t.value == "cursor":
                    seen_cursor = True
                elif t.value == "for" and seen_cursor:
                    cut = i + 1
                    break
            elif t.value in _INNER_VERBS:
                cut = i
                break
    if cut <= 0 or cut >= len(toks):
        return None
    inner = shape_of(one[toks[cut].start:])
    if not inner.parsed:
        return None
    prefix = " ".join(_render_tok(t) for t in toks[:cut])
    return Shape(text=f"{prefix} {inner.text}", slots=inner.slots, parsed=True, kind=kind,
                 nparams=inner.nparams, hints=inner.hints)


_shape_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_shape_compute)

# A sqlglot template starts (after any parentheses) with an upper-case keyword (_parsed makes
# sure). A fallback template never does: its words are lower-cased and every other token
# starts with a quote, digit, `b'`, `$`, or punctuation.
_PARSED_START = re.compile(r"[(\s]*[A-Z]")


def shape_without_sqlglot(sql: str) -> Shape | None:
    """shape_of(sql) if computing it needs no sqlglot (the statement kind is not one sqlglot
    shapes: BEGIN, COMMIT, SHOW, DDL...), else None."""
    kind = classify(sql)
    if (kind in _SQLGLOT_KINDS and len(sql) <= _SQLGLOT_MAX_CHARS) or kind in ("DECLARE", "EXPLAIN"):
        return None
    return shape_of(sql)


def could_have_template(sql: str, text: str) -> bool:
    """False only if shape_of(sql).text != text is certain, found without sqlglot when `text`
    is a fallback template (shape_without_sqlglot's); True otherwise."""
    if _PARSED_START.match(text):
        return True
    texts = _texts_unless_parsed(sql) if len(sql) <= _CACHE_MAX_CHARS else _texts_unless_parsed.__wrapped__(sql)
    return texts is None or text in texts


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _texts_unless_parsed(sql: str) -> tuple[str, ...] | None:
    """Every template shape_of(sql) may have except a sqlglot one (None: unknown)."""
    kind = classify(sql)
    if kind in ("DECLARE", "EXPLAIN"):
        return None  # a fallback prefix + a sqlglot inner template
    if not (kind in _SQLGLOT_KINDS and len(sql) <= _SQLGLOT_MAX_CHARS):
        return (shape_of(sql).text,)
    texts = [" ".join(str(sql).split())]  # shape_of's last resort
    try:
        texts.append(_fallback(sql, kind).text)
    except Exception:  # noqa: BLE001 - shape_of would have taken the last resort
        pass
    return tuple(texts)


def shape_of(sql: str) -> Shape:
    """The Shape of one statement (cached per distinct text; never raises)."""
    try:
        if len(sql) > _CACHE_MAX_CHARS:
            return _shape_compute(sql)
        return _shape_cached(sql)
    except Exception:  # noqa: BLE001 - last resort: never raise on the hot path
        return Shape(text=" ".join(str(sql).split()), slots=(), parsed=False, kind="")
