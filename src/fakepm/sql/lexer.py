"""THE PostgreSQL lexer of fakepm: SQL text -> tokens, as PostgreSQL's scan.l reads it.

This is the only module of fakepm that knows how SQL spells quotes and comments; every other
room asks it (a test walks src/ and fails on any other regular expression over SQL quotes or
comments). What it knows, from PostgreSQL's src/backend/parser/scan.l:

* whitespace ``[ \\t\\n\\r\\f\\v]``; line comments ``--`` up to ``\\n`` or ``\\r``; block comments
  ``/* ... */``, nested; a comment start inside an operator ends the operator (``+/*``);
* string constants in every spelling: standard ``'it''s'`` (standard_conforming_strings on, the
  default since 9.1: a backslash is an ordinary character), ``E'it\\'s\\n'`` with backslash
  escapes (``\\b \\f \\n \\r \\t``, octal, ``\\xHH``, ``\\uXXXX``, ``\\UXXXXXXXX``; byte escapes are
  assembled as UTF-8, as a UTF8 server does), ``N'...'``, ``U&'d\\0061t'`` and
  ``U&'d!0061t' UESCAPE '!'``, dollar quotes ``$$...$$`` / ``$tag$...$tag$`` (no escapes), and
  the SQL-standard continuation of ``'a'`` newline ``'b'`` into one constant;
* bit strings ``B'101'`` and ``X'1F'`` (value: the binary digits);
* identifiers: unquoted (ASCII letters fold to lower case), ``"My ""x"" name"``, ``U&"d\\0061t"``;
* parameters ``$1``; numbers (``1``, ``1.5``, ``.5``, ``1e-3``, and PostgreSQL 16's ``0x1F``,
  ``0o17``, ``0b101``, ``1_000``); operators (``::``, ``<>``, ``@>``, ... with scan.l's rule for a
  trailing ``+``/``-``); single characters ``( ) [ ] , ; . :``.

It never raises: an unterminated quote or comment runs to the end of the text (PostgreSQL
would answer 42601; whoever sends the text to a real server gets that error there). Where
versions differ it reads the newer superset: ``\\v`` is whitespace and ``0x1F``/``1_000`` are
numbers since PostgreSQL 16 (15 answers a syntax error for them, so no valid PostgreSQL 15
text is read differently).

Why here, in a room of its own (``fakepm.sql``) at the bottom of the house: the session
splits a simple Query and counts a Parse's ``$n``, the answers room shapes and classifies
statements and parses COPY, the recorder (proxy/) redacts passwords, the walsender parses
replication commands -- all from the same tokens. A leaf that imports nothing of fakepm can
serve every one of those rooms without pointing a dependency upwards (protocol/ is about
bytes and messages, answers/ about what to say; neither is SQL text).

Tokens (:class:`Token`) carry ``kind``, ``start``/``end`` offsets into the text (so the text as
written is ``sql[t.start:t.end]``) and a ``value``:

====  ====================  ==================================================================
kind  what                  value
====  ====================  ==================================================================
w     word                  keyword or unquoted identifier, ASCII lower-cased
q     quoted identifier     the name, ``""`` undoubled / ``U&`` escapes decoded
s     string constant       the str after PostgreSQL's unescaping (every spelling above)
b     bit string            ``'0'``/``'1'`` digits (``X'1F'`` -> ``'00011111'``)
n     number                the text as written
p     parameter             the int n of ``$n``
o     operator              the text (``::``, ``:=``, ``=``, ``<>``, ``||``, ``@>`` ...)
c     other character       ``(`` ``)`` ``[`` ``]`` ``,`` ``;`` ``.`` ``..`` ``:`` and strays (``$``, ``\\``)
====  ====================  ==================================================================
"""

from __future__ import annotations

import re
from typing import Iterator

__all__ = ["Token", "iter_tokens", "tokens", "is_blank"]

