"""The columns a SELECT asks for: how many, and the name PostgreSQL gives each.

A built-in answer (answers/builtin.py, answers/pgcatalog.py) is only sent when its columns
are exactly what the query's select list asks for; anything else gets FP000. A wrong shape
is worse than no answer: psql 15 dies with SIGSEGV on a DataRow shorter than the columns
its `\\d+` query asked for, pgcli fails with "Expected 11 arguments, got 15".

``select_items(sql)`` returns one :class:`Item` per output column of a single SELECT
statement (after WITH; the first branch of a UNION), or None when that cannot be told
from the text (not one SELECT, a ``*`` that is not a CTE with a column list, a construct
this small parser does not know). ``Item.name`` follows PostgreSQL's FigureColname
(parser/parse_target.c): the alias; else the last name of a column reference or a
function; ``case``, ``array``, ``row``, ``exists``, ``timezone`` (AT TIME ZONE); a cast's
type name when the operand has no stronger name; else ``?column?``. ``Item.expr`` is the
expression's tokens joined by single spaces with unquoted words lower-cased, so a key
written once matches the query however it is laid out.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from ..sql.lexer import Token, iter_tokens
from .result import Result

NAMEDATALEN = 64


@dataclass(frozen=True)
class Item:
    expr: str  # normalised expression text, without its alias
    name: str  # the output column name PostgreSQL reports


class _Unknown(Exception):
    """The text holds something this parser does not understand: no shape."""


# words that end a select list at depth 0 (a FROM inside IS DISTINCT FROM does not)
_CLAUSE_END = frozenset({"from", "into", "where", "group", "having", "window", "order", "limit", "offset", "fetch",
                         "for", "union", "intersect", "except"})
# SQL value functions: a bare keyword with the keyword as its column name
_VALUE_FUNCS = frozenset({"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
                          "current_role", "current_user", "session_user", "user", "current_catalog",
                          "current_schema", "system_user"})
# PostgreSQL 15's keywords (pg_get_keywords()) by category: reserved words cannot start a
# column reference; quote_ident() quotes every keyword that is not unreserved; a select
# item's alias without AS must not be one of the NOT_BARE words
_RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc
distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral
leading limit localtime localtimestamp not null offset on only or order placing primary references returning select
session_user some symmetric table then to trailing true union unique user using variadic when where window with
""".split())
_QUOTED_KEYWORDS = _RESERVED | frozenset("""
between bigint bit boolean char character coalesce dec decimal exists extract float greatest grouping inout int
integer interval least national nchar none normalize nullif numeric out overlay position precision real row setof
smallint substring time timestamp treat trim values varchar xmlattributes xmlconcat xmlelement xmlexists xmlforest
xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull join left like
natural notnull outer overlaps right similar tablesample verbose
""".split())
_NOT_BARE = frozenset("""
array as char character create day except fetch filter for from grant group having hour intersect into isnull limit
minute month notnull offset on order over overlaps precision returning second to union varying where window with
within without year
""".split())
_SAFE_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def quote_ident(name: str) -> str:
    """PostgreSQL's quote_identifier(): quotes unless a plain lower-case name that is not a keyword."""
    if _SAFE_IDENT.match(name) and name not in _QUOTED_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


# how FigureColname names a cast to a type spelled with SQL's own syntax (gram.y's SystemTypeName)
_SYSTEM_TYPE_NAMES = {
    "int": "int4", "integer": "int4", "smallint": "int2", "bigint": "int8", "real": "float4",
    "float": "float8", "double precision": "float8", "decimal": "numeric", "dec": "numeric",
    "numeric": "numeric", "boolean": "bool", "char": "bpchar", "character": "bpchar", "nchar": "bpchar",
    "national character": "bpchar", "national char": "bpchar", "varchar": "varchar",
    "char varying": "varchar", "character varying": "varchar", "nchar varying": "varchar",
    "national character varying": "varchar", "national char varying": "varchar", "bit": "bit",
    "bit varying": "varbit", "time": "time", "timestamp": "timestamp", "interval": "interval",
    "json": "json",
}
_INTERVAL_FIELDS = frozenset({"year", "month", "day", "hour", "minute", "second", "to"})


