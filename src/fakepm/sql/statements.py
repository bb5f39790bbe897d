"""What the rooms read from a text's tokens alone: statements, parameters, literals, redaction.

* ``split_statements(sql)`` -- a simple Query's statements, split where PostgreSQL splits them;
* ``count_params(sql)`` -- the highest ``$n`` of a statement (what a Parse without types gets);
* ``literals(sql)`` / ``replace_literals(sql, fn)`` -- the string constants, every spelling;
* ``redact_passwords(sql)`` -- the constant after each PASSWORD replaced (the recorder).

All of them read fakepm.sql.lexer's tokens, so a ``;`` or ``$1`` inside ``'...'``, ``E'...'``,
``$$...$$``, ``$tag$...$tag$``, ``U&'...'``, a quoted identifier or a comment is text, never
syntax. Cached per distinct text (functools.lru_cache) where the hot path asks again and again.
"""

from __future__ import annotations

import functools
from typing import Callable

from .lexer import Token, is_blank, iter_tokens

__all__ = ["split_statements", "count_params", "literals", "replace_literals", "redact_passwords"]

_CACHE_SIZE = 4096
_CACHE_MAX_CHARS = 65536  # longer texts are computed every time instead of pinned in a cache

# psql's heuristic (psqlscan.l) for SQL-standard function bodies: in CREATE [OR REPLACE]
# FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END, the ';' between BEGIN and END do not split
_ROUTINE_HEAD = (("create", "function"), ("create", "procedure"), ("create", "or", "replace", "function"),
                 ("create", "or", "replace", "procedure"))


def _scan_split(sql: str) -> tuple[str, ...]:
    out = []
    seg = 0  # where the current statement's text starts
    has_token = False
    depth = 0  # parentheses
    head: list[str] = []  # the statement's first words, to spot CREATE FUNCTION
    routine = False
    begin_depth = 0
    for t in iter_tokens(sql):
        k = t.kind
        if k == "c":
            v = t.value
            if v == ";" and depth == 0 and begin_depth == 0:
                if has_token:
                    out.append(sql[seg:t.start].strip())
                seg = t.end
                has_token = False
                head = []
                routine = False
                continue
            if v == "(":
                depth += 1
            elif v == ")" and depth > 0:
                depth -= 1
        elif k == "w":
            if len(head) < 4 and not routine:
                head.append(t.value)
                routine = tuple(head) in _ROUTINE_HEAD
            elif routine and depth == 0:
                v = t.value
                if v == "begin":
                    begin_depth += 1
                elif v == "case" and begin_depth:
                    begin_depth += 1  # CASE ... END inside BEGIN ... END
                elif v == "end" and begin_depth:
                    begin_depth -= 1
        has_token = True
    if has_token:
        out.append(sql[seg:].strip())
    return tuple(out)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _split_cached(sql: str) -> tuple[str, ...]:
    return _scan_split(sql)


def split_statements(sql: str) -> list[str]:
    """Split a simple-Query text into its statements, as PostgreSQL does.

    Splits on ';' outside string constants (every spelling), quoted identifiers, (nested)
    comments and parentheses, and not between BEGIN and END of a CREATE FUNCTION/PROCEDURE
    ... BEGIN ATOMIC body (psql's rule). Each statement comes back without its ';' and the
    whitespace around it; empty and comment-only statements are dropped (PostgreSQL sends no
    CommandComplete for them). Never raises; an unterminated quote or comment runs to the end.
    """
    try:
        if ";" not in sql:
            s = sql.strip()
            if not s or (("-" in s or "/" in s) and is_blank(s)):
                return []
            return [s]
        if len(sql) > _CACHE_MAX_CHARS:
            return list(_scan_split(sql))
        return list(_split_cached(sql))
    except Exception:  # noqa: BLE001 - never raise; treat as one statement
        s = str(sql).strip()
        return [s] if s else []


def _max_param(sql: str) -> int:
    return max((t.value for t in iter_tokens(sql) if t.kind == "p"), default=0)


_max_param_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_max_param)


def count_params(sql: str) -> int:
    """The highest $n in `sql` (0 for none): how many parameters PostgreSQL gives a statement
    parsed without parameter types ($n inside strings, identifiers and comments do not count)."""
    if "$" not in sql:
        return 0
    if len(sql) > _CACHE_MAX_CHARS:
        return _max_param(sql)
    return _max_param_cached(sql)


def literals(sql: str) -> list[Token]:
    """The string constants of `sql` in order (kind "s": value is the unescaped text; the
    text as written is sql[t.start:t.end])."""
    return [t for t in iter_tokens(sql) if t.kind == "s"]


def replace_literals(sql: str, fn: Callable[[Token, str], str | None]) -> str:
    """`sql` with each string constant's text replaced by fn(token, text as written);
    a constant for which fn returns None stays as it was."""
    out = []
    pos = 0
    for t in iter_tokens(sql):
        if t.kind != "s":
            continue
        new = fn(t, sql[t.start:t.end])
        if new is None:
            continue
        out.append(sql[pos:t.start])
        out.append(new)
        pos = t.end
    if not out:
        return sql
    out.append(sql[pos:])
    return "".join(out)


def redact_passwords(sql: str, replacement: str = "'[REDACTED]'") -> str:
    """`sql` with the string constant right after each PASSWORD keyword replaced (CREATE/ALTER
    ROLE ... PASSWORD '...', USER MAPPING OPTIONS (password '...')), in every spelling:
    '...', E'...', U&'...' [UESCAPE 'c'], $$...$$, $tag$...$tag$."""
    if "password" not in sql.lower():
        return sql
    out = []
    pos = 0
    after_password = False
    for t in iter_tokens(sql):
        if after_password and t.kind == "s":
            out.append(sql[pos:t.start])
            out.append(replacement)
            pos = t.end
        after_password = t.kind == "w" and t.value == "password"
    if not out:
        return sql
    out.append(sql[pos:])
    return "".join(out)
