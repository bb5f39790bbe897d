"""SQL knowledge for matching rules against the queries clients send.

A rule written ``SELECT name FROM users WHERE id = $1`` must match both
``select  name from "users" where id = 5;`` (psycopg2/psql interpolate on the client and
send a simple Query) and ``SELECT name FROM users WHERE id = $1`` with 5 bound over the
extended protocol (psycopg 3, asyncpg). In both cases the rule sees ``params == [5]``.

How it works
------------
``shape_of(sql)`` turns one statement into a :class:`Shape`: a canonical *template* text in
which every value position ("slot": a literal, a ``$n`` parameter, NULL, TRUE/FALSE, a
typed literal such as ``DATE '2024-01-02'``, an ``ARRAY[...]`` of those, each with any
casts around it) is replaced by ``?``, plus the slots in textual order. ``unify(rule,
query, params)`` compares two templates and, when equal, pairs the slots up to compute the
values of the rule's ``$n``.

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
text made by this module's own PostgreSQL lexer: tokens joined by single spaces, comments
and trailing ``;`` removed, unquoted words lower-cased (PostgreSQL folds them anyway; this
deliberately differs from a case-preserving normalisation so ``show transaction isolation
level`` matches ``SHOW TRANSACTION ISOLATION LEVEL``), quoted identifiers unquoted under the
same rule as above, and string constants re-rendered as standard ``'...'`` strings (so
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

Caching: shape_of, classify, default_tag and split_statements cache per distinct text
(functools.lru_cache, 4096 entries); texts over 64 kB are computed each time instead.

Measured (2 vCPU machine, CPython 3.11, sqlglot 30.30, timeit medians):
  shape_of cold, ``SELECT name FROM users WHERE id = $1``      0.5-1.0 ms
  shape_of cold, SQLAlchemy's 3 kB get_columns query           17-30 ms
  shape_of cold, fallback statement (``BEGIN``)                 ~6 us
  shape_of cached hit                                           ~0.17 us
  unify, matching pair with one literal slot                    ~1.1 us (3 slots ~1.6 us)
  unify, the same cached shape (exact-text fast path)           ~0.7 us
  unify, different templates                                    ~0.3 us
  shape_of(rule) + shape_of(query) + unify, all cached          ~1.5 us
  split_statements (cached / no ';')  ~0.25 us; classify cached ~0.16 us;
  default_tag cached ~0.6 us; values_equal(5, '5') ~0.4 us
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator, Sequence

__all__ = [
    "MISSING",
    "Shape",
    "Slot",
    "classify",
    "default_tag",
    "could_have_template",
    "infer_param_types",
    "shape_of",
    "shape_without_sqlglot",
    "split_statements",
    "unify",
    "values_equal",
]

logging.getLogger("sqlglot").setLevel(logging.ERROR)

_CACHE_SIZE = 4096
_CACHE_MAX_CHARS = 65536  # longer texts are computed every time instead of pinned in a cache


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


# --------------------------------------------------------------------------------------
# the lexer (PostgreSQL's scan.l, the parts that matter for splitting and normalising)

# Identifier characters: ASCII letters and `_` (then also digits and `$`) or any non-ASCII
# character, spelled as the complement of the other ASCII characters: the same sets as
# [A-Za-z_\x80-\U0010ffff] etc., but a class naming \x80-\U0010ffff costs ~20 ms of
# re.compile each, paid by every `import fakepm`.
_IDENT_START = r"^\x00-\x40\x5b-\x5e\x60\x7b-\x7f"
_IDENT_CONT = r"^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"
_DOLLAR_TAG_CONT = r"^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"  # _IDENT_CONT without `$`
_RE_WS = re.compile(r"[ \t\n\r\f\v]+")
_RE_IDENT = re.compile(f"[{_IDENT_START}][{_IDENT_CONT}]*")
_RE_NUMBER = re.compile(
    r"0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.(?!\.)[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?"
)
_RE_PARAM = re.compile(r"\$[0-9]+")
_RE_DOLLAR = re.compile(f"\\$(?:[{_IDENT_START}][{_DOLLAR_TAG_CONT}]*)?\\$")
_RE_OP = re.compile(r"[+\-*/<>=~!@#%^&|`?]+")
_OP_SPECIAL = set("~!@#%^&|`?")
_WS_CHARS = " \t\n\r\f\v"
_DIGITS = "0123456789"


class _Tok:
    __slots__ = ("kind", "start", "end", "value")

    # kind: 'w' word (value: lower-cased), 'q' quoted identifier (value: the name),
    # 's' string constant (value: str), 'b' bit string (value: '0'/'1' digits),
    # 'n' number (value: the text), 'p' parameter (value: int), 'o' operator (incl. '::'),
    # 'c' other single character ( ) [ ] , ; . :
    def __init__(self, kind: str, start: int, end: int, value: Any):
        self.kind = kind
        self.start = start
        self.end = end
        self.value = value

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"_Tok({self.kind!r}, {self.start}, {self.end}, {self.value!r})"


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _skip_block_comment(sql: str, i: int) -> int:
    """i points at '/*'; return the index after the matching (nested) '*/', or len."""
    depth = 0
    n = len(sql)
    while i < n:
        j = sql.find("/*", i)
        k = sql.find("*/", i)
        if k < 0:
            return n
        if 0 <= j < k:
            depth += 1
            i = j + 2
        else:
            depth -= 1
            i = k + 2
            if depth == 0:
                return i
    return n


def _scan_quoted(sql: str, i: int, backslash: bool) -> tuple[str, int]:
    """i points just after an opening quote; return (raw body, index after the close)."""
    n = len(sql)
    parts = []
    start = i
    while True:
        j = sql.find("'", i)
        if backslash:
            b = sql.find("\\", i)
            while 0 <= b < (j if j >= 0 else n):
                i = b + 2
                b = sql.find("\\", i)
                j = sql.find("'", i)
        if j < 0:
            parts.append(sql[start:])
            return "".join(parts), n
        if j + 1 < n and sql[j + 1] == "'":
            i = j + 2
            continue
        parts.append(sql[start:j])
        return "".join(parts), j + 1


_E_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_RE_E_ESC = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)|''", re.S)


def _unescape_e(body: str) -> str:
    def rep(m: re.Match) -> str:
        if m.group(0) == "''":
            return "'"
        e = m.group(1)
        c = e[0]
        if c in _E_ESCAPES and len(e) == 1:
            return _E_ESCAPES[c]
        if c == "x" and len(e) > 1:
            return chr(int(e[1:], 16))
        if c in "uU" and len(e) > 1:
            try:
                return chr(int(e[1:], 16))
            except ValueError:
                return e
        if c.isdigit():
            return chr(int(e, 8) & 0xFF)
        return e

    return _RE_E_ESC.sub(rep, body)


_RE_U_ESC = re.compile(r"\\(\\|[0-9A-Fa-f]{4}|\+[0-9A-Fa-f]{6})")


def _unescape_u(body: str) -> str:
    def rep(m: re.Match) -> str:
        e = m.group(1)
        if e == "\\":
            return "\\"
        try:
            return chr(int(e.lstrip("+"), 16))
        except ValueError:
            return m.group(0)

    return _RE_U_ESC.sub(rep, body.replace("''", "'"))


def _continues(sql: str, i: int) -> int:
    """PostgreSQL joins 'a'<whitespace with a newline>'b' into one constant: return the
    index of the continuing quote, or -1."""
    m = _RE_WS.match(sql, i)
    if m is not None and ("\n" in m.group(0) or "\r" in m.group(0)):
        j = m.end()
        if j < len(sql) and sql[j] == "'":
            return j
    return -1


def _lex(sql: str) -> Iterator[_Tok]:
    """Tokens of PostgreSQL SQL (comments and whitespace skipped). Never raises."""
    n = len(sql)
    i = 0
    while i < n:
        ch = sql[i]
        if ch in _WS_CHARS:
            m = _RE_WS.match(sql, i)
            i = m.end()
            continue
        if ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            continue
        start = i
        if ch == "'" or (
            ch in "eEbBxXnN" and i + 1 < n and sql[i + 1] == "'"
        ) or (ch in "uU" and sql.startswith("&'", i + 1)):
            prefix = ""
            if ch != "'":
                prefix = ch.lower()
                i += 2 if prefix != "u" else 3
            else:
                i += 1
            body, i = _scan_quoted(sql, i, backslash=(prefix == "e"))
            while True:  # string continuation across a newline
                j = _continues(sql, i)
                if j < 0:
                    break
                more, i = _scan_quoted(sql, j + 1, backslash=(prefix == "e"))
                body += more
            if prefix == "e":
                yield _Tok("s", start, i, _unescape_e(body))
            elif prefix == "u":
                if re.match(r"\s*uescape\b", sql[i:i + 16], re.I):
                    yield _Tok("s", start, i, body.replace("''", "'"))
                else:
                    yield _Tok("s", start, i, _unescape_u(body))
            elif prefix == "b":
                yield _Tok("b", start, i, body.replace("''", "'"))
            elif prefix == "x":
                try:
                    bits = "".join(f"{int(c, 16):04b}" for c in body)
                except ValueError:
                    bits = body
                yield _Tok("b", start, i, bits)
            else:
                yield _Tok("s", start, i, body.replace("''", "'"))
            continue
        if ch == '"' or (ch in "uU" and sql.startswith('&"', i + 1)):
            i += 1 if ch == '"' else 3
            parts = []
            while True:
                j = sql.find('"', i)
                if j < 0:
                    parts.append(sql[i:])
                    i = n
                    break
                parts.append(sql[i:j])
                if j + 1 < n and sql[j + 1] == '"':
                    parts.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            name = "".join(parts)
            if ch != '"':
                name = _unescape_u(name)
            yield _Tok("q", start, i, name)
            continue
        if ch == "$":
            m = _RE_PARAM.match(sql, i)
            if m:
                i = m.end()
                yield _Tok("p", start, i, int(sql[start + 1:i]))
                continue
            m = _RE_DOLLAR.match(sql, i)
            if m:
                delim = m.group(0)
                j = sql.find(delim, m.end())
                if j < 0:
                    i = n
                    yield _Tok("s", start, i, sql[m.end():])
                else:
                    i = j + len(delim)
                    yield _Tok("s", start, i, sql[m.end():j])
                continue
            i += 1
            yield _Tok("c", start, i, "$")
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and sql[i + 1] in _DIGITS):
            m = _RE_NUMBER.match(sql, i)
            if m and m.end() > i:
                i = m.end()
                yield _Tok("n", start, i, sql[start:i])
                continue
        m = _RE_IDENT.match(sql, i)
        if m:
            i = m.end()
            yield _Tok("w", start, i, sql[start:i].translate(_ASCII_LOWER))
            continue
        if ch == ":" and sql.startswith("::", i):
            i += 2
            yield _Tok("o", start, i, "::")
            continue
        m = _RE_OP.match(sql, i)
        if m:
            op = m.group(0)
            for bad in ("--", "/*"):  # a comment start ends the operator
                k = op.find(bad)
                if k > 0:
                    op = op[:k]
            if len(op) > 1 and op[-1] in "+-" and not (_OP_SPECIAL & set(op)):
                op = op.rstrip("+-") or op[0]
            i += len(op)
            yield _Tok("o", start, i, op)
            continue
        i += 1
        yield _Tok("c", start, i, ch)


# --------------------------------------------------------------------------------------
# split_statements


_RE_SPLIT_SPECIAL = re.compile(r"""[;'"$]|--|/\*""")
_RE_IDENT_CHAR = re.compile(f"[{_IDENT_CONT}]")


def _only_comments(s: str) -> bool:
    for _ in _lex(s):
        return False
    return True


def _scan_split(sql: str) -> tuple[str, ...]:
    out = []
    n = len(sql)
    seg = 0
    i = 0
    search = _RE_SPLIT_SPECIAL.search
    has_comment = False
    while True:
        m = search(sql, i)
        if m is None:
            break
        j = m.start()
        tok = m.group(0)
        if tok == ";":
            piece = sql[seg:j].strip()
            if piece and not (has_comment and _only_comments(piece)):
                out.append(piece)
            seg = i = j + 1
            has_comment = False
            continue
        if tok == "'":
            e = j > 0 and sql[j - 1] in "eE" and (j < 2 or not _RE_IDENT_CHAR.match(sql[j - 2]))
            _, i = _scan_quoted(sql, j + 1, backslash=e)
            while True:
                k = _continues(sql, i)
                if k < 0:
                    break
                _, i = _scan_quoted(sql, k + 1, backslash=e)
            continue
        if tok == '"':
            k = j + 1
            while True:
                k = sql.find('"', k)
                if k < 0:
                    k = n
                    break
                if k + 1 < n and sql[k + 1] == '"':
                    k += 2
                    continue
                k += 1
                break
            i = k
            continue
        if tok == "$":
            if j > 0 and _RE_IDENT_CHAR.match(sql[j - 1]):
                i = j + 1
                continue
            dm = _RE_DOLLAR.match(sql, j)
            if dm is None:
                i = j + 1
                continue
            k = sql.find(dm.group(0), dm.end())
            i = n if k < 0 else k + len(dm.group(0))
            continue
        has_comment = True
        if tok == "--":
            k = sql.find("\n", j)
            i = n if k < 0 else k + 1
            continue
        i = _skip_block_comment(sql, j)
    piece = sql[seg:].strip()
    if piece and not (has_comment and _only_comments(piece)):
        out.append(piece)
    return tuple(out)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _split_cached(sql: str) -> tuple[str, ...]:
    return _scan_split(sql)


def split_statements(sql: str) -> list[str]:
    """Split a simple-Query string into statements the way PostgreSQL does.

    Splits on ';' outside string constants ('' and E'\\'' escapes, dollar quotes),
    quoted identifiers and (nested) comments. Each statement is returned without its ';'
    and surrounding whitespace; empty and comment-only statements are dropped. Never
    raises; an unterminated quote or comment runs to the end of the text.
    """
    try:
        if ";" not in sql and "-" not in sql and "/" not in sql:
            s = sql.strip()
            return [s] if s else []
        if len(sql) > _CACHE_MAX_CHARS:
            return list(_scan_split(sql))
        return list(_split_cached(sql))
    except Exception:  # noqa: BLE001 - never raise; treat as one statement
        s = str(sql).strip()
        return [s] if s else []


# --------------------------------------------------------------------------------------
# classify / default_tag

_REPLICATION = frozenset(
    {"IDENTIFY_SYSTEM", "START_REPLICATION", "CREATE_REPLICATION_SLOT", "DROP_REPLICATION_SLOT",
     "ALTER_REPLICATION_SLOT", "READ_REPLICATION_SLOT", "TIMELINE_HISTORY", "BASE_BACKUP",
     "UPLOAD_MANIFEST"}
)
_CREATE_MODIFIERS = frozenset(
    {"OR", "REPLACE", "GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED", "UNIQUE", "RECURSIVE", "TRUSTED",
     "PROCEDURAL", "CONSTRAINT", "DEFAULT"}
)
_TWO_WORD_OBJECTS = {
    ("MATERIALIZED", "VIEW"), ("FOREIGN", "TABLE"), ("USER", "MAPPING"), ("EVENT", "TRIGGER"),
    ("ACCESS", "METHOD"), ("OPERATOR", "CLASS"), ("OPERATOR", "FAMILY"), ("DEFAULT", "PRIVILEGES"),
    ("LARGE", "OBJECT"), ("FOREIGN", "SCHEMA"),
}
_MAIN_VERBS = frozenset({"select", "insert", "update", "delete", "merge", "values", "table"})


def _words(sql: str, limit: int = 8) -> tuple[list[str], list[_Tok]]:
    """The first `limit` tokens (after leading '(') as upper-case words ('' for non-words)."""
    words: list[str] = []
    toks: list[_Tok] = []
    lead = True
    for t in _lex(sql):
        if lead and t.kind == "c" and t.value == "(":
            continue
        lead = False
        toks.append(t)
        words.append(t.value.upper() if t.kind == "w" else "")
        if len(words) >= limit:
            break
    return words, toks


def _object_words(words: list[str], i: int) -> str:
    """The object word(s) of CREATE/DROP/ALTER starting at words[i], as PostgreSQL tags them."""
    w = words[i:i + 4] + ["", "", "", ""]
    if w[0] == "TEXT" and w[1] == "SEARCH":
        return "TEXT SEARCH " + w[2]
    if w[0] == "FOREIGN" and w[1] == "DATA" and w[2] == "WRAPPER":
        return "FOREIGN DATA WRAPPER"
    if (w[0], w[1]) in _TWO_WORD_OBJECTS:
        return f"{w[0]} {w[1]}"
    if w[0] in ("USER", "GROUP"):
        return "ROLE"
    return w[0]


def _depth0_words(sql: str) -> Iterator[tuple[int, str]]:
    depth = 0
    for t in _lex(sql):
        if t.kind == "c":
            if t.value in "([":
                depth += 1
            elif t.value in ")]":
                depth -= 1
        elif t.kind == "w":
            yield depth, t.value


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _classify(sql: str) -> str:
    words, _ = _words(sql)
    if not words:
        return ""
    w0 = words[0]
    w1 = words[1] if len(words) > 1 else ""
    if not w0:
        return ""
    if w0 in _REPLICATION:
        return w0
    if w0 == "WITH":
        for depth, w in _depth0_words(sql):
            if depth == 0 and w in _MAIN_VERBS:
                return "SELECT" if w == "table" else w.upper()
        return "SELECT"
    if w0 == "TABLE":
        return "SELECT"
    if w0 in ("BEGIN", "START"):
        return "BEGIN"
    if w0 in ("COMMIT", "END"):
        return "COMMIT PREPARED" if w0 == "COMMIT" and w1 == "PREPARED" else "COMMIT"
    if w0 in ("ROLLBACK", "ABORT"):
        if w1 == "PREPARED" and w0 == "ROLLBACK":
            return "ROLLBACK PREPARED"
        rest = [w for w in words[1:3] if w not in ("WORK", "TRANSACTION")]
        if rest and rest[0] == "TO":
            return "ROLLBACK TO"
        return "ROLLBACK"
    if w0 == "PREPARE":
        return "PREPARE TRANSACTION" if w1 == "TRANSACTION" else "PREPARE"
    if w0 == "ANALYSE":
        return "ANALYZE"
    if w0 in ("CREATE", "DROP", "ALTER"):
        i = 1
        if w0 == "CREATE":
            while i < len(words) and words[i] in _CREATE_MODIFIERS:
                if words[i] == "DEFAULT" and (i + 1 >= len(words) or words[i + 1] != "CONVERSION"):
                    break
                i += 1
        if w0 == "DROP" and w1 == "OWNED":
            return "DROP OWNED"
        obj = _object_words(words, i)
        if not obj:
            return w0
        if w0 == "CREATE" and obj in ("TABLE", "MATERIALIZED VIEW"):
            if any(d == 0 and w == "as" for d, w in _depth0_words(sql)):
                return "CREATE TABLE AS" if obj == "TABLE" else "CREATE MATERIALIZED VIEW"
        return f"{w0} {obj}"
    if w0 in ("REFRESH",) and w1 == "MATERIALIZED":
        return "REFRESH MATERIALIZED VIEW"
    if w0 == "SECURITY":
        return "SECURITY LABEL"
    if w0 == "IMPORT":
        return "IMPORT FOREIGN SCHEMA"
    if w0 == "REASSIGN":
        return "REASSIGN OWNED"
    return w0


def classify(sql: str) -> str:
    """The command-tag word(s) PostgreSQL would use for a statement (see module doc).

    No sqlglot: a cached scan of the first words after comments, whitespace and leading
    parentheses. "" for an empty statement; the upper-cased first word for unknown ones.
    """
    try:
        if len(sql) > _CACHE_MAX_CHARS:
            return _classify.__wrapped__(sql)
        return _classify(sql)
    except Exception:  # noqa: BLE001 - never raise
        return ""


_ROWCOUNT_TAGS = {"UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY"}


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _tag_base(sql: str) -> str:
    """default_tag without the row count; '{n}' marks where it goes."""
    kind = classify(sql)
    words, _ = _words(sql)
    w1 = words[1] if len(words) > 1 else ""
    if kind in ("SELECT", "VALUES", "EXECUTE"):
        return "SELECT {n}"
    if kind == "INSERT":
        return "INSERT 0 {n}"
    if kind in _ROWCOUNT_TAGS:
        return kind + " {n}"
    if kind in ("CREATE TABLE AS", "CREATE MATERIALIZED VIEW"):
        ws = [w for d, w in _depth0_words(sql) if d == 0][-3:]
        return kind if ws == ["with", "no", "data"] else "SELECT {n}"
    if kind == "BEGIN":
        return "START TRANSACTION" if words[0] == "START" else "BEGIN"
    if kind in ("ROLLBACK TO",):
        return "ROLLBACK"
    if kind == "DECLARE":
        return "DECLARE CURSOR"
    if kind == "CLOSE":
        return "CLOSE CURSOR ALL" if w1 == "ALL" else "CLOSE CURSOR"
    if kind == "DISCARD":
        arg = {"TEMPORARY": "TEMP"}.get(w1, w1)
        return f"DISCARD {arg}" if arg else "DISCARD"
    if kind == "DEALLOCATE":
        rest = [w for w in words[1:3] if w != "PREPARE"]
        return "DEALLOCATE ALL" if rest and rest[0] == "ALL" else "DEALLOCATE"
    if kind == "SET" and w1 == "CONSTRAINTS":
        return "SET CONSTRAINTS"
    if kind == "TRUNCATE":
        return "TRUNCATE TABLE"
    if kind == "LOCK":
        return "LOCK TABLE"
    if kind in ("GRANT", "REVOKE"):
        if not any(d == 0 and w == "on" for d, w in _depth0_words(sql)):
            return kind + " ROLE"
        return kind
    return kind


def default_tag(sql: str, rowcount: int) -> str:
    """The CommandComplete tag PostgreSQL 15 would send for `sql` after `rowcount` rows.

    Verified against a real PostgreSQL 15 (see tests): SELECT/VALUES/TABLE/EXECUTE ->
    "SELECT n" (EXECUTE really gets its prepared statement's tag; SELECT is a guess),
    "INSERT 0 n", UPDATE/DELETE/MERGE/FETCH/MOVE/COPY "X n", CREATE TABLE AS / SELECT INTO
    / CREATE MATERIALIZED VIEW -> "SELECT n" (but "CREATE TABLE AS" / "CREATE MATERIALIZED
    VIEW" WITH NO DATA), START TRANSACTION, BEGIN, COMMIT (also END), ROLLBACK (also
    ABORT and ROLLBACK TO), DECLARE CURSOR, CLOSE CURSOR [ALL], DISCARD ALL|PLANS|SEQUENCES|TEMP,
    DEALLOCATE [ALL], SET CONSTRAINTS, TRUNCATE TABLE, LOCK TABLE, GRANT/REVOKE [ROLE],
    otherwise classify(sql).
    """
    try:
        base = _tag_base.__wrapped__(sql) if len(sql) > _CACHE_MAX_CHARS else _tag_base(sql)
    except Exception:  # noqa: BLE001 - never raise
        return ""
    if "{n}" in base:
        return base.replace("{n}", str(int(rowcount)))
    return base


_VALUES_SCAN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\bvalues\b|[(),]|[^\s(),'\"]+",
                          re.I | re.S)


@functools.lru_cache(maxsize=1024)
def insert_values_rows(sql: str) -> int:
    """Rows an `INSERT ... VALUES (...), (...)` inserts (0 for INSERT ... SELECT): the
    rowcount PostgreSQL reports, used when a rule answers an INSERT without declaring rows."""
    depth, rows, seen_values, prev = 0, 0, False, ""
    for m in _VALUES_SCAN.finditer(sql):
        tok = m.group(0)
        if tok == "(":
            if seen_values and depth == 0:
                rows += 1
            depth += 1
        elif tok == ")":
            depth -= 1
        elif depth == 0 and tok.lower() == "values" and not seen_values:
            if prev.lower() == "default":
                return 1
            seen_values = True
        elif depth == 0 and seen_values and tok not in (",",) and not tok.startswith(("--", "/*")):
            break  # ON CONFLICT / RETURNING: the VALUES list is over
        prev = tok
    return rows


# --------------------------------------------------------------------------------------
# identifiers and type names

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


_TYPE_ALIASES = {
    "int": "int4", "integer": "int4", "bigint": "int8", "smallint": "int2", "real": "float4",
    "float": "float8", "double precision": "float8", "decimal": "numeric", "dec": "numeric",
    "boolean": "bool", "character varying": "varchar", "char varying": "varchar", "character": "bpchar",
    "char": "bpchar", "nchar": "bpchar", "national character": "bpchar",
    "national character varying": "varchar", "nvarchar": "varchar",
    "timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp",
    "time with time zone": "timetz", "time without time zone": "time", "bit varying": "varbit",
    "serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8", "smallserial": "int2",
    "serial2": "int2",
}


def _parse_type(toks: list[_Tok], i: int) -> tuple[str | None, int]:
    """Parse a type name from toks[i:]; return (normalized name, index after it)."""
    n = len(toks)
    parts: list[str] = []
    quoted_last = False
    if i >= n or toks[i].kind not in ("w", "q"):
        return None, i
    while True:
        t = toks[i]
        parts.append(t.value)
        quoted_last = t.kind == "q"
        i += 1
        if i + 1 < n and toks[i].kind == "c" and toks[i].value == "." and toks[i + 1].kind in ("w", "q"):
            i += 1
            continue
        break
    if len(parts) > 1 and parts[0] == "pg_catalog":
        parts = parts[1:]
    name = ".".join(parts)
    if len(parts) == 1 and not quoted_last:
        words = [name]

        def peek(k: int) -> str | None:
            return toks[k].value if k < n and toks[k].kind == "w" else None

        if name in ("double",) and peek(i) == "precision":
            words.append("precision")
            i += 1
        elif name in ("character", "char", "nchar", "bit", "national"):
            if name == "national" and peek(i) in ("character", "char"):
                words.append("character")
                i += 1
            if peek(i) == "varying":
                words.append("varying")
                i += 1
        if name in ("timestamp", "time"):
            j = i
            if j < n and toks[j].kind == "c" and toks[j].value == "(":
                j = _skip_parens(toks, j)
            if peek(j) in ("with", "without") and peek(j + 1) == "time" and peek(j + 2) == "zone":
                words += [toks[j].value, "time", "zone"]
                i = j + 3
        name = " ".join(words)
        name = _TYPE_ALIASES.get(name, name)
    if i < n and toks[i].kind == "c" and toks[i].value == "(":
        i = _skip_parens(toks, i)
        if name in ("timestamp", "time") and i + 2 < n and all(
            toks[i + k].kind == "w" for k in range(3)
        ) and toks[i].value in ("with", "without") and toks[i + 1].value == "time" and toks[i + 2].value == "zone":
            name = _TYPE_ALIASES[f"{name} {toks[i].value} time zone"]
            i += 3
    while i + 1 < n and toks[i].kind == "c" and toks[i].value == "[":
        j = i + 1
        if toks[j].kind == "n" and j + 1 < n:
            j += 1
        if toks[j].kind == "c" and toks[j].value == "]":
            name += "[]"
            i = j + 1
        else:
            break
    return name, i


def _skip_parens(toks: list[_Tok], i: int) -> int:
    depth = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        if t.kind == "c" and t.value == "(":
            depth += 1
        elif t.kind == "c" and t.value == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


@functools.lru_cache(maxsize=1024)
def _type_name_from_sql(text: str) -> str | None:
    toks = list(_lex(text))
    name, _ = _parse_type(toks, 0)
    return name


# sqlglot's generated type names that differ from the catalog names
_SQLGLOT_TYPES = {
    "int": "int4", "bigint": "int8", "smallint": "int2", "real": "float4", "double precision": "float8",
    "decimal": "numeric", "boolean": "bool", "char": "bpchar", "varbinary": "bytea", "bytea": "bytea",
}


def _dt_name(dt) -> str | None:
    try:
        text = dt.sql(dialect="postgres")
    except Exception:  # noqa: BLE001
        return None
    name = _type_name_from_sql(text)
    if name is None:
        return None
    base = name.rstrip("[]")
    suffix = name[len(base):]
    return _SQLGLOT_TYPES.get(base, base) + suffix


# --------------------------------------------------------------------------------------
# fallback shapes (this module's lexer only)


def _render_tok(t: _Tok) -> str:
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


def _fallback_hints(toks: list[_Tok]) -> dict[int, list]:
    hints: dict[int, list] = {}
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind != "p":
            continue
        h = hints.setdefault(t.value, [])
        if i + 1 < n and toks[i + 1].kind == "o" and toks[i + 1].value == "::":
            name, _ = _parse_type(toks, i + 2)
            if name:
                h.append(("t", name))
        if (i >= 2 and toks[i - 1].kind == "c" and toks[i - 1].value == "(" and toks[i - 2].kind == "w"
                and toks[i - 2].value == "cast" and i + 1 < n and toks[i + 1].kind == "w"
                and toks[i + 1].value == "as"):
            name, _ = _parse_type(toks, i + 2)
            if name:
                h.append(("t", name))
        if i >= 1 and toks[i - 1].kind == "w" and toks[i - 1].value in ("limit", "offset"):
            h.append(("t", "int8"))
    return hints


def _fallback(sql: str, kind: str) -> Shape:
    toks = list(_lex(sql))
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
    for t in _lex(sql):
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

    def __init__(self, exp, toks_by_start: dict[int, _Tok]):
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
        cast = _dt_name(cast_to) if cast_to is not None else None
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
        return self._leaf_from(base, _dt_name(cast_to) if cast_to is not None else None)

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


def _sqlglot_input(sql: str, toks: list[_Tok]) -> tuple[str, dict[int, _Tok]]:
    """The text handed to sqlglot and its string tokens by (new) start offset.

    sqlglot 30's tokenizer fails on a parameter glued to the previous token
    (``f($1,$2)``, ``$1+$2``), so a space goes in front of every such ``$n``.
    """
    parts: list[str] = []
    by_start: dict[int, _Tok] = {}
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
    toks = list(_lex(sql))
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
    hints = _param_hints(b.markers, nparams, exp) if nparams else ()
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
    return "@" in stmt and any(t.kind == "o" and t.value == "@" for t in _lex(stmt))


_INNER_VERBS = frozenset({"select", "insert", "update", "delete", "merge", "values", "table", "with"})


def _compound(sql: str, kind: str) -> Shape | None:
    """DECLARE c CURSOR FOR <query> / EXPLAIN [...] <query>: the prefix as fallback tokens,
    then the inner query's own shape (so its literals and $n unify as usual)."""
    stmts = split_statements(sql)
    if len(stmts) != 1:
        return None
    one = stmts[0]
    toks = list(_lex(one))
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


# --------------------------------------------------------------------------------------
# parameter type hints (computed once per shape, evaluated by infer_param_types)


def _literal_type(slot: Slot) -> str | None:
    if slot.cast:
        return slot.cast
    if slot.kind != "literal":
        return None
    v = slot.value
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int4" if -(2**31) <= v < 2**31 else ("int8" if -(2**63) <= v < 2**63 else "numeric")
    if isinstance(v, Decimal):
        return "numeric"
    return None


def _scope_tables(scope, exp) -> list[tuple[str | None, str | None, str]]:
    """(alias or None, schema or None, table) for the tables a statement reads directly."""
    out = []

    def add(t):
        if isinstance(t, exp.Schema):
            t = t.this
        if isinstance(t, exp.Table) and isinstance(t.this, exp.Identifier):
            alias = t.alias or None
            out.append((alias, t.db or None, t.name))

    if isinstance(scope, (exp.Update, exp.Delete, exp.Insert, exp.Merge)):
        add(scope.this)
    frm = scope.args.get("from_") or scope.args.get("from")
    if frm is not None:
        add(frm.this)
        for extra in frm.expressions or ():
            add(extra)
    for j in scope.args.get("joins") or ():
        add(j.this)
    for u in scope.args.get("using") or ():
        add(u)
    if isinstance(scope, exp.Merge):
        add(scope.args.get("using"))
    return out


def _column_hints(col, exp, array: bool) -> list:
    name = col.name
    qual = col.table or None
    db = col.db or None
    suffix = "[]" if array else ""
    scope = col.parent
    scopes = (exp.Select, exp.Update, exp.Delete, exp.Insert, exp.Merge)
    while scope is not None:
        if isinstance(scope, scopes):
            tables = _scope_tables(scope, exp)
            if qual:
                hit = [t for t in tables if t[0] == qual or (t[0] is None and t[2] == qual and (db is None or t[1] == db))]
            else:
                hit = tables
            if hit:
                return [("c", s, tb, name, suffix) for _, s, tb in hit]
        scope = scope.parent
    if qual:
        return [("c", db, qual, name, suffix)]
    return []


def _operand_hints(other, exp, marker_slots: dict, array: bool = False) -> list:
    while isinstance(other, exp.Paren):
        other = other.this
    if isinstance(other, exp.Column) and isinstance(other.this, exp.Identifier):
        return _column_hints(other, exp, array)
    if isinstance(other, exp.Var) and id(other) in marker_slots:
        t = _literal_type(marker_slots[id(other)])
        return [("t", t + ("[]" if array else ""))] if t else []
    if isinstance(other, exp.Cast):
        t = _dt_name(other.args.get("to"))
        return [("t", t + ("[]" if array else ""))] if t else []
    return []


_CMP = None


def _param_hints(markers: list, nparams: int, exp) -> tuple:
    global _CMP
    if _CMP is None:
        names = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "Like", "ILike", "NullSafeEQ", "NullSafeNEQ", "Add",
                 "Sub", "Mul", "Div", "Mod", "DPipe", "SimilarTo", "RegexpLike", "RegexpILike")
        _CMP = tuple(c for c in (getattr(exp, n, None) for n in names) if c is not None)
    hints: list[list] = [[] for _ in range(nparams)]
    marker_slots = {id(m): s for m, s in markers}

    def context(node, array_elem: bool) -> list:
        out = []
        parent = node.parent
        while isinstance(parent, exp.Paren):
            node, parent = parent, parent.parent
        if isinstance(parent, (exp.Limit, exp.Offset, exp.Fetch)):
            return [("t", "int8")]
        if isinstance(parent, (exp.Any, exp.All)):
            cmp = parent.parent
            while isinstance(cmp, exp.Paren):
                cmp = cmp.parent
            if isinstance(cmp, _CMP):
                other = cmp.this if cmp.expression is parent or cmp.expression is parent.parent else cmp.expression
                return _operand_hints(other, exp, marker_slots, array=not array_elem)
            return out
        if isinstance(parent, _CMP):
            other = parent.expression if parent.this is node else parent.this
            return _operand_hints(other, exp, marker_slots)
        if isinstance(parent, exp.In) and node is not parent.this:
            return _operand_hints(parent.this, exp, marker_slots)
        if isinstance(parent, exp.Between) and node is not parent.this:
            return _operand_hints(parent.this, exp, marker_slots)
        if isinstance(parent, exp.Tuple) and isinstance(parent.parent, exp.Values):
            ins = parent.parent.parent
            if isinstance(ins, exp.Insert) and isinstance(ins.this, exp.Schema):
                cols = ins.this.expressions
                idx = next((k for k, x in enumerate(parent.expressions) if x is node), -1)
                if 0 <= idx < len(cols):
                    t = ins.this.this
                    return [("c", t.db or None, t.name, cols[idx].name, "")]
        return out

    for marker, slot in markers:
        if slot.kind == "param":
            h = hints[slot.index - 1]
            if slot.cast:
                h.append(("t", slot.cast))
            h.extend(context(marker, False))
        elif slot.kind == "array":
            elem_ctx = None
            for sub in slot.value:
                if sub.kind != "param":
                    continue
                h = hints[sub.index - 1]
                if sub.cast:
                    h.append(("t", sub.cast))
                elif slot.cast and slot.cast.endswith("[]"):
                    h.append(("t", slot.cast[:-2]))
                else:
                    if elem_ctx is None:
                        elem_ctx = context(marker, True)
                    h.extend(elem_ctx)
    return tuple(tuple(h) for h in hints)


