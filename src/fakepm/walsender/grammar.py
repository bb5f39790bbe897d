"""The replication command language (PostgreSQL's repl_gram.y / repl_scanner.l), sans-I/O.

`parse_command(sql)` turns one Query text into a small dataclass, or returns None when the
text does not start with a replication keyword (then it is SQL). Keywords are matched
case-insensitively, names may be double-quoted or bare (bare names fold to lower case),
plugin option values are single-quoted strings (or absent). A malformed command raises
PgError 42601 "syntax error" (PostgreSQL's text) with a DETAIL saying what fakepm expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..protocol.errors import PgError
from ..protocol.replication import parse_lsn

KEYWORDS = (
    "IDENTIFY_SYSTEM", "SHOW", "TIMELINE_HISTORY", "CREATE_REPLICATION_SLOT", "DROP_REPLICATION_SLOT",
    "READ_REPLICATION_SLOT", "START_REPLICATION", "BASE_BACKUP", "ALTER_REPLICATION_SLOT", "UPLOAD_MANIFEST",
)

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lsn>[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8})
    | (?P<qident>"(?:[^"]|"")*")
    | (?P<string>'(?:[^']|'')*')
    | (?P<num>\d+)(?![\w/])
    | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<punct>[(),;])
    )""",
    re.X,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # lsn | ident | qident | string | num | punct
    text: str

    @property
    def name(self) -> str:
        """The identifier as PostgreSQL stores it."""
        if self.kind == "qident":
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()

    def is_kw(self, word: str) -> bool:
        return self.kind == "ident" and self.text.upper() == word


@dataclass(frozen=True)
class IdentifySystem:
    pass


@dataclass(frozen=True)
class Show:
    name: str


@dataclass(frozen=True)
class TimelineHistory:
    timeline: int


@dataclass(frozen=True)
class CreateSlot:
    name: str
    kind: str  # "logical" | "physical"
    plugin: str | None = None
    temporary: bool = False
    snapshot: str = "export"  # export | use | nothing
    two_phase: bool = False
    reserve_wal: bool = False
    failover: bool = False


@dataclass(frozen=True)
class DropSlot:
    name: str
    wait: bool = False


@dataclass(frozen=True)
class ReadSlot:
    name: str


@dataclass(frozen=True)
class StartLogical:
    slot: str
    lsn: int
    options: tuple = ()  # ((name, value-or-None), ...) in the order given


@dataclass(frozen=True)
class StartPhysical:
    slot: str | None
    lsn: int
    timeline: int | None = None


@dataclass(frozen=True)
class Unsupported:
    keyword: str


def is_replication_command(sql: str) -> bool:
    m = re.match(r"\s*([A-Za-z_]+)", sql)
    return bool(m) and m.group(1).upper() in KEYWORDS


def _tokens(sql: str) -> list[Tok]:
    out = []
    pos = 0
    text = sql.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _syntax(f"unexpected character {text[pos:].lstrip()[:1]!r} at offset {pos}", sql)
        kind = m.lastgroup
        out.append(Tok(kind, m.group(kind)))
        pos = m.end()
    while out and out[-1].kind == "punct" and out[-1].text == ";":
        out.pop()  # `command ;` is accepted
    return out


def _syntax(detail: str, sql: str) -> PgError:
    return PgError("42601", "syntax error", detail=f"fakepm: {detail} in replication command {sql.strip()[:200]!r}")