def _truncate(name: str) -> str:
    """PostgreSQL truncates identifiers to NAMEDATALEN-1 bytes (on a character boundary)."""
    raw = name.encode()
    if len(raw) < NAMEDATALEN:
        return name
    return raw[:NAMEDATALEN - 1].decode(errors="ignore")


def _render(sql: str, t: Token) -> str:
    if t.kind == "w":
        return t.value
    if t.kind == "q":
        return '"' + t.value.replace('"', '""') + '"'
    return sql[t.start:t.end]


def join_tokens(sql: str, toks) -> str:
    """Tokens of `sql` as normalize() writes them (see there)."""
    out: list[str] = []
    glue = False  # no space around '.': `c.relname`, `pg_catalog.~`
    for t in toks:
        dot = t.kind == "c" and t.value == "."
        if out and not dot and not glue:
            out.append(" ")
        out.append(_render(sql, t))
        glue = dot
    return "".join(out)


def normalize(sql: str) -> str:
    """A text as Item.expr keys it: tokens joined by one space (none around '.'), comments
    dropped, unquoted words lower-cased, strings and quoted names as written."""
    return join_tokens(sql, iter_tokens(sql))


class _Parser:
    def __init__(self, sql: str, toks: list[Token]):
        self.sql = sql
        self.toks = toks

    # -- token helpers
    def word(self, i: int) -> str | None:
        toks = self.toks
        return toks[i].value if i < len(toks) and toks[i].kind == "w" else None

    def char(self, i: int, c: str) -> bool:
        toks = self.toks
        return i < len(toks) and toks[i].kind == "c" and toks[i].value == c

    def close(self, i: int) -> int:
        """i at '(' or '['; index after the matching close."""
        toks = self.toks
        depth = 0
        n = len(toks)
        while i < n:
            t = toks[i]
            if t.kind == "c":
                if t.value in "([":
                    depth += 1
                elif t.value in ")]":
                    depth -= 1
                    if depth == 0:
                        return i + 1
            i += 1
        raise _Unknown("unbalanced brackets")

    # -- statement
    def select(self, i: int, end: int) -> tuple[list[Item], int]:
        """Items of the SELECT starting at toks[i] (WITH, parenthesised SELECT allowed)."""
        ctes: dict[str, list[str]] = {}
        while self.char(i, "(") and i + 1 < end:
            i += 1  # (SELECT ...) UNION ...: the first branch names the columns
        if self.word(i) == "with":
            i = self._with(i + 1, end, ctes)
        if self.word(i) != "select":
            raise _Unknown("not a SELECT")
        i += 1
        if self.word(i) == "all":
            i += 1
        elif self.word(i) == "distinct":
            i += 1
            if self.word(i) == "on" and self.char(i + 1, "("):
                i = self.close(i + 1)
        items: list[Item] = []
        stars: list[int] = []  # positions of '*' items, expanded from a CTE below
        if i < end and self.word(i) not in _CLAUSE_END and not self.char(i, ")"):  # else SELECT with no columns
            while True:
                j = self._item_end(i, end)
                if j == i:
                    raise _Unknown("empty select item")
                if j == i + 1 and self.toks[i].kind == "o" and self.toks[i].value == "*":
                    stars.append(len(items))
                    items.append(Item("*", "*"))
                else:
                    items.append(self.item(i, j))
                i = j
                if i < end and self.char(i, ","):
                    i += 1
                    continue
                break
        if stars:
            items = self._expand_stars(items, stars, i, end, ctes)
        return items, i

    def _with(self, i: int, end: int, ctes: dict) -> int:
        if self.word(i) == "recursive":
            i += 1
        while i < end:
            t = self.toks[i]
            if t.kind not in ("w", "q"):
                raise _Unknown("CTE name")
            name = t.value
            i += 1
            cols: list[str] = []
            if self.char(i, "("):
                j = self.close(i)
                for k in range(i + 1, j - 1):
                    tk = self.toks[k]
                    if tk.kind in ("w", "q"):
                        cols.append(tk.value)
                    elif not self.char(k, ","):
                        raise _Unknown("CTE column list")
                i = j
            if self.word(i) != "as":
                raise _Unknown("CTE without AS")
            i += 1
            if self.word(i) == "not":
                i += 1
            if self.word(i) == "materialized":
                i += 1
            if not self.char(i, "("):
                raise _Unknown("CTE body")
            i = self.close(i)
            if self.word(i) in ("search", "cycle"):
                raise _Unknown("CTE SEARCH/CYCLE")
            ctes[name] = cols
            if self.char(i, ","):
                i += 1
                continue
            return i
        raise _Unknown("WITH without a statement")

    def _expand_stars(self, items, stars, i, end, ctes):
        """`SELECT *, x FROM cte` where the CTE lists its columns (asyncpg's typeinfo query)."""
        if self.word(i) != "from" or i + 1 >= end or self.toks[i + 1].kind not in ("w", "q"):
            raise _Unknown("* over something that is not a CTE")
        cols = ctes.get(self.toks[i + 1].value)
        k = i + 2
        if k < end and self.toks[k].kind in ("w", "q") and self.word(k) not in _CLAUSE_END:
            raise _Unknown("* over an aliased relation")
        if not cols or (k < end and self.char(k, ",")) or self.word(k) in ("join", "left", "right", "inner",
                                                                          "full", "cross", "natural"):
            raise _Unknown("* over something that is not one CTE with a column list")
        out: list[Item] = []
        for pos, it in enumerate(items):
            if pos in stars:
                out.extend(Item(c, _truncate(c)) for c in cols)
            else:
                out.append(it)
        return out

    def _item_end(self, i: int, end: int) -> int:
        """Index of the ',' / clause keyword / ')' / end that closes the item starting at i."""
        toks = self.toks
        while i < end:
            t = toks[i]
            if t.kind == "c":
                if t.value in "([":
                    i = self.close(i)
                    continue
                if t.value in ",)];":
                    return i
            elif t.kind == "w":
                v = t.value
                if v == "case":
                    i = self._case_end(i)
                    continue
                if v in _CLAUSE_END and not (v == "from" and self.word(i - 1) == "distinct") \
                        and not (v == "for" and self.word(i - 1) == "collation"):
                    return i
            i += 1
        return i

    def _case(self, i: int):
        """CASE ... END: named after its ELSE result when that has a strong name, else `case`."""
        end = self._case_end(i) - 1  # the END
        depth = 0
        k = i + 1
        else_at = None
        while k < end:
            t = self.toks[k]
            if t.kind == "c" and t.value in "([":
                k = self.close(k)
                continue
            if t.kind == "w":
                if t.value == "case":
                    k = self._case_end(k)
                    continue
                if t.value == "else" and depth == 0:
                    else_at = k
            k += 1
        if else_at is not None:
            j, name, strength = self.expr(else_at + 1, end)
            if j == end and strength == 2:
                return end + 1, name, 2
        return end + 1, "case", 1

    def _case_end(self, i: int) -> int:
        depth = 0
        n = len(self.toks)
        while i < n:
            t = self.toks[i]
            if t.kind == "c" and t.value in "([":
                i = self.close(i)
                continue
            if t.kind == "w":
                if t.value == "case":
                    depth += 1
                elif t.value == "end":
                    depth -= 1
                    if depth == 0:
                        return i + 1
            i += 1
        raise _Unknown("CASE without END")

    # -- one select item
    def item(self, i: int, end: int) -> Item:
        toks = self.toks
        if toks[end - 1].kind == "o" and toks[end - 1].value == "*" and end - i >= 2 and self.char(end - 2, "."):
            raise _Unknown("t.* expands to an unknown number of columns")
        j, name, _strength = self.expr(i, end)
        alias = None
        if j < end:
            if self.word(j) == "as" and j + 2 == end and toks[j + 1].kind in ("w", "q"):
                alias = toks[j + 1].value
            elif j + 1 == end and (toks[j].kind == "q" or toks[j].kind == "w" and toks[j].value not in _NOT_BARE
                                   and toks[j].value not in _RESERVED):
                alias = toks[j].value
            else:
                raise _Unknown(f"cannot read select item {self.sql[toks[i].start:toks[end - 1].end]!r}")
        expr = join_tokens(self.sql, toks[i:j])
        return Item(expr, _truncate(alias if alias is not None else (name or "?column?")))

    # expression levels, loosest first; each returns (next index, name, strength) where
    # strength is FigureColname's: 0 no name, 1 a weak name (case, cast), 2 a strong name
    def expr(self, i: int, end: int):
        i, name, strength = self.at_level(i, end)
        while i < end:
            t = self.toks[i]
            w = t.value if t.kind == "w" else None
            if t.kind == "o" and t.value != "::":
                i, _, _ = self.at_level(i + 1, end)
            elif w in ("and", "or", "like", "ilike", "in", "overlaps", "escape"):
                i, _, _ = self.at_level(i + 1, end)
            elif w == "not" and self.word(i + 1) in ("like", "ilike", "in", "between", "similar"):
                i += 1
                continue
            elif w == "similar" and self.word(i + 1) == "to":
                i, _, _ = self.at_level(i + 2, end)
            elif w == "between":
                i += 1
                if self.word(i) in ("symmetric", "asymmetric"):
                    i += 1
                i, _, _ = self.at_level(i, end)
            elif w in ("isnull", "notnull"):
                i, name, strength = self._after_postfix(i + 1, end, None, 0)
                continue
            elif w == "is":
                j = self._is(i + 1, end)
                # x IS [form] NORMALIZED is the function is_normalized(x); IS NOT ... is NOT of it
                if self.word(j - 1) == "normalized" and self.word(i + 1) != "not":
                    i, name, strength = self._after_postfix(j, end, "is_normalized", 2)
                else:
                    i, name, strength = self._after_postfix(j, end, None, 0)
                continue
            elif w == "operator" and self.char(i + 1, "("):
                i, _, _ = self.at_level(self.close(i + 1), end)
            else:
                break
            name, strength = None, 0
        return i, name, strength

    def _is(self, i: int, end: int) -> int:
        if self.word(i) == "not":
            i += 1
        w = self.word(i)
        if w in ("null", "true", "false", "unknown", "document", "normalized"):
            return i + 1
        if w in ("nfc", "nfd", "nfkc", "nfkd") and self.word(i + 1) == "normalized":
            return i + 2
        if w == "distinct" and self.word(i + 1) == "from":
            return self.at_level(i + 2, end)[0]
        raise _Unknown("IS ...")

    def _after_postfix(self, i: int, end: int, name, strength):
        """`x IS NULL::text COLLATE "C"`: casts and COLLATE after a postfix test apply to it."""
        while i < end:
            if self.toks[i].kind == "o" and self.toks[i].value == "::":
                tname, i = self.type_name(i + 1, end)
                if strength <= 1:
                    name, strength = tname, 1
            elif self.word(i) == "collate" and i + 1 < end:
                _, i = self.qualified_name(i + 1, end)
            else:
                break
        return i, name, strength

    def at_level(self, i: int, end: int):
        """Operand with COLLATE / AT TIME ZONE (tighter than any binary operator)."""
        i, name, strength = self.unary(i, end)
        while i < end:
            w = self.word(i)
            if w == "collate" and i + 1 < end:
                _, i = self.qualified_name(i + 1, end)
            elif self.toks[i].kind == "o" and self.toks[i].value == "::":  # 'x' COLLATE "C"::text
                tname, i = self.type_name(i + 1, end)
                if strength <= 1:
                    name, strength = tname, 1
            elif w == "at" and self.word(i + 1) == "time" and self.word(i + 2) == "zone":
                i, _, _ = self.unary(i + 3, end)
                name, strength = "timezone", 2
            elif w == "at" and self.word(i + 1) == "local":
                i += 2
                name, strength = "timezone", 2
            else:
                break
        return i, name, strength

    def unary(self, i: int, end: int):
        if i >= end:
            raise _Unknown("missing operand")
        t = self.toks[i]
        if (t.kind == "o" and t.value != "::") or t.value == "not" and t.kind == "w":
            j, _, _ = self.unary(i + 1, end)
            return j, None, 0
        return self.postfix(i, end)

    def postfix(self, i: int, end: int):
        i, name, strength = self.primary(i, end)
        while i < end:
            t = self.toks[i]
            if t.kind == "o" and t.value == "::":
                tname, i = self.type_name(i + 1, end)
                if strength <= 1:
                    name, strength = tname, 1
            elif t.kind == "c" and t.value == "[":
                i = self.close(i)
            elif t.kind == "c" and t.value == "." and i + 1 < end and self.toks[i + 1].kind in ("w", "q"):
                name, strength = self.toks[i + 1].value, 2
                i += 2
            elif t.kind == "c" and t.value == ".":
                raise _Unknown("(x).* or a stray '.'")
            else:
                break
        return i, name, strength

    def qualified_name(self, i: int, end: int) -> tuple[list[str], int]:
        parts = []
        while i < end and self.toks[i].kind in ("w", "q"):
            parts.append(self.toks[i].value)
            i += 1
            if i + 1 < end and self.char(i, ".") and self.toks[i + 1].kind in ("w", "q"):
                i += 1
                continue
            break
        if not parts:
            raise _Unknown("name expected")
        return parts, i

    def type_name(self, i: int, end: int) -> tuple[str, int]:
        """A type after :: or in CAST / a typed literal; returns (FigureColname's name, next index)."""
        if i >= end or self.toks[i].kind not in ("w", "q"):
            raise _Unknown("type name expected")
        quoted = self.toks[i].kind == "q"
        parts, i = self.qualified_name(i, end)
        name = parts[-1]
        spelled = None
        if len(parts) == 1 and not quoted:
            words = [name]
            if name == "double" and self.word(i) == "precision":
                words.append("precision")
                i += 1
            elif name == "national" and self.word(i) in ("character", "char"):
                words.append(self.word(i))
                i += 1
            if words[-1] in ("character", "char", "nchar", "bit") and self.word(i) == "varying":
                words.append("varying")
                i += 1
            spelled = " ".join(words)
            name = _SYSTEM_TYPE_NAMES.get(spelled, spelled if len(words) == 1 else "")
            if not name:
                raise _Unknown(f"type {spelled}")
        if spelled == "float" and self.char(i, "("):
            j = self.close(i)
            inner = self.toks[i + 1:j - 1]
            if len(inner) != 1 or inner[0].kind != "n" or not inner[0].value.isdigit():
                raise _Unknown("float(p)")
            name = "float4" if int(inner[0].value) <= 24 else "float8"
            i = j
        if spelled == "interval":
            while self.word(i) in _INTERVAL_FIELDS:  # interval day to second(3)
                i += 1
        if self.char(i, "("):
            i = self.close(i)
        if spelled in ("time", "timestamp") and self.word(i) in ("with", "without") \
                and self.word(i + 1) == "time" and self.word(i + 2) == "zone":
            if self.word(i) == "with":
                name += "tz"
            i += 3
        while self.char(i, "["):
            i = self.close(i)
        if self.word(i) == "array":
            i += 1
            if self.char(i, "["):
                i = self.close(i)
        return name, i

    def primary(self, i: int, end: int):
        toks = self.toks
        t = toks[i]
        k = t.kind
        if k in ("s", "b", "n", "p"):
            return i + 1, None, 0
        if k == "c" and t.value == "(":
            j = self.close(i)
            if j > end:
                raise _Unknown("unbalanced")
            inner_first = self.word(i + 1)
            if inner_first in ("select", "with", "values") or self._set_operation(i + 1):
                if inner_first == "values":
                    return j, "column1", 2
                items, _ = self.select(i + 1, j - 1)
                return j, items[0].name if items else "?column?", 2
            parts = self._split_commas(i + 1, j - 1)
            if len(parts) > 1:
                return j, "row", 2
            a, b = parts[0]
            e, name, strength = self.expr(a, b)
            if e != b:
                raise _Unknown("parenthesised expression")
            return j, name, strength
        if k == "q":
            return self.name_chain(i, end)
        if k != "w":
            raise _Unknown(f"unexpected {t.value!r}")
        w = t.value
        nxt_paren = self.char(i + 1, "(")
        if w == "case":
            return self._case(i)
        if w == "array" and (self.char(i + 1, "[") or nxt_paren):
            return self.close(i + 1), "array", 2
        if w == "exists" and nxt_paren:
            return self.close(i + 1), "exists", 2
        if w == "row" and nxt_paren:
            return self.close(i + 1), "row", 2
        if w in ("true", "false", "null"):
            return i + 1, None, 0
        if w == "cast" and nxt_paren:
            j = self.close(i + 1)
            e, name, strength = self.expr(i + 2, j - 1)
            if self.word(e) != "as":
                raise _Unknown("CAST")
            tname, after = self.type_name(e + 1, j - 1)
            if after != j - 1:
                raise _Unknown("CAST type")
            return j, (tname if strength <= 1 else name), (1 if strength <= 1 else strength)
        if w == "trim" and nxt_paren:
            side = self.word(i + 2)
            fname = {"leading": "ltrim", "trailing": "rtrim"}.get(side or "", "btrim")
            return self._func_tail(self.close(i + 1), end), fname, 2
        if w == "collation" and self.word(i + 1) == "for" and self.char(i + 2, "("):
            return self.close(i + 2), "pg_collation_for", 2
        if w in _VALUE_FUNCS and not nxt_paren:
            return i + 1, w, 2
        if w in ("current_time", "current_timestamp", "localtime", "localtimestamp") and nxt_paren:
            return self.close(i + 1), w, 2
        if w in ("any", "all", "some") and nxt_paren:
            return self.close(i + 1), None, 0
        if w in _RESERVED:
            raise _Unknown(f"reserved word {w}")
        return self.name_chain(i, end)

    def _set_operation(self, i: int) -> bool:
        """`((SELECT 1) UNION (SELECT 2))`: a parenthesised query, not an expression in parens."""
        if not self.char(i, "("):
            return False
        j = self.close(i)
        k = i
        while self.char(k, "("):
            k += 1
        return self.word(k) in ("select", "with", "values") and self.word(j) in (
            "union", "intersect", "except", "order", "limit", "offset", "fetch")

    def _split_commas(self, i: int, end: int) -> list[tuple[int, int]]:
        parts = []
        start = i
        while i < end:
            if self.char(i, "(") or self.char(i, "["):
                i = self.close(i)
                continue
            if self.word(i) == "case":
                i = self._case_end(i)
                continue
            if self.char(i, ","):
                parts.append((start, i))
                start = i + 1
            i += 1
        parts.append((start, end))
        if any(a >= b for a, b in parts):
            raise _Unknown("empty element")
        return parts

    def name_chain(self, i: int, end: int):
        """A column reference, a function call, or a typed literal (`date '2024-01-02'`)."""
        start = i
        parts, i = self.qualified_name(i, end)
        if self.char(i, "(") and i < end:
            return self._func_tail(self.close(i), end), parts[-1], 2
        if i < end and self.toks[i].kind == "s":
            tname, _ = self.type_name(start, end)
            return self._interval_tail(i + 1, parts), tname, 1
        if i < end and self.toks[start].kind == "w" and len(parts) == 1 and parts[0] in (
                "double", "national", "character", "char", "bit", "time", "timestamp", "interval", "nchar"):
            tname, j = self.type_name(start, end)  # `timestamp with time zone '...'`, `interval '1' day`
            if j < end and self.toks[j].kind == "s":
                return self._interval_tail(j + 1, parts), tname, 1
        return i, parts[-1], 2

    def _interval_tail(self, i: int, parts: list[str]) -> int:
        """`interval '1' day to second(3)`: the fields after an interval literal."""
        if parts != ["interval"]:
            return i
        while self.word(i) in _INTERVAL_FIELDS:
            i += 1
        if self.char(i, "("):
            i = self.close(i)
        return i

    def _func_tail(self, i: int, end: int) -> int:
        """WITHIN GROUP (...), FILTER (...), OVER (...) / OVER name after a call."""
        while i < end:
            w = self.word(i)
            if w == "within" and self.word(i + 1) == "group" and self.char(i + 2, "("):
                i = self.close(i + 2)
            elif w == "filter" and self.char(i + 1, "("):
                i = self.close(i + 1)
            elif w == "over" and self.char(i + 1, "("):
                i = self.close(i + 1)
            elif w == "over" and i + 1 < end and self.toks[i + 1].kind in ("w", "q"):
                i += 2
            else:
                break
        return i