def infer_param_types(
    shape: Shape, column_types: Callable[[str | None, str, str], str | None] | None = None
) -> list[str | None]:
    """Type names for the statement's $1..$n (None: unknown, the caller uses text).

    In priority order per parameter: an explicit cast on it; LIMIT/OFFSET/FETCH -> int8;
    the other side of a comparison / arithmetic / LIKE / IN / BETWEEN / = ANY(...) (a
    column via column_types(schema_or_None, table, column), suffixed "[]" for ``= ANY($n)``;
    a cast expression; a literal: int4/int8/numeric/bool); INSERT INTO t (cols) VALUES
    (...) positions and UPDATE SET col = $n via column_types. Fallback shapes only know casts
    and LIMIT/OFFSET.
    """
    out: list[str | None] = [None] * shape.nparams
    for i, cands in enumerate(shape.hints[: shape.nparams]):
        for c in cands:
            if c[0] == "t":
                out[i] = c[1]
                break
            if c[0] == "c" and column_types is not None:
                try:
                    t = column_types(c[1], c[2], c[3])
                except Exception:  # noqa: BLE001 - a user callback
                    t = None
                if t:
                    out[i] = t + c[4]
                    break
    return out


# --------------------------------------------------------------------------------------
# unify and values_equal


def _resolve(slot: Slot, params: Sequence):
    """The value a query slot stands for."""
    k = slot.kind
    if k == "literal":
        v = slot.value
        return list(v) if isinstance(v, tuple) else v
    if k == "param":
        i = slot.index - 1
        return params[i] if 0 <= i < len(params) else MISSING
    return [_resolve(s, params) for s in slot.value]