class _Parser:
    def __init__(self, sql: str):
        self.sql = sql
        self.toks = _tokens(sql)
        self.i = 0

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise _syntax("unexpected end of command", self.sql)
        self.i += 1
        return t

    def kw(self, word: str) -> bool:
        t = self.peek()
        if t is not None and t.is_kw(word):
            self.i += 1
            return True
        return False

    def expect_kw(self, *words: str) -> str:
        t = self.take()
        for w in words:
            if t.is_kw(w):
                return w
        raise _syntax(f"expected {' or '.join(words)}, got {t.text!r}", self.sql)

    def punct(self, p: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "punct" and t.text == p:
            self.i += 1
            return True
        return False

    def name(self, what: str) -> str:
        t = self.take()
        if t.kind not in ("ident", "qident"):
            raise _syntax(f"expected {what}, got {t.text!r}", self.sql)
        return t.name

    def lsn(self) -> int:
        t = self.take()
        if t.kind != "lsn":
            raise _syntax(f"expected a WAL position like 0/0, got {t.text!r}", self.sql)
        return parse_lsn(t.text)

    def number(self, what: str) -> int:
        t = self.take()
        if t.kind != "num":
            raise _syntax(f"expected {what} (a number), got {t.text!r}", self.sql)
        return int(t.text)

    def end(self) -> None:
        t = self.peek()
        if t is not None:
            raise _syntax(f"unexpected {t.text!r} after the end of the command", self.sql)

    def generic_options(self) -> list[tuple[str, str | None]]:
        """`( name [value] [, ...] )`; value: a quoted string, a bare word or a number."""
        opts: list[tuple[str, str | None]] = []
        if not self.punct("("):
            return opts
        while True:
            name = self.name("an option name")
            value = None
            t = self.peek()
            if t is not None and not (t.kind == "punct" and t.text in ",)"):
                self.i += 1
                value = t.text[1:-1].replace("''", "'") if t.kind == "string" else t.text
            opts.append((name, value))
            if self.punct(","):
                continue
            if self.punct(")"):
                return opts
            raise _syntax("expected ',' or ')' in the option list", self.sql)


def _bool_option(name: str, value: str | None, sql: str) -> bool:
    if value is None:
        return True
    low = value.lower()
    if low in ("true", "on", "1", "yes"):
        return True
    if low in ("false", "off", "0", "no"):
        return False
    raise PgError("42601", f"{name} requires a Boolean value", detail=f"fakepm: got {value!r} in {sql.strip()[:200]!r}")


def parse_command(sql: str):
    """A command dataclass, or None when `sql` is not a replication command."""
    if not is_replication_command(sql):
        return None
    p = _Parser(sql)
    head = p.take().text.upper()
    if head == "IDENTIFY_SYSTEM":
        p.end()
        return IdentifySystem()
    if head == "SHOW":
        name = p.name("a setting name")
        while p.punct("."):  # pragma: no cover - dotted GUCs are rare
            name += "." + p.name("a setting name")
        p.end()
        return Show(name)
    if head == "TIMELINE_HISTORY":
        n = p.number("a timeline")
        p.end()
        return TimelineHistory(n)
    if head == "CREATE_REPLICATION_SLOT":
        return _create_slot(p)
    if head == "DROP_REPLICATION_SLOT":
        name = p.name("a slot name")
        wait = p.kw("WAIT")
        p.end()
        return DropSlot(name, wait)
    if head == "READ_REPLICATION_SLOT":
        name = p.name("a slot name")
        p.end()
        return ReadSlot(name)
    if head == "START_REPLICATION":
        return _start(p)
    return Unsupported(head)


def _create_slot(p: _Parser) -> CreateSlot:
    name = p.name("a slot name")
    temporary = p.kw("TEMPORARY")
    kind = p.expect_kw("PHYSICAL", "LOGICAL").lower()
    plugin = p.name("an output plugin name") if kind == "logical" else None
    snapshot, two_phase, reserve_wal, failover = "export", False, False, False
    # old syntax: bare keywords after the plugin / PHYSICAL
    while True:
        if p.kw("EXPORT_SNAPSHOT"):
            snapshot = "export"
        elif p.kw("NOEXPORT_SNAPSHOT"):
            snapshot = "nothing"
        elif p.kw("USE_SNAPSHOT"):
            snapshot = "use"
        elif p.kw("TWO_PHASE"):
            two_phase = True
        elif p.kw("RESERVE_WAL"):
            reserve_wal = True
        else:
            break
    # new syntax (PG15+): ( SNAPSHOT 'x', TWO_PHASE [bool], RESERVE_WAL [bool], FAILOVER [bool] )
    for opt, value in p.generic_options():
        if opt == "snapshot":
            v = (value or "").lower()
            if v not in ("export", "use", "nothing"):
                raise PgError("22023", f'unrecognized value for CREATE_REPLICATION_SLOT option "snapshot": "{value}"')
            snapshot = v
        elif opt == "two_phase":
            two_phase = _bool_option(opt, value, p.sql)
        elif opt == "reserve_wal":
            reserve_wal = _bool_option(opt, value, p.sql)
        elif opt == "failover":
            failover = _bool_option(opt, value, p.sql)
        else:
            raise PgError("XX000", f"unrecognized option: {opt}")
    p.end()
    return CreateSlot(name, kind, plugin, temporary, snapshot, two_phase, reserve_wal, failover)


def _start(p: _Parser):
    slot = None
    if p.kw("SLOT"):
        slot = p.name("a slot name")
    if p.kw("LOGICAL"):
        if slot is None:
            raise _syntax("START_REPLICATION ... LOGICAL needs SLOT name", p.sql)
        lsn = p.lsn()
        opts = []
        if p.punct("("):
            while True:
                name = p.name("a plugin option name")
                value = None
                t = p.peek()
                if t is not None and t.kind == "string":
                    p.i += 1
                    value = t.text[1:-1].replace("''", "'")
                opts.append((name, value))
                if p.punct(","):
                    continue
                if p.punct(")"):
                    break
                raise _syntax("expected ',' or ')' in the plugin option list", p.sql)
        p.end()
        return StartLogical(slot, lsn, tuple(opts))
    p.kw("PHYSICAL")
    lsn = p.lsn()
    timeline = None
    if p.kw("TIMELINE"):
        timeline = p.number("a timeline")
    p.end()
    return StartPhysical(slot, lsn, timeline)
