"""The replication command language (PostgreSQL's repl_gram.y / repl_scanner.l), sans-I/O.

`parse_command(sql)` turns one Query text into a small dataclass, or returns None when the
text does not start with a replication keyword (then it is SQL). Keywords are matched
case-insensitively, names may be double-quoted or bare (bare names fold to lower case),
plugin option values are single-quoted strings (or absent). A malformed command raises
PgError 42601 "syntax error" (PostgreSQL's text) with a DETAIL saying what fakepm expected.
The commands are parsed from fakepm.sql.lexer's tokens (the one lexer of the house), so a name
or option value is read as the SQL lexer reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.errors import PgError
from ..protocol.replication import parse_lsn
from ..sql.lexer import Token, iter_tokens, tokens

KEYWORDS = (
    "IDENTIFY_SYSTEM", "SHOW", "TIMELINE_HISTORY", "CREATE_REPLICATION_SLOT", "DROP_REPLICATION_SLOT",
    "READ_REPLICATION_SLOT", "START_REPLICATION", "BASE_BACKUP", "ALTER_REPLICATION_SLOT", "UPLOAD_MANIFEST",
)

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
    # the options as given, legacy keywords as their generic form: ((name, value-or-None), ...)
    options: tuple = field(default=(), compare=False)


@dataclass(frozen=True)
class AlterSlot:
    """ALTER_REPLICATION_SLOT name ( option [value] [, ...] ) (PostgreSQL 17+)."""

    name: str
    options: tuple = ()


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
    t = next(iter_tokens(sql), None)
    return t is not None and t.kind == "w" and t.value.upper() in KEYWORDS


def _tokens(sql: str) -> list[Token]:
    toks = tokens(sql)
    while toks and toks[-1].kind == "c" and toks[-1].value == ";":
        toks.pop()  # `command ;` is accepted
    return toks


def _syntax(detail: str, sql: str) -> PgError:
    return PgError("42601", "syntax error", detail=f"fakepm: {detail} in replication command {sql.strip()[:200]!r}")


_HEX = frozenset("0123456789abcdefABCDEF")


class _Parser:
    def __init__(self, sql: str):
        self.sql = sql
        self.toks = _tokens(sql)
        self.i = 0

    def text(self, t: Token) -> str:
        return self.sql[t.start:t.end]

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise _syntax("unexpected end of command", self.sql)
        self.i += 1
        return t

    def kw(self, word: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "w" and t.value == word.lower():
            self.i += 1
            return True
        return False

    def expect_kw(self, *words: str) -> str:
        t = self.take()
        for w in words:
            if t.kind == "w" and t.value == w.lower():
                return w
        raise _syntax(f"expected {' or '.join(words)}, got {self.text(t)!r}", self.sql)

    def punct(self, p: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "c" and t.value == p:
            self.i += 1
            return True
        return False

    def name(self, what: str) -> str:
        t = self.take()
        if t.kind not in ("w", "q"):
            raise _syntax(f"expected {what}, got {self.text(t)!r}", self.sql)
        return t.value

    def lsn(self) -> int:
        """repl_scanner.l's RECPTR, hex/hex: several SQL tokens written without a gap
        (0/16B3748 is a number, `/`, a number and a word)."""
        t = self.take()
        end = t.end
        while self.i < len(self.toks) and self.toks[self.i].start == end and self.toks[self.i].kind in "nwo":
            end = self.toks[self.i].end
            self.i += 1
        text = self.sql[t.start:end]
        hi, slash, lo = text.partition("/")
        if not (slash and 0 < len(hi) <= 8 and 0 < len(lo) <= 8 and _HEX.issuperset(hi) and _HEX.issuperset(lo)):
            raise _syntax(f"expected a WAL position like 0/0, got {text!r}", self.sql)
        return parse_lsn(text)

    def number(self, what: str) -> int:
        t = self.take()
        if t.kind != "n" or not t.value.isdigit():
            raise _syntax(f"expected {what} (a number), got {self.text(t)!r}", self.sql)
        return int(t.value)

    def end(self) -> None:
        t = self.peek()
        if t is not None:
            raise _syntax(f"unexpected {self.text(t)!r} after the end of the command", self.sql)

    def generic_options(self) -> list[tuple[str, str | None]]:
        """`( name [value] [, ...] )`; value: a quoted string, a bare word or a number."""
        opts: list[tuple[str, str | None]] = []
        if not self.punct("("):
            return opts
        while True:
            name = self.name("an option name")
            value = None
            t = self.peek()
            if t is not None and not (t.kind == "c" and t.value in ",)"):
                self.i += 1
                value = t.value if t.kind == "s" else self.text(t)
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


# keywords a server of an older major does not have: there the word is not a replication command
_SINCE = {"ALTER_REPLICATION_SLOT": 17, "UPLOAD_MANIFEST": 17}


def parse_command(sql: str, major: int | None = None):
    """A command dataclass, or None when `sql` is not a replication command.

    `major`: the announced server's major version (None: the newest known). It decides which
    keywords exist (ALTER_REPLICATION_SLOT and UPLOAD_MANIFEST since 17) and which
    CREATE_REPLICATION_SLOT options (FAILOVER since 17), as that server's repl_gram.y and
    walsender.c do."""
    if not is_replication_command(sql):
        return None
    p = _Parser(sql)
    head = p.text(p.take()).upper()
    if major is not None and major < _SINCE.get(head, 0):
        return None
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
        n = _timeline(p)
        p.end()
        return TimelineHistory(n)
    if head == "CREATE_REPLICATION_SLOT":
        return _create_slot(p, major)
    if head == "ALTER_REPLICATION_SLOT":
        name = p.name("a slot name")
        if p.peek() is None or not (p.peek().kind == "c" and p.peek().value == "("):
            raise _syntax("ALTER_REPLICATION_SLOT needs ( options )", p.sql)
        options = tuple(p.generic_options())
        p.end()
        return AlterSlot(name, options)
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


def _timeline(p: _Parser) -> int:
    n = p.number("a timeline")
    if n <= 0:
        raise PgError("42601", f"invalid timeline {n}")  # repl_gram.y
    return n


_LEGACY = {"EXPORT_SNAPSHOT": ("snapshot", "export"), "NOEXPORT_SNAPSHOT": ("snapshot", "nothing"),
           "USE_SNAPSHOT": ("snapshot", "use"), "TWO_PHASE": ("two_phase", None), "RESERVE_WAL": ("reserve_wal", None)}


def _create_slot(p: _Parser, major: int | None = None) -> CreateSlot:
    name = p.name("a slot name")
    temporary = p.kw("TEMPORARY")
    kind = p.expect_kw("PHYSICAL", "LOGICAL").lower()
    plugin = p.name("an output plugin name") if kind == "logical" else None
    # old syntax: bare keywords after the plugin / PHYSICAL; new syntax (PG15+): ( option [value], ... )
    options = []
    while True:
        t = p.peek()
        word = p.text(t).upper() if t is not None and t.kind == "w" else None
        if word not in _LEGACY:
            break
        p.i += 1
        options.append(_LEGACY[word])
    if not options:
        options = p.generic_options()
    p.end()
    values = create_slot_options(kind, options, p.sql, major)
    return CreateSlot(name, kind, plugin, temporary, *values, options=tuple(options))


def create_slot_options(kind: str, options, sql: str = "", major: int | None = None) -> tuple:
    """(snapshot, two_phase, reserve_wal, failover) from CREATE_REPLICATION_SLOT's options, or the
    first error as walsender.c's parseCreateReplSlotOptions reports it: an option given twice or for
    the other kind of slot is 42601 "conflicting or redundant options"; failover is unknown before 17."""
    snapshot, two_phase, reserve_wal, failover = "export", False, False, False
    given: set = set()
    for opt, value in options:
        if opt == "failover" and major is not None and major < 17:
            opt = "?"  # PostgreSQL 15/16: elog(ERROR, "unrecognized option: failover")
        wrong_kind = {"snapshot": "physical", "two_phase": "physical", "failover": "physical",
                      "reserve_wal": "logical"}.get(opt)
        if wrong_kind is not None and (opt in given or kind == wrong_kind):
            raise PgError("42601", "conflicting or redundant options")
        given.add(opt)
        if opt == "snapshot":
            v = value or ""
            if v not in ("export", "use", "nothing"):
                raise PgError("22023", f'unrecognized value for CREATE_REPLICATION_SLOT option "snapshot": "{value}"')
            snapshot = v
        elif opt == "two_phase":
            two_phase = _bool_option(opt, value, sql)
        elif opt == "reserve_wal":
            reserve_wal = _bool_option(opt, value, sql)
        elif opt == "failover":
            failover = _bool_option(opt, value, sql)
        else:
            raise PgError("XX000", f"unrecognized option: {opt if opt != '?' else 'failover'}")
    return snapshot, two_phase, reserve_wal, failover


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
                if t is not None and t.kind == "s":
                    p.i += 1
                    value = t.value
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
        timeline = _timeline(p)
    p.end()
    return StartPhysical(slot, lsn, timeline)