def _bind(out: list, index: int, value) -> bool:
    cur = out[index - 1]
    if cur is _UNSET:
        out[index - 1] = value
        return True
    if cur is MISSING:
        out[index - 1] = value
        return True
    return value is MISSING or values_equal(cur, value)


_UNSET = object()


def _pair(rs: Slot, value, out: list) -> bool:
    k = rs.kind
    if k == "param":
        return _bind(out, rs.index, value)
    if value is MISSING:
        return True
    if k == "literal":
        return values_equal(rs.value if not isinstance(rs.value, tuple) else list(rs.value), value)
    # rule ARRAY[...] with parameters
    if isinstance(value, str):
        value = _parse_pg_array(value)
    if not isinstance(value, (list, tuple)) or len(value) != len(rs.value):
        return False
    return all(_pair(sub, v, out) for sub, v in zip(rs.value, value))


def unify(rule: Shape, query: Shape, params: Sequence = ()) -> list | None:
    """The rule's parameter values if `query` matches `rule`, else None.

    The templates must be equal. Item i of the result is the value for the rule's $i+1:
    the query's literal in that position, or params[j-1] for a query $j (MISSING when
    params has no item j-1, e.g. at Describe time). A rule literal must be values_equal to
    the query's value (unchecked against MISSING); the same rule $k meeting two different
    values fails. A $k the rule never uses is None. Fallback shapes (parsed=False) pair the
    rule's $k with the query's $k.
    """
    if rule.text != query.text:
        return None
    n = rule.nparams
    if rule is query or not rule.parsed:
        # the same cached shape (the exact-text fast path) or a fallback template: the
        # rule's $k is the query's $k, and every literal is equal
        lp = len(params)
        return [params[i] if i < lp else MISSING for i in range(n)]
    if len(rule.slots) != len(query.slots):
        return None
    out: list = [_UNSET] * n
    lp = len(params)
    for rs, qs in zip(rule.slots, query.slots):
        qk = qs.kind
        if qk == "literal":
            v = qs.value
            if type(v) is tuple:
                v = list(v)
        elif qk == "param":
            i = qs.index - 1
            v = params[i] if i < lp else MISSING
        else:
            v = _resolve(qs, params)
        rk = rs.kind
        if rk == "param":
            j = rs.index - 1
            cur = out[j]
            if cur is _UNSET or cur is MISSING:
                out[j] = v
            elif v is not MISSING and not values_equal(cur, v):
                return None
        elif rk == "literal":
            if v is MISSING:
                continue
            rv = rs.value
            if type(rv) is tuple:
                rv = list(rv)
            if not values_equal(rv, v):
                return None
        elif not _pair(rs, v, out):
            return None
    return [None if v is _UNSET else v for v in out]