# process-wide, so bounded by bytes too: texts up to 8 KiB (driver and psql catalog queries are
# 1-3 kB) are cached, 2048 of them (~16 MiB at most); a longer text is parsed each time
_CACHE_MAX_CHARS = 8192


def select_items(sql: str) -> tuple[Item, ...] | None:
    """The output columns of one SELECT statement, or None when the text does not tell."""
    return _select_items_cached(sql) if len(sql) <= _CACHE_MAX_CHARS else _select_items(sql)


def _select_items(sql: str) -> tuple[Item, ...] | None:
    toks = list(iter_tokens(sql))
    while toks and toks[-1].kind == "c" and toks[-1].value == ";":
        toks.pop()
    if any(t.kind == "c" and t.value == ";" for t in toks):
        return None  # several statements
    p = _Parser(sql, toks)
    try:
        items, after = p.select(0, len(toks))
    except (_Unknown, IndexError):
        return None
    if after < len(toks) and p.word(after) not in _CLAUSE_END and not p.char(after, ")"):
        return None  # something after the select list that is not a clause
    if any(it.name == "*" for it in items):
        return None
    return tuple(items)


_select_items_cached = functools.lru_cache(maxsize=2048)(_select_items)


def column_names(sql: str) -> tuple[str, ...] | None:
    items = select_items(sql)
    return None if items is None else tuple(it.name for it in items)


def conform(result: Result, sql: str, *, rename: bool = False) -> Result | None:
    """``result`` if its columns are exactly the ones ``sql``'s select list asks for, else None.

    Same count, and the same names -- or, with ``rename``, PostgreSQL's names put on the
    columns (the constant evaluator names columns its own way). Every row must have one
    value per column. An error answer has no shape and passes.
    """
    if result.error is not None:
        return result
    items = select_items(sql)
    cols = result.columns
    if items is None or cols is None or len(items) != len(cols):
        return None
    if any(it.name != c.name for it, c in zip(items, cols)):
        if not rename:
            return None
        result = replace(result, columns=tuple(replace(c, name=it.name) for it, c in zip(items, cols)),
                         wire_cache={})
    if not callable(result.rows) and any(len(row) != len(cols) for row in result.rows):
        return None
    return result