# Identifier characters: ASCII letters and `_` (then also digits and `$`) or any non-ASCII
# character, spelled as the complement of the other ASCII characters: the same sets as
# [A-Za-z_\x80-\U0010ffff] etc., but a class naming \x80-\U0010ffff costs ~20 ms of
# re.compile each, paid by every `import fakepm`.
_IDENT_START = r"^\x00-\x40\x5b-\x5e\x60\x7b-\x7f"
_IDENT_CONT = r"^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"
_DOLLAR_TAG_CONT = r"^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"  # _IDENT_CONT without `$`
_RE_WS = re.compile(r"[ \t\n\r\f\v]+")
_RE_NEWLINE = re.compile(r"[\n\r]")
_RE_IDENT = re.compile(f"[{_IDENT_START}][{_IDENT_CONT}]*")
_RE_NUMBER = re.compile(
    r"0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.(?!\.)[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?"
)
_RE_PARAM = re.compile(r"\$[0-9]+")
_RE_DOLLAR = re.compile(f"\\$(?:[{_IDENT_START}][{_DOLLAR_TAG_CONT}]*)?\\$")
_RE_OP = re.compile(r"[+\-*/<>=~!@#%^&|`?]+")
# the common tokens in one match (whitespace before them included): a word, a number, a
# parenthesis/bracket/comma/semicolon/dot, a standard string without '' or continuation, `::`
# or a one-character operator that no other operator character follows; everything else
# (and a one-letter word before a quote: E'', U&'') takes the careful path in iter_tokens
_RE_PLAIN = re.compile(
    f"[ \\t\\n\\r\\f\\v]*(?:(?P<w>[{_IDENT_START}][{_IDENT_CONT}]*)"
    r"|(?P<n>0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.(?!\.)[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<c>[(),;\[\]]|\.\.|\.(?![0-9]))"
    r"|(?P<s>'[^']*'(?!'))"
    r"|(?P<o>::|[=<>+*%^](?![~!@#%^&|`?+\-*/<>=])))"
)
_OP_SPECIAL = frozenset("~!@#%^&|`?")
_WS_CHARS = " \t\n\r\f\v"
_DIGITS = "0123456789"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_STRING_PREFIXES = "eEbBxXnN"
_PREFIX_CHARS = "eEbBxXnNuU"

_RE_IDENT_CHAR = re.compile(f"[{_IDENT_CONT}]")


class Token:
    """One token: kind (see the module docstring), offsets into the text, value."""

    __slots__ = ("kind", "start", "end", "value")

    def __init__(self, kind: str, start: int, end: int, value):
        self.kind = kind
        self.start = start
        self.end = end
        self.value = value

    def is_word(self, *words: str) -> bool:
        """An unquoted word, one of `words` (lower case)."""
        return self.kind == "w" and self.value in words

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Token({self.kind!r}, {self.start}, {self.end}, {self.value!r})"


# ---------------------------------------------------------------------------------- scanning


def _line_end(sql: str, i: int) -> int:
    """i points at '--': the index after the comment's newline (or the end)."""
    m = _RE_NEWLINE.search(sql, i)
    return len(sql) if m is None else m.end()


def _skip_block_comment(sql: str, i: int) -> int:
    """i points at '/*': the index after the matching (nested) '*/', or the end."""
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


def _skip_space(sql: str, i: int) -> int:
    """The index of the next token at or after i (whitespace and comments skipped)."""
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch in _WS_CHARS:
            i = _RE_WS.match(sql, i).end()
        elif ch == "-" and sql.startswith("--", i):
            i = _line_end(sql, i)
        elif ch == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        else:
            break
    return i


def _scan_quoted(sql: str, i: int, backslash: bool) -> tuple[str, int]:
    """i points just after an opening quote: (raw body, index after the closing quote)."""
    n = len(sql)
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
            return sql[start:], n
        if j + 1 < n and sql[j + 1] == "'":
            i = j + 2
            continue
        return sql[start:j], j + 1


def _continuation(sql: str, i: int) -> int:
    """scan.l's {quotecontinue}: i points after a closing quote; if whitespace holding a
    newline (line comments allowed) and then a quote follow, the index of that quote, else -1."""
    n = len(sql)
    newline = False
    while i < n:
        ch = sql[i]
        if ch in _WS_CHARS:
            j = _RE_WS.match(sql, i).end()
            if not newline and ("\n" in sql[i:j] or "\r" in sql[i:j]):
                newline = True
            i = j
        elif ch == "-" and sql.startswith("--", i):
            m = _RE_NEWLINE.search(sql, i)
            if m is None:
                return -1
            i = m.start()
        elif ch == "'" and newline:
            return i
        else:
            return -1
    return -1


def _scan_continued(sql: str, i: int, backslash: bool) -> tuple[list[str], int]:
    """A quoted constant with its continuation parts: (raw bodies, index after it)."""
    body, i = _scan_quoted(sql, i, backslash)
    bodies = [body]
    n = len(sql)
    while i < n and (sql[i] in _WS_CHARS or sql[i] == "-"):
        j = _continuation(sql, i)
        if j < 0:
            break
        body, i = _scan_quoted(sql, j + 1, backslash)
        bodies.append(body)
    return bodies, i


