"""Statements that change the session itself: transactions, savepoints, SET/RESET/SHOW,
DISCARD, DEALLOCATE, cursors (DECLARE/FETCH/MOVE/CLOSE), LISTEN/UNLISTEN/NOTIFY.

A user rule may still answer any of these (e.g. make COMMIT fail with 40001); the session
then follows the transaction effects of the statement (`follow_transaction`). Texts of
warnings and errors are PostgreSQL 15's. Statements are read from fakepm.sql's tokens, so
names and values may be quoted in any spelling PostgreSQL accepts.
"""

from __future__ import annotations

import functools
import re

from ..answers.result import Column, Result
from ..protocol.errors import PgError
from ..protocol.textstyle import parse_datestyle, style_of
from ..protocol.types import REGISTRY
from ..sql.lexer import Token, tokens
from ..sql.tags import classify
from .config import OTHER_SETTINGS, REPORTED_DEFAULTS, REPORTED_NAMES, version_num

ALLOWED_IN_FAILED_TX = frozenset({"ROLLBACK", "ROLLBACK TO", "COMMIT", "ROLLBACK PREPARED"})

_TEXT = REGISTRY.by_name("text")
_VOID = REGISTRY.by_name("void")

_WS = re.compile(r"\s+")


class _Stmt:
    """A statement's tokens (a trailing ';' dropped) and small readers over them."""

    __slots__ = ("sql", "toks")

    def __init__(self, sql: str):
        self.sql = sql
        toks = tokens(sql)
        while toks and toks[-1].kind == "c" and toks[-1].value == ";":
            toks.pop()
        self.toks = toks

    def __len__(self) -> int:
        return len(self.toks)

    def word(self, i: int) -> str | None:
        """The unquoted word at i (lower case), else None."""
        toks = self.toks
        return toks[i].value if i < len(toks) and toks[i].kind == "w" else None

    def name(self, i: int) -> tuple[str | None, int]:
        """(identifier at i as PostgreSQL stores it, index after it), dotted names joined."""
        toks = self.toks
        parts = []
        while i < len(toks) and toks[i].kind in ("w", "q"):
            parts.append(toks[i].value)
            i += 1
            if i + 1 < len(toks) and toks[i].kind == "c" and toks[i].value == "." and toks[i + 1].kind in ("w", "q"):
                i += 1
                continue
            break
        return (".".join(parts) if parts else None), i

    def text(self, i: int, j: int | None = None) -> str:
        """The text as written from token i to token j (exclusive; the end by default)."""
        toks = self.toks
        j = len(toks) if j is None else j
        if i >= j:
            return ""
        return self.sql[toks[i].start:toks[j - 1].end]

    def value(self, i: int, j: int | None = None) -> str:
        """A value written from token i to j: a string constant's value, else the text."""
        j = len(self.toks) if j is None else j
        if j == i + 1 and self.toks[i].kind == "s":
            return self.toks[i].value
        return self.text(i, j)

    def signed_int(self, i: int) -> tuple[str | None, int]:
        """`[+-]digits` at i: (its text, index after), else (None, i)."""
        toks = self.toks
        sign = ""
        j = i
        if j < len(toks) and toks[j].kind == "o" and toks[j].value in ("+", "-"):
            sign, j = toks[j].value, j + 1
        if j < len(toks) and toks[j].kind == "n" and toks[j].value.isdigit():
            return sign + toks[j].value, j + 1
        return None, i


@functools.lru_cache(maxsize=1024)
def _stmt_cached(sql: str) -> _Stmt:
    return _Stmt(sql)


def _stmt(sql: str) -> _Stmt:
    """The statement's tokens, cached per text (the same BEGIN/SET/SHOW come again and again;
    a _Stmt is never changed once made)."""
    return _stmt_cached(sql) if len(sql) <= 4096 else _Stmt(sql)


def literal(text: str) -> str:
    """A startup parameter's value: a quoted SQL string constant is unquoted, else kept."""
    toks = tokens(text)
    if len(toks) == 1 and toks[0].kind == "s":
        return toks[0].value
    return text.strip()


def _norm(sql: str) -> str:
    return _WS.sub(" ", sql.strip())