_TRUE_STRINGS = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE_STRINGS = frozenset({"f", "false", "n", "no", "off", "0"})


def _str_bool(s: str):
    v = s.strip().lower()
    if v in _TRUE_STRINGS:
        return True
    if v in _FALSE_STRINGS:
        return False
    return None


def _to_decimal(v):
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        if math.isnan(v):
            return Decimal("NaN")
        if math.isinf(v):
            return Decimal("Infinity") if v > 0 else Decimal("-Infinity")
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip()
        low = s.lower()
        if low in ("infinity", "+infinity", "inf", "+inf"):
            return Decimal("Infinity")
        if low in ("-infinity", "-inf"):
            return Decimal("-Infinity")
        if low == "nan":
            return Decimal("NaN")
        try:
            return Decimal(s.replace("_", ""))
        except InvalidOperation:
            return None
    return None


def _num_eq(a, b) -> bool:
    da, db = _to_decimal(a), _to_decimal(b)
    if da is None or db is None:
        return False
    if da.is_nan() or db.is_nan():
        return da.is_nan() and db.is_nan()
    return da == db


def _parse_temporal(s: str, like):
    s = s.strip()
    try:
        if isinstance(like, _dt.date):
            if isinstance(like, _dt.datetime) or len(s) > 10:
                return _dt.datetime.fromisoformat(s.replace(" ", "T", 1) if len(s) > 10 else s)
            return _dt.date.fromisoformat(s)
        if isinstance(like, _dt.time):
            return _dt.time.fromisoformat(s)
    except ValueError:
        return None
    return None