def _scan_quoted_ident(sql: str, i: int) -> tuple[str, int]:
    """i points just after an opening double quote: (name with "" undoubled, index after)."""
    n = len(sql)
    parts = []
    while True:
        j = sql.find('"', i)
        if j < 0:
            parts.append(sql[i:])
            return "".join(parts), n
        parts.append(sql[i:j])
        if j + 1 < n and sql[j + 1] == '"':
            parts.append('"')
            i = j + 2
            continue
        return "".join(parts), j + 1


def _uescape(sql: str, i: int) -> tuple[str, int]:
    """After a U& constant or identifier: (escape character, index after the UESCAPE clause);
    ('\\\\', i) when no `UESCAPE 'c'` follows."""
    j = _skip_space(sql, i)
    if sql[j:j + 7].lower() == "uescape" and not _RE_IDENT_CHAR.match(sql, j + 7):
        k = _skip_space(sql, j + 7)
        if sql.startswith("'", k):
            esc, end = _scan_quoted(sql, k + 1, backslash=False)
            esc = esc.replace("''", "'")
            if len(esc) == 1:
                return esc, end
    return "\\", i


_E_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_RE_E_ESC = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)|''", re.S)


def _unescape_e(body: str) -> str:
    """The value of E'body' (a UTF8 server's reading: byte escapes form UTF-8 sequences)."""
    if "\\" not in body:
        return body.replace("''", "'")
    out: list = []  # str pieces and bytearrays of escaped bytes
    pos = 0
    for m in _RE_E_ESC.finditer(body):
        if m.start() > pos:
            out.append(body[pos:m.start()])
        pos = m.end()
        if m.group(0) == "''":
            out.append("'")
            continue
        e = m.group(1)
        c = e[0]
        if len(e) == 1 and c in _E_ESCAPES:
            out.append(_E_ESCAPES[c])
        elif c == "x" and len(e) > 1 or c in "01234567":
            b = int(e[1:], 16) if c == "x" else int(e, 8) & 0xFF
            if out and isinstance(out[-1], bytearray):
                out[-1].append(b)
            else:
                out.append(bytearray((b,)))
        elif c in "uU" and len(e) > 1:
            try:
                out.append(chr(int(e[1:], 16)))
            except (ValueError, OverflowError):
                out.append(e)
        else:
            out.append(e)
    if pos < len(body):
        out.append(body[pos:])
    return "".join(p if isinstance(p, str) else _bytes_text(p) for p in out)


def _bytes_text(b: bytearray) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def _unescape_u(body: str, esc: str = "\\") -> str:
    """The value of U&'body' (or U&"body") with escape character `esc`; quotes undoubled."""
    body = body.replace("''", "'")
    if esc not in body:
        return body
    out = []
    i = 0
    n = len(body)
    hexdigits = "0123456789abcdefABCDEF"
    while i < n:
        c = body[i]
        if c != esc:
            out.append(c)
            i += 1
            continue
        if body.startswith(esc, i + 1):
            out.append(esc)
            i += 2
            continue
        if body.startswith("+", i + 1) and i + 8 <= n and all(x in hexdigits for x in body[i + 2:i + 8]):
            code, i = int(body[i + 2:i + 8], 16), i + 8
        elif i + 5 <= n and all(x in hexdigits for x in body[i + 1:i + 5]):
            code, i = int(body[i + 1:i + 5], 16), i + 5
        else:
            out.append(c)
            i += 1
            continue
        if 0xDC00 <= code <= 0xDFFF and out and isinstance(out[-1], int):  # the second half of a pair
            code = 0x10000 + ((out.pop() - 0xD800) << 10) + (code - 0xDC00)
        if 0xD800 <= code <= 0xDBFF:
            out.append(code)  # the first half of a surrogate pair: wait for the second
            continue
        out.append(chr(code) if code <= 0x10FFFF else "\ufffd")
    return "".join(chr(x) if isinstance(x, int) else x for x in out)