# ---------------------------------------------------------------------------- settings
def init_settings(session) -> None:
    s = session.settings
    for lname, (name, default) in OTHER_SETTINGS.items():
        s[lname] = default
    for name, default in REPORTED_DEFAULTS:
        s[name.lower()] = default
    s["server_version"] = session.config.version
    s["server_version_num"] = version_num(session.config.version)
    s["session_authorization"] = session.user
    for k, v in session.config.parameters.items():
        s[k.lower()] = str(v)
    # libpq `options=-c name=value` (the subscriber sends datestyle/intervalstyle/extra_float_digits)
    opts = session.startup_parameters.get("options", "")
    for m in re.finditer(r"(?:-c\s*|--)([A-Za-z_.]+)=(\S+)", opts):
        s[m.group(1).lower()] = m.group(2)
    for k, v in session.startup_parameters.items():
        if k not in ("user", "database", "replication", "options") and not k.startswith("_pq_."):
            s[k.lower()] = _clean_value(k.lower(), literal(v))
    session.text_style = style_of(s)


def _clean_value(lname: str, value: str, current: tuple | None = None) -> str:
    if lname == "client_encoding" and value.replace("-", "").replace("_", "").upper() in ("UTF8", "UNICODE"):
        return "UTF8"
    if lname == "datestyle":
        try:
            fmt, order = parse_datestyle(value, current or ("ISO", "MDY"))
        except ValueError:
            return value
        return f"{fmt}, {order}"
    return value


_STYLE_SETTINGS = frozenset({"datestyle", "intervalstyle", "timezone", "extra_float_digits", "bytea_output"})


def set_setting(session, name: str, value: str | None, local: bool = False) -> dict:
    """Set (or reset with None) one setting; returns ParameterStatus changes to report.

    Inside a transaction the value before it is kept: ROLLBACK restores it, and COMMIT
    restores it too when the change was `SET LOCAL` (as PostgreSQL does)."""
    lname = name.lower()
    if lname in ("time zone", "timezone"):
        lname = "timezone"
    if value is None:
        value = _default_of(session, lname)
    else:
        current = None
        if lname == "datestyle":  # 'DMY' alone keeps the style, 'German' alone the order (or DMY)
            try:
                current = parse_datestyle(session.settings.get("datestyle", "ISO, MDY"))
            except ValueError:
                current = None
        value = _clean_value(lname, value, current)
    if session.tx != "I":
        # lname -> [value before the transaction, value after COMMIT]
        undo = session.__dict__.setdefault("settings_undo", {})
        entry = undo.setdefault(lname, [session.settings.get(lname), session.settings.get(lname)])
        if not local:
            entry[1] = value
    return _apply_setting(session, lname, value)


def _apply_setting(session, lname: str, value: str | None) -> dict:
    if value is None:
        session.settings.pop(lname, None)
        if lname in _STYLE_SETTINGS:
            session.text_style = style_of(session.settings)
        return {}
    session.settings[lname] = value
    if lname in _STYLE_SETTINGS:
        session.text_style = style_of(session.settings)
    canonical = REPORTED_NAMES.get(lname)
    if canonical is not None and canonical in session.reported and session.reported[canonical] != value:
        session.reported[canonical] = value
        return {canonical: value}
    return {}


def _default_of(session, lname: str) -> str:
    for name, default in session.config.reported_parameters(session.user, session.startup_parameters):
        if name.lower() == lname:
            return default
    if lname in OTHER_SETTINGS:
        return OTHER_SETTINGS[lname][1]
    return ""


def _isolation(st: _Stmt, i: int) -> str | None:
    """The level of an `ISOLATION LEVEL ...` at or after token i, lower case, else None."""
    for k in range(i, len(st) - 2):
        if st.word(k) == "isolation" and st.word(k + 1) == "level":
            w1, w2 = st.word(k + 2), st.word(k + 3)
            if w1 == "serializable":
                return w1
            if (w1, w2) in (("read", "uncommitted"), ("read", "committed"), ("repeatable", "read")):
                return f"{w1} {w2}"
            return None
    return None