def _temporal_eq(a, b) -> bool:
    """a and b are date/datetime/time objects (maybe different kinds)."""
    if isinstance(a, _dt.datetime) and isinstance(b, _dt.datetime):
        if (a.tzinfo is None) != (b.tzinfo is None):
            return a.replace(tzinfo=None) == b.replace(tzinfo=None)
        return a == b
    if isinstance(a, _dt.datetime) and isinstance(b, _dt.date):
        return a.time() == _dt.time(0) and a.date() == b
    if isinstance(b, _dt.datetime) and isinstance(a, _dt.date):
        return b.time() == _dt.time(0) and b.date() == a
    if isinstance(a, _dt.time) and isinstance(b, _dt.time):
        if (a.tzinfo is None) != (b.tzinfo is None):
            return a.replace(tzinfo=None) == b.replace(tzinfo=None)
        return a == b
    try:
        return a == b
    except Exception:  # noqa: BLE001
        return False


_RE_INTERVAL_PART = re.compile(
    r"([+-]?\d+(?:\.\d+)?)\s*(years?|months?|mons?|weeks?|days?|hours?|minutes?|mins?|seconds?|secs?)\b"
    r"|([+-]?)(\d+):(\d\d)(?::(\d\d(?:\.\d+)?))?",
    re.I,
)
_INTERVAL_UNITS = {"y": 360 * 86400, "mo": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "mi": 60,
                   "s": 1}