def iter_tokens(sql: str) -> Iterator[Token]:
    """The tokens of `sql` in order (comments and whitespace skipped). Never raises."""
    n = len(sql)
    i = 0
    plain = _RE_PLAIN.match
    while i < n:
        m = plain(sql, i)
        if m is not None:
            kind = m.lastgroup
            start = m.start(kind)
            end = m.end()
            if kind == "w":
                if end - start == 1 and end < n and sql[end] in "'&" and sql[start] in _PREFIX_CHARS:
                    i = start  # E'...', U&'...': the careful path
                else:
                    yield Token("w", start, end, sql[start:end].translate(_ASCII_LOWER))
                    i = end
                    continue
            elif kind == "s":
                if end < n and (sql[end] in _WS_CHARS or sql[end] == "-") and _continuation(sql, end) >= 0:
                    i = start  # 'a' newline 'b': the careful path
                else:
                    yield Token("s", start, end, sql[start + 1:end - 1])
                    i = end
                    continue
            else:
                yield Token(kind, start, end, sql[start:end])
                i = end
                continue
        ch = sql[i]
        if ch in _WS_CHARS:
            i = _RE_WS.match(sql, i).end()
            continue
        if ch == "-" and sql.startswith("--", i):
            i = _line_end(sql, i)
            continue
        if ch == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            continue
        start = i
        if ch == "'":
            bodies, i = _scan_continued(sql, i + 1, backslash=False)
            yield Token("s", start, i, "".join(bodies).replace("''", "'"))
            continue
        if ch in _STRING_PREFIXES and i + 1 < n and sql[i + 1] == "'":
            prefix = ch.lower()
            bodies, i = _scan_continued(sql, i + 2, backslash=(prefix == "e"))
            if prefix == "e":
                yield Token("s", start, i, "".join(_unescape_e(b) for b in bodies))
            elif prefix == "n":
                yield Token("s", start, i, "".join(bodies).replace("''", "'"))
            elif prefix == "b":
                yield Token("b", start, i, "".join(bodies).replace("''", "'"))
            else:  # x
                body = "".join(bodies)
                try:
                    bits = "".join(f"{int(c, 16):04b}" for c in body)
                except ValueError:
                    bits = body
                yield Token("b", start, i, bits)
            continue
        if ch in "uU" and i + 2 < n and sql[i + 1] == "&" and sql[i + 2] in "'\"":
            if sql[i + 2] == "'":
                bodies, i = _scan_continued(sql, i + 3, backslash=False)
                esc, i = _uescape(sql, i)
                yield Token("s", start, i, _unescape_u("".join(bodies), esc))
            else:
                name, i = _scan_quoted_ident(sql, i + 3)
                esc, i = _uescape(sql, i)
                yield Token("q", start, i, _unescape_u(name, esc))
            continue
        if ch == '"':
            name, i = _scan_quoted_ident(sql, i + 1)
            yield Token("q", start, i, name)
            continue
        if ch == "$":
            m = _RE_PARAM.match(sql, i)
            if m:
                i = m.end()
                yield Token("p", start, i, int(sql[start + 1:i]))
                continue
            m = _RE_DOLLAR.match(sql, i)
            if m:
                delim = m.group(0)
                j = sql.find(delim, m.end())
                if j < 0:
                    i = n
                    yield Token("s", start, i, sql[m.end():])
                else:
                    i = j + len(delim)
                    yield Token("s", start, i, sql[m.end():j])
                continue
            i += 1
            yield Token("c", start, i, "$")
            continue
        if ch == "." and sql.startswith("..", i):  # scan.l's DOT_DOT (1..2 is 1, .., 2)
            i += 2
            yield Token("c", start, i, "..")
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and sql[i + 1] in _DIGITS):
            m = _RE_NUMBER.match(sql, i)
            if m and m.end() > i:
                i = m.end()
                yield Token("n", start, i, sql[start:i])
                continue
        m = _RE_IDENT.match(sql, i)
        if m:
            i = m.end()
            yield Token("w", start, i, sql[start:i].translate(_ASCII_LOWER))
            continue
        if ch == ":" and (sql.startswith("::", i) or sql.startswith(":=", i)):
            i += 2
            yield Token("o", start, i, sql[start:i])
            continue
        m = _RE_OP.match(sql, i)
        if m:
            op = m.group(0)
            if len(op) > 1:
                for bad in ("--", "/*"):  # a comment start ends the operator
                    k = op.find(bad)
                    if k > 0:
                        op = op[:k]
                if len(op) > 1 and op[-1] in "+-" and not (_OP_SPECIAL & set(op)):
                    op = op.rstrip("+-") or op[0]
            i += len(op)
            yield Token("o", start, i, op)
            continue
        i += 1
        yield Token("c", start, i, ch)


def tokens(sql: str) -> list[Token]:
    """All tokens of `sql` (see iter_tokens)."""
    return list(iter_tokens(sql))


def is_blank(sql: str) -> bool:
    """True if `sql` holds no token: only whitespace and comments (or nothing)."""
    for _ in iter_tokens(sql):
        return False
    return True