def _do_set(session, sql: str) -> Result:
    st = _stmt(sql)
    i = 1
    local = False
    if st.word(i) in ("session", "local") and not (st.word(i) == "session"
                                                 and st.word(i + 1) in ("authorization", "characteristics")):
        local = st.word(i) == "local"
        i += 1
    w, w2 = st.word(i), st.word(i + 1)
    if st.word(0) != "set" or i >= len(st):
        return _set_syntax_error(sql)
    if local and session.tx == "I":
        return Result(tag="SET", notices=(_warning("25P01", "SET LOCAL can only be used in transaction blocks"),))
    changes: dict = {}
    if w == "time" and w2 == "zone" and i + 2 < len(st):
        v = st.value(i + 2)
        changes = set_setting(session, "timezone", None if v.upper() in ("LOCAL", "DEFAULT") else v, local)
    elif w == "names" and i + 1 < len(st):
        changes = set_setting(session, "client_encoding", st.value(i + 1))
    elif w == "role" and i + 1 < len(st):
        session.settings["role"] = st.value(i + 1)
    elif w == "session" and w2 == "authorization" and i + 2 < len(st):
        v = st.value(i + 2)
        changes = set_setting(session, "session_authorization", None if v.upper() == "DEFAULT" else v)
    elif w == "transaction" or (w == "session" and w2 == "characteristics" and st.word(i + 2) == "as"
                                and st.word(i + 3) == "transaction"):
        level = _isolation(st, i + 1)
        key = "default_transaction_isolation" if w == "session" else "transaction_isolation"
        if level:
            session.settings[key] = level
    else:
        name, j = st.name(i)
        if name is None:
            return _set_syntax_error(sql)
        if j < len(st) and st.toks[j].kind == "o" and st.toks[j].value == "=" or st.word(j) == "to":
            j += 1
        else:
            return _set_syntax_error(sql)
        if j >= len(st):
            return _set_syntax_error(sql)
        if j + 1 == len(st) and st.word(j) == "default":
            changes = set_setting(session, name, None, local)
        else:
            values = [_set_value(st, name, a, b) for a, b in _split_list(st, j)]
            changes = set_setting(session, name, ", ".join(values), local)
    return Result(columns=None, tag="SET", set_parameters=changes or None)


def _set_syntax_error(sql: str) -> Result:
    return Result(error=PgError("42601", f'syntax error at or near "{sql.split()[-1] if sql.split() else ""}"'))


def _set_value(st: _Stmt, name: str, i: int, j: int) -> str:
    """One SET value as SHOW gives it back: 'lit' -> lit, "Ident" -> Ident (search_path keeps
    the quotes an identifier needs, as PostgreSQL shows it)."""
    t = st.toks[i]
    if j == i + 1 and t.kind == "q":
        if name == "search_path" and not re.fullmatch(r"[a-z_][a-z0-9_$]*", t.value):
            return '"' + t.value.replace('"', '""') + '"'
        return t.value
    return st.value(i, j)


def _split_list(st: _Stmt, i: int) -> list[tuple[int, int]]:
    """The comma-separated values from token i on, as token ranges."""
    out = []
    start = i
    depth = 0
    for k in range(i, len(st)):
        t = st.toks[k]
        if t.kind == "c":
            if t.value == "(":
                depth += 1
            elif t.value == ")":
                depth -= 1
            elif t.value == "," and depth == 0:
                if k > start:
                    out.append((start, k))
                start = k + 1
    if len(st) > start:
        out.append((start, len(st)))
    return out


_SHOW_ALIASES = {
    "transaction isolation level": "transaction_isolation",
    "time zone": "timezone",
    "session authorization": "session_authorization",
}


def _canonical_setting_name(lname: str) -> str:
    if lname in REPORTED_NAMES:
        return REPORTED_NAMES[lname]
    if lname in OTHER_SETTINGS:
        return OTHER_SETTINGS[lname][0]
    return lname


def _setting_name(st: _Stmt, i: int) -> str:
    """The setting named from token i on: an alias (TIME ZONE ...) or an identifier."""
    words = [st.word(k) for k in range(i, len(st))]
    if words and None not in words:
        alias = _SHOW_ALIASES.get(" ".join(words))
        if alias is not None:
            return alias
    name, j = st.name(i)
    if name is not None and j == len(st):
        return name
    return st.text(i)


def _do_show(session, sql: str) -> Result:
    lname = _setting_name(_stmt(sql), 1)
    if lname == "all":
        rows = [(_canonical_setting_name(k), v, "") for k, v in sorted(session.settings.items())]
        cols = (Column("name", _TEXT), Column("setting", _TEXT), Column("description", _TEXT))
        return Result(columns=cols, rows=rows, tag="SHOW")
    if lname not in session.settings:
        return Result(error=PgError("42704", f'unrecognized configuration parameter "{lname}"'))
    return Result(columns=(Column(_canonical_setting_name(lname), _TEXT),), rows=[(session.settings[lname],)],
                  tag="SHOW")


def _do_reset(session, sql: str) -> Result:
    st = _stmt(sql)
    changes: dict = {}
    if len(st) == 2 and st.word(1) == "all":
        for lname in list(session.settings):
            changes.update(set_setting(session, lname, None))
        init_settings(session)
    else:
        lname = _setting_name(st, 1)
        changes = set_setting(session, lname, None)
    return Result(columns=None, tag="RESET", set_parameters=changes or None)


# ---------------------------------------------------------------------------- transactions
def _warning(code: str, message: str) -> PgError:
    return PgError(code, message, severity="WARNING")