def _parse_interval(s: str) -> _dt.timedelta | None:
    text = s.strip().lstrip("@").strip()
    if not text:
        return None
    pos = 0
    total = Decimal(0)
    for m in _RE_INTERVAL_PART.finditer(text):
        if text[pos:m.start()].strip():
            return None
        pos = m.end()
        if m.group(1) is not None:
            unit = m.group(2).lower()
            key = "mo" if unit.startswith("mon") else "mi" if unit.startswith("min") else unit[0]
            total += Decimal(m.group(1)) * _INTERVAL_UNITS[key]
        else:
            sign = -1 if m.group(3) == "-" else 1
            secs = int(m.group(4)) * 3600 + int(m.group(5)) * 60 + Decimal(m.group(6) or 0)
            total += sign * secs
    if text[pos:].strip() not in ("", "ago"):
        return None
    if text.endswith("ago"):
        total = -total
    return _dt.timedelta(seconds=float(total))


def _parse_pg_array(s: str):
    """Parse a PostgreSQL array literal ('{1,2,"a b",NULL}', nested too) into lists of
    str/None; return s unchanged when it is not one."""
    t = s.strip()
    if t.startswith("[") and "=" in t[:40]:  # '[0:1]={1,2}' bounds decoration
        t = t[t.index("=") + 1:].strip()
    if not (t.startswith("{") and t.endswith("}")):
        return s
    pos = 0

    def parse() -> list | None:
        nonlocal pos
        assert t[pos] == "{"
        pos += 1
        items: list = []
        if t[pos:pos + 1] == "}":
            pos += 1
            return items
        while pos < len(t):
            while pos < len(t) and t[pos] in " \t\n":
                pos += 1
            if t[pos] == "{":
                items.append(parse())
            elif t[pos] == '"':
                pos += 1
                buf = []
                while pos < len(t) and t[pos] != '"':
                    if t[pos] == "\\":
                        pos += 1
                    buf.append(t[pos])
                    pos += 1
                pos += 1
                items.append("".join(buf))
            else:
                start = pos
                while pos < len(t) and t[pos] not in ",}":
                    pos += 1
                raw = t[start:pos].strip()
                items.append(None if raw.upper() == "NULL" else raw)
            while pos < len(t) and t[pos] in " \t\n":
                pos += 1
            if pos < len(t) and t[pos] == ",":
                pos += 1
                continue
            if pos < len(t) and t[pos] == "}":
                pos += 1
                return items
            raise ValueError("bad array")
        raise ValueError("bad array")

    try:
        out = parse()
        if pos != len(t):
            return s
        return out
    except (ValueError, IndexError, AssertionError):
        return s