def _end_transaction(session, commit: bool) -> dict:
    """End the transaction; returns the ParameterStatus changes of settings it restores."""
    session.tx = "I"
    changes: dict = {}
    for lname, (before, after) in session.__dict__.pop("settings_undo", {}).items():
        target = after if commit else before
        if session.settings.get(lname) != target:
            changes.update(_apply_setting(session, lname, target))
    session.savepoints.clear()
    if commit:
        session.pending_notifies_commit()
    else:
        session.pending_notifies = []
    session.drop_portals(keep_holdable=True)
    return changes


def _savepoint_name(st: _Stmt, i: int) -> str:
    """The savepoint named at token i, after an optional SAVEPOINT keyword ("" if none)."""
    if st.word(i) == "savepoint" and i + 1 < len(st):
        i += 1
    name, j = st.name(i)
    return name if name is not None and "." not in name else ""


def _transaction(session, kind: str, sql: str, rule_error: PgError | None = None) -> Result | None:
    """Apply a transaction-control statement; return the builtin Result (None if not one)."""
    tx = session.tx
    st = _stmt(sql)
    if kind == "BEGIN":
        tag = "START TRANSACTION" if st.word(0) == "start" else "BEGIN"
        if rule_error is not None:
            return None
        if tx == "T":
            return Result(tag=tag, notices=(_warning("25001", "there is already a transaction in progress"),))
        session.tx = "T"
        level = _isolation(st, 1)
        if level:
            session.settings["transaction_isolation"] = level
        return Result(tag=tag)
    if kind in ("COMMIT", "ROLLBACK"):
        chain = len(st) >= 2 and st.word(len(st) - 2) == "and" and st.word(len(st) - 1) == "chain"
        if tx == "I":
            if chain:
                return Result(error=PgError("25P01", f"{kind} AND CHAIN can only be used in transaction blocks"))
            _end_transaction(session, kind == "COMMIT")
            return Result(tag=kind, notices=(_warning("25P01", "there is no transaction in progress"),))
        failed = tx == "E" or rule_error is not None
        changes = _end_transaction(session, kind == "COMMIT" and not failed)
        if chain:
            session.tx = "T"  # AND CHAIN: a new transaction with the same characteristics
        else:
            session.settings["transaction_isolation"] = session.settings.get("default_transaction_isolation",
                                                                            "read committed")
        tag = "ROLLBACK" if kind == "ROLLBACK" or tx == "E" else "COMMIT"
        return Result(tag=tag, set_parameters=changes or None)
    if kind == "ROLLBACK TO":
        i = 2 if st.word(1) in ("work", "transaction") else 1
        name = _savepoint_name(st, i + 1) if st.word(i) == "to" else ""
        if tx == "I":
            return Result(error=PgError("25P01", "ROLLBACK TO SAVEPOINT can only be used in transaction blocks"))
        if name not in session.savepoints:
            return Result(error=PgError("3B001", f'savepoint "{name}" does not exist'))
        if rule_error is not None:
            return None
        i = len(session.savepoints) - 1 - session.savepoints[::-1].index(name)
        del session.savepoints[i + 1 :]
        session.tx = "T"
        return Result(tag="ROLLBACK")
    if kind == "SAVEPOINT":
        name, _ = st.name(1)
        if tx == "I":
            return Result(error=PgError("25P01", "SAVEPOINT can only be used in transaction blocks"))
        if rule_error is None and name is not None:
            session.savepoints.append(name)
        return Result(tag="SAVEPOINT")
    if kind == "RELEASE":
        name = _savepoint_name(st, 1)
        if tx == "I":
            return Result(error=PgError("25P01", "RELEASE SAVEPOINT can only be used in transaction blocks"))
        if name not in session.savepoints:
            return Result(error=PgError("3B001", f'savepoint "{name}" does not exist'))
        if rule_error is None:
            i = len(session.savepoints) - 1 - session.savepoints[::-1].index(name)
            del session.savepoints[i:]
        return Result(tag="RELEASE")
    if kind == "PREPARE TRANSACTION":
        if tx == "I":
            return Result(tag="ROLLBACK",
                          notices=(_warning("25P01", "PREPARE TRANSACTION can only be used in transaction blocks"),))
        _end_transaction(session, tx == "T" and rule_error is None)
        return Result(tag="ROLLBACK" if tx == "E" else "PREPARE TRANSACTION")
    if kind in ("COMMIT PREPARED", "ROLLBACK PREPARED"):
        if tx != "I":
            return Result(error=PgError("25001", f"{kind} cannot run inside a transaction block"))
        return Result(tag=kind)
    return None