def _is_num(v) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def values_equal(expected, actual) -> bool:
    """Lenient equality between a rule's value and a query's value (symmetric).

    - None equals only None (and MISSING, the unknown value, equals anything).
    - Numbers (int/float/Decimal, not bool) compare numerically (9.99 == Decimal('9.99'));
      a str is parsed as a number first ('5' == 5, ' 9.99' == 9.99, 'NaN' == nan;
      NaN equals NaN as in PostgreSQL).
    - bool equals bool, or a str PostgreSQL reads as that boolean ('t', 'true', 'yes',
      'on', '1' / 'f', 'false', 'no', 'off', '0'); never a number.
    - date/datetime/time equal each other (a date equals a midnight datetime; when exactly
      one side is timezone-aware the wall-clock values are compared) or an ISO-8601 str
      ('2024-01-02', '2024-01-02 03:04:05+00', 'T' or ' ' separator).
    - timedelta equals a PostgreSQL interval str ('1 day 02:00:00', '3 days', '01:00:00',
      '1 mon' = 30 days).
    - bytes/bytearray/memoryview equal bytes, a '\\x..' hex str, or a str whose UTF-8
      encoding is those bytes.
    - UUID equals a str spelling it in any case/format uuid.UUID accepts.
    - list/tuple equal element-wise (same length) a list/tuple or a PostgreSQL array str
      ('{1,2,NULL}'); dict equals a JSON str that decodes to an equal dict (and a list
      equals a JSON array str when it is not a PostgreSQL array str).
    - str vs str: exact. Anything else vs str: str(value) == s. Otherwise ==.
    """
    if expected is actual:
        return True
    te = type(expected)
    ta = type(actual)
    if te is ta and te in (str, int):
        return expected == actual
    if te is int and ta is str or te is str and ta is int:  # the common '5' vs 5
        i, s = (expected, actual) if te is int else (actual, expected)
        try:
            return int(s) == i
        except ValueError:
            pass  # ' 5.0', '1e1' ... take the long way
    if expected is MISSING or actual is MISSING:
        return True
    if expected is None or actual is None:
        return False
    try:
        return _veq(expected, actual) or _veq(actual, expected)
    except Exception:  # noqa: BLE001 - user-supplied oddities
        return False