def follow_transaction(session, kind: str, sql: str, answer: Result) -> None:
    """A rule answered a statement: keep the transaction state right anyway."""
    if kind in ("BEGIN", "COMMIT", "ROLLBACK", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "PREPARE TRANSACTION"):
        if kind == "COMMIT" and answer.error is not None:
            # a failed COMMIT ends the transaction (rolled back), as in PostgreSQL
            _end_transaction(session, False)
            return
        _transaction(session, kind, sql, rule_error=answer.error)


# ---------------------------------------------------------------------------- LISTEN/NOTIFY
def queue_notify(session, channel: str, payload: str) -> None:
    """NOTIFY is delivered at commit: of the explicit transaction, or of the implicit one
    that ends with this Query/Sync (so a self-notification precedes the ReadyForQuery)."""
    session.pending_notifies.append((channel, payload))


def _listen(session, sql: str) -> Result:
    st = _stmt(sql)
    verb = (st.word(0) or "").upper()
    star = len(st) == 2 and st.toks[1].kind == "o" and st.toks[1].value == "*"
    name, j = st.name(1)
    if verb not in ("LISTEN", "UNLISTEN") or not (star and verb == "UNLISTEN" or name is not None and j == len(st)):
        return Result(error=PgError("42601", "syntax error in LISTEN/UNLISTEN"))
    if verb == "LISTEN":
        session.listening.add(name)
        session.hub.listen(session, name)
    elif star:
        session.listening.clear()
        session.hub.unlisten(session, None)
    else:
        session.listening.discard(name)
        session.hub.unlisten(session, name)
    return Result(tag=verb)


def _notify(session, sql: str) -> Result:
    st = _stmt(sql)
    name, j = st.name(1)
    payload = ""
    if j + 2 == len(st) and st.toks[j].kind == "c" and st.toks[j].value == "," and st.toks[j + 1].kind == "s":
        payload, j = st.toks[j + 1].value, j + 2
    if st.word(0) != "notify" or name is None or "." in name or j != len(st):
        return Result(error=PgError("42601", "syntax error in NOTIFY"))
    queue_notify(session, name, payload)
    return Result(tag="NOTIFY")


def _pg_notify_call(sql: str):
    """`SELECT [pg_catalog.]pg_notify(channel, payload) [AS name]`, each argument a string
    constant or $n (the payload may be NULL): (channel token, payload token, column name),
    else None."""
    st = _stmt(sql)
    toks = st.toks
    if st.word(0) != "select":
        return None
    i = 1
    if st.word(1) == "pg_catalog" and len(toks) > 2 and toks[2].kind == "c" and toks[2].value == ".":
        i = 3
    if st.word(i) != "pg_notify" or not (i + 5 < len(toks) and toks[i + 1].kind == "c" and toks[i + 1].value == "("
                                         and toks[i + 3].kind == "c" and toks[i + 3].value == ","
                                         and toks[i + 5].kind == "c" and toks[i + 5].value == ")"):
        return None
    channel, payload = toks[i + 2], toks[i + 4]
    if channel.kind not in ("s", "p") or not (payload.kind in ("s", "p") or payload.is_word("null")):
        return None
    j = i + 6
    name = "pg_notify"
    if j < len(toks):
        alias, k = st.name(j + 1) if st.word(j) == "as" else (None, j)
        if alias is None or "." in alias or k != len(toks):
            return None
        name = alias
    return channel, payload, name


def _pg_notify(session, query) -> Result | None:
    found = _pg_notify_call(query.sql)
    if found is None:
        return None

    def arg(tok: Token):
        if tok.kind == "p":
            i = tok.value - 1
            return query.params[i] if i < len(query.params) else None
        if tok.kind == "w":  # NULL
            return None
        return tok.value

    channel, payload, name = arg(found[0]), arg(found[1]), found[2]
    if channel is None or channel == "":
        return Result(error=PgError("22023", "channel name cannot be empty"))
    queue_notify(session, str(channel), "" if payload is None else str(payload))
    return Result(columns=(Column(name, _VOID),), rows=[("",)], static=True)


# ---------------------------------------------------------------------------- cursors
def _parse_declare(sql: str):
    """`DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [[NO] SCROLL] CURSOR [{WITH|WITHOUT} HOLD]
    FOR query`: (name, option words, hold, query text), else None."""
    st = _stmt(sql)
    name, i = st.name(1)
    if st.word(0) != "declare" or name is None or "." in name:
        return None
    options = []
    while st.word(i) in ("binary", "asensitive", "insensitive", "scroll", "no"):
        if st.word(i) == "no":
            if st.word(i + 1) != "scroll":
                return None
            options.append("no scroll")
            i += 2
            continue
        options.append(st.word(i))
        i += 1
    if st.word(i) != "cursor":
        return None
    i += 1
    hold = False
    if st.word(i) in ("with", "without") and st.word(i + 1) == "hold":
        hold = st.word(i) == "with"
        i += 2
    if st.word(i) != "for" or i + 1 >= len(st):
        return None
    return name, options, hold, sql[st.toks[i + 1].start:].strip()


_FETCH_WORDS = frozenset({"next", "prior", "first", "last", "all"})


def _fetch_direction(st: _Stmt, i: int) -> tuple[str | None, int]:
    """A FETCH/MOVE direction at token i: (its canonical text, e.g. "FORWARD 5", index after),
    (None, i) when none is written there."""
    w = st.word(i)
    if w in _FETCH_WORDS:
        return w.upper(), i + 1
    if w in ("absolute", "relative"):
        n, j = st.signed_int(i + 1)
        return (f"{w.upper()} {n}", j) if n is not None else (None, i)
    if w in ("forward", "backward"):
        if st.word(i + 1) == "all":
            return f"{w.upper()} ALL", i + 2
        n, j = st.signed_int(i + 1)
        return (f"{w.upper()} {n}", j) if n is not None else (w.upper(), i + 1)
    n, j = st.signed_int(i)
    return (n, j) if n is not None else (None, i)


def _parse_fetch(sql: str):
    """`{FETCH|MOVE} [direction] [FROM|IN] name`: (verb, direction or None, name), else None."""
    st = _stmt(sql)
    verb = st.word(0)
    if verb not in ("fetch", "move"):
        return None
    direction, i = _fetch_direction(st, 1)
    for start, d in ((i, direction), (1, None)):  # a cursor may be called `next`
        j = start + 1 if st.word(start) in ("from", "in") and start + 1 < len(st) else start
        name, k = st.name(j)
        if name is not None and "." not in name and k == len(st):
            return verb.upper(), d, name
    return None


def _declare(session, query):
    found = _parse_declare(query.sql)
    if found is None:
        return Result(error=PgError("42601", "syntax error in DECLARE"))
    name, options, hold, inner_sql = found
    if session.tx == "I" and not hold:
        return Result(error=PgError("25P01", "DECLARE CURSOR can only be used in transaction blocks"))
    if name in session.portals:
        return Result(error=PgError("42P03", f'cursor "{name}" already exists'))
    inner = yield from session.evaluate(inner_sql, query.params, query.param_types, query.protocol, query.statement)
    if inner.error is not None:
        return inner
    if inner.columns is None:
        return Result(error=PgError("42P11", "cursor query does not return rows"))
    from .portals import Portal

    binary = "binary" in options
    p = Portal(name=name, sql=inner_sql, params=list(query.params), param_types=list(query.param_types),
               result_formats=(1,) if binary else (0,), result=inner, hold=hold, cursor=True, buffer=[])
    p.formats = tuple([1 if binary else 0] * len(inner.columns))
    p.rows = inner.iter_rows()
    session.portals[name] = p
    return Result(tag="DECLARE CURSOR")


def _cursor_rows_upto(portal, k: int) -> None:
    """Make sure the first k rows (or all, k=-1) of a cursor are buffered."""
    buf = portal.buffer
    while not portal.exhausted and (k < 0 or len(buf) < k):
        try:
            buf.append(next(portal.rows))
        except StopIteration:
            portal.exhausted = True


def _fetch_positions(portal, direction: str) -> tuple[list[int], int]:
    """(1-based row numbers to return in order, new position)."""
    d = _norm(direction).upper() if direction else "NEXT"
    pos = portal.position

    def total() -> int:
        _cursor_rows_upto(portal, -1)
        return len(portal.buffer)

    def forward(n):
        buf = portal.buffer
        if n == "ALL":
            _cursor_rows_upto(portal, -1)
            last = len(buf)
        else:
            _cursor_rows_upto(portal, pos + n)
            last = min(pos + n, len(buf))
        rows = list(range(pos + 1, last + 1))
        newpos = last if (n != "ALL" and last == pos + n) else len(buf) + 1
        return rows, newpos

    def backward(n):
        start = min(pos, total() + 1)
        rows = []
        p = start - 1
        while p >= 1 and (n == "ALL" or len(rows) < n):
            rows.append(p)
            p -= 1
        newpos = rows[-1] if (n != "ALL" and len(rows) == n) else 0
        return rows, newpos

    def absolute(k):
        n = total() if k < 0 else None
        if k < 0:
            k = n + 1 + k
            if k < 1:
                return [], 0
        _cursor_rows_upto(portal, k)
        if k == 0:
            return [], 0
        if k > len(portal.buffer):
            return [], len(portal.buffer) + 1
        return [k], k

    if d in ("NEXT", "FORWARD"):
        return forward(1)
    if d == "PRIOR":
        return backward(1)
    if d == "FIRST":
        return absolute(1)
    if d == "LAST":
        return absolute(-1)
    if d == "ALL" or d == "FORWARD ALL":
        return forward("ALL")
    if d == "BACKWARD ALL":
        return backward("ALL")
    parts = d.split()
    if parts[0] == "ABSOLUTE":
        return absolute(int(parts[1]))
    if parts[0] == "RELATIVE":
        k = int(parts[1])
        if k == 0:
            return ([pos] if 1 <= pos <= len(portal.buffer) else []), pos
        return forward(k) if k > 0 else backward(-k)
    if parts[0] == "FORWARD":
        k = int(parts[1])
        return forward(k) if k >= 0 else backward(-k)
    if parts[0] == "BACKWARD":
        k = int(parts[1])
        return backward(k) if k >= 0 else forward(-k)
    k = int(parts[0])
    return forward(k) if k >= 0 else backward(-k)