def _veq(a, b) -> bool:
    """One direction of values_equal (the caller also tries (b, a))."""
    if isinstance(a, (bytearray, memoryview)):
        a = bytes(a)
    if isinstance(b, (bytearray, memoryview)):
        b = bytes(b)
    if isinstance(a, bool):
        if isinstance(b, bool):
            return a == b
        if isinstance(b, str):
            return _str_bool(b) is a
        return False
    if isinstance(b, bool):
        return False  # handled when the roles are swapped
    if _is_num(a):
        if _is_num(b) or isinstance(b, str):
            return _num_eq(a, b)
        return False
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, bytes):
        if isinstance(b, bytes):
            return a == b
        if isinstance(b, str):
            if b.startswith("\\x"):
                try:
                    return bytes.fromhex(b[2:]) == a
                except ValueError:
                    return False
            return b.encode("utf-8") == a
        return False
    if isinstance(a, (_dt.date, _dt.time)):
        if isinstance(b, str):
            p = _parse_temporal(b, a)
            return p is not None and _temporal_eq(a, p)
        if isinstance(b, (_dt.date, _dt.time)):
            return _temporal_eq(a, b)
        return False
    if isinstance(a, _dt.timedelta):
        if isinstance(b, str):
            p = _parse_interval(b)
            return p is not None and p == a
        return a == b
    if isinstance(a, uuid.UUID):
        if isinstance(b, str):
            try:
                return uuid.UUID(b.strip()) == a
            except ValueError:
                return False
        return a == b
    if isinstance(a, (list, tuple)):
        if isinstance(b, str):
            parsed = _parse_pg_array(b)
            if parsed is b:
                if b.strip().startswith("["):
                    try:
                        parsed = json.loads(b)
                    except ValueError:
                        return False
                else:
                    return False
            b = parsed
        if isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
        return False
    if isinstance(a, dict):
        if isinstance(b, (str, bytes)):
            try:
                b = json.loads(b)
            except ValueError:
                return False
        if isinstance(b, dict):
            return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
        return False
    if isinstance(b, str) and not isinstance(a, str):
        return str(a) == b
    if isinstance(a, str):
        return False
    return a == b