def _fetch(session, sql: str) -> Result:
    found = _parse_fetch(sql)
    if found is None:
        return Result(error=PgError("42601", "syntax error in FETCH/MOVE"))
    verb, direction, name = found
    portal = session.portals.get(name)
    if portal is not None and not portal.cursor and portal.result is not None:
        return _fetch_protocol_portal(portal, verb, direction)
    if portal is None or not portal.cursor:
        return Result(error=PgError("34000", f'cursor "{name}" does not exist'))
    numbers, newpos = _fetch_positions(portal, direction or "")
    portal.position = newpos
    rows = [portal.buffer[i - 1] for i in numbers]
    if verb == "MOVE":
        return Result(tag=f"MOVE {len(rows)}")
    # a BINARY cursor answers in binary even to a simple Query
    return Result(columns=portal.result.columns, rows=rows, tag=f"FETCH {len(rows)}", formats=portal.formats)


def _fetch_protocol_portal(portal, verb: str, direction: str | None) -> Result:
    """FETCH/MOVE on a portal made by Bind (asyncpg: `MOVE FORWARD 2 __asyncpg_portal_24__` between
    Executes). Such a portal is not scrollable: it only moves forward, and its rows are shared with
    later Executes (the row iterator and the `sent` count both advance)."""
    d = _norm(direction).upper() if direction else "NEXT"
    count = _FORWARD_COUNTS.match(d)
    if count is None:
        return Result(error=PgError("55000", "cursor can only scan forward",
                                    hint="Declare it with SCROLL option to enable backward scan."))
    n = count.group(1) or count.group(2)
    limit = None if d.endswith("ALL") else int(n) if n else 1
    if limit is not None and limit < 0:
        return Result(error=PgError("55000", "cursor can only scan forward",
                                    hint="Declare it with SCROLL option to enable backward scan."))
    from .encode import resolve_formats, row_encoders

    res = portal.result
    if portal.rows is None:  # not streamed yet: start the iterator Execute would start
        portal.rows = res.iter_rows()
        portal.formats = portal.formats or resolve_formats(portal.result_formats, len(res.columns))
        portal.encoders = row_encoders(res.columns, portal.formats)
        for _ in range(portal.sent):  # static answers count rows already sent
            next(portal.rows, None)
    rows = []
    while limit is None or len(rows) < limit:
        row = next(portal.rows, _END)
        if row is _END:
            portal.done = True
            break
        rows.append(row)
    portal.sent += len(rows)
    if verb == "MOVE":
        return Result(tag=f"MOVE {len(rows)}")
    return Result(columns=res.columns, rows=rows, tag=f"FETCH {len(rows)}")


_FORWARD_COUNTS = re.compile(r"^(?:NEXT|ALL|FORWARD(?:\s+(ALL|[-+]?\d+))?|([-+]?\d+))$")
_END = object()


def execute_cursor_portal(session, portal, max_rows: int):
    """Execute (extended protocol) on a DECLAREd cursor's portal: fetch forward."""
    numbers, newpos = _fetch_positions(portal, f"FORWARD {max_rows}" if max_rows > 0 else "ALL")
    portal.position = newpos
    rows = [portal.buffer[i - 1] for i in numbers]
    res = Result(columns=portal.result.columns, rows=rows, tag=f"FETCH {len(rows)}")
    from .encode import encode_row, row_encoders

    encs = row_encoders(res.columns, portal.formats, getattr(session, "text_style", None))
    for r in rows:
        session.send(encode_row(encs, r, res.columns))
    from ..protocol import messages as msgs

    if max_rows > 0 and len(rows) == max_rows:
        session.send(msgs.PORTAL_SUSPENDED)
    else:
        session.send(msgs.command_complete(f"FETCH {len(rows)}"))
    return True
    yield  # a generator, like the other execution paths


def _close(session, sql: str) -> Result:
    st = _stmt(sql)
    name, j = st.name(1)
    if st.word(0) != "close" or name is None or "." in name or j != len(st):
        return Result(error=PgError("42601", "syntax error in CLOSE"))
    if st.word(1) == "all":
        session.portals = {k: p for k, p in session.portals.items() if not p.cursor}
        return Result(tag="CLOSE CURSOR ALL")
    p = session.portals.get(name)
    if p is None:
        return Result(error=PgError("34000", f'cursor "{name}" does not exist'))
    del session.portals[name]
    return Result(tag="CLOSE CURSOR")


# ---------------------------------------------------------------------------- DISCARD/DEALLOCATE
def _discard(session, sql: str) -> Result:
    what = _stmt(sql).text(1).upper()
    if what not in ("ALL", "PLANS", "SEQUENCES", "TEMP", "TEMPORARY"):
        return Result(error=PgError("42601", f'syntax error at or near "{what}"'))
    if what == "ALL":
        if session.tx != "I":
            return Result(error=PgError("25001", "DISCARD ALL cannot run inside a transaction block"))
        changes = {}
        for lname in list(session.settings):
            changes.update(set_setting(session, lname, None))
        init_settings(session)
        session.statements = {k: v for k, v in session.statements.items() if k == ""}
        session.portals = {}
        session.listening.clear()
        session.hub.unlisten(session, None)
        return Result(tag="DISCARD ALL", set_parameters=changes or None)
    return Result(tag="DISCARD TEMP" if what == "TEMPORARY" else f"DISCARD {what}")


def _deallocate(session, sql: str) -> Result:
    st = _stmt(sql)
    i = 2 if st.word(1) == "prepare" and len(st) > 2 else 1
    name, j = st.name(i)
    if st.word(0) != "deallocate" or name is None or "." in name or j != len(st):
        return Result(error=PgError("42601", "syntax error in DEALLOCATE"))
    if st.word(i) == "all":
        session.statements = {k: v for k, v in session.statements.items() if k == ""}
        return Result(tag="DEALLOCATE ALL")
    if name not in session.statements:
        return Result(error=PgError("26000", f'prepared statement "{name}" does not exist'))
    del session.statements[name]
    return Result(tag="DEALLOCATE")


# ---------------------------------------------------------------------------- dispatch
_SIMPLE = {
    "SET": _do_set,
    "SHOW": _do_show,
    "RESET": _do_reset,
    "LISTEN": _listen,
    "UNLISTEN": _listen,
    "NOTIFY": _notify,
    "FETCH": _fetch,
    "MOVE": _fetch,
    "CLOSE": _close,
    "DISCARD": _discard,
    "DEALLOCATE": _deallocate,
}
_TX_KINDS = frozenset(
    {"BEGIN", "COMMIT", "ROLLBACK", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "PREPARE TRANSACTION", "COMMIT PREPARED",
     "ROLLBACK PREPARED"}
)


def answer(session, query, kind: str):
    """(Result, label) for a session command, or (None, None). May be a generator (DECLARE)."""
    if kind == "DECLARE":
        return _declare(session, query), "session:declare"
    if kind in _TX_KINDS:
        return _transaction(session, kind, query.sql), f"session:{kind.lower()}"
    fn = _SIMPLE.get(kind)
    if fn is not None:
        return fn(session, query.sql), f"session:{kind.lower()}"
    if kind == "SELECT" and "notify" in query.sql.lower():
        r = _pg_notify(session, query)
        if r is not None:
            return r, "session:pg_notify"
    return None, None


UNKNOWN = object()


def describe(session, query):
    """Columns a session command will return (Describe Statement), None for no rows,
    UNKNOWN when the statement is not a session command."""
    kind = classify(query.sql)
    if kind == "SHOW":
        res = _do_show(session, query.sql)
        return res.columns if res.error is None else None
    if kind == "FETCH":
        found = _parse_fetch(query.sql)
        portal = session.portals.get(found[2]) if found else None
        return portal.result.columns if portal is not None and portal.cursor else None
    if kind == "SELECT" and "notify" in query.sql.lower():
        found = _pg_notify_call(query.sql)
        if found is not None:
            return (Column(found[2], _VOID),)
    if kind in _TX_KINDS or kind in _SIMPLE or kind == "DECLARE":
        return None
    return UNKNOWN
