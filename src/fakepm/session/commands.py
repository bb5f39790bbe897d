"""Statements that change the session itself: transactions, savepoints, SET/RESET/SHOW,
DISCARD, DEALLOCATE, cursors (DECLARE/FETCH/MOVE/CLOSE), LISTEN/UNLISTEN/NOTIFY.

A user rule may still answer any of these (e.g. make COMMIT fail with 40001); the session
then follows the transaction effects of the statement (`follow_transaction`). Texts of
warnings and errors are PostgreSQL 15's.
"""

from __future__ import annotations

import re

from ..answers.result import Column, Result
from ..protocol.errors import PgError
from ..protocol.types import REGISTRY
from .config import OTHER_SETTINGS, REPORTED_DEFAULTS, REPORTED_NAMES, version_num

ALLOWED_IN_FAILED_TX = frozenset({"ROLLBACK", "ROLLBACK TO", "COMMIT", "ROLLBACK PREPARED"})

_TEXT = REGISTRY.by_name("text")
_VOID = REGISTRY.by_name("void")

_IDENT = r'(?:"(?:[^"]|"")+"|[^\s;,()"]+)'
_WS = re.compile(r"\s+")


def ident(token: str) -> str:
    """An SQL identifier as PostgreSQL stores it: unquoted folds to lower case."""
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return token[1:-1].replace('""', '"')
    return token.lower()


def literal(token: str) -> str:
    token = token.strip()
    if token[:2] in ("E'", "e'") and token.endswith("'"):
        return token[2:-1].replace("''", "'").replace("\\'", "'")
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1].replace("''", "'")
    return token


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
            s[k.lower()] = _clean_value(k.lower(), v)


def _clean_value(lname: str, value: str) -> str:
    value = literal(value)
    if lname == "client_encoding" and value.replace("-", "").replace("_", "").upper() in ("UTF8", "UNICODE"):
        return "UTF8"
    if lname == "datestyle":
        parts = [p.strip().upper() for p in value.split(",")]
        fmt = next((p for p in parts if p in ("ISO", "SQL", "POSTGRES", "GERMAN")), "ISO")
        order = next((p for p in parts if p in ("MDY", "DMY", "YMD", "US", "EUROPEAN", "NONEURO")), "MDY")
        order = {"US": "MDY", "NONEURO": "MDY", "EUROPEAN": "DMY"}.get(order, order)
        return f"{fmt.title() if fmt not in ('ISO', 'SQL') else fmt}, {order}"
    return value


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
        value = _clean_value(lname, value)
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
        return {}
    session.settings[lname] = value
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


_SET_RE = re.compile(
    r"^SET\s+(?:(SESSION|LOCAL)\s+)?(?:(TIME\s+ZONE)\s+(.+)|(NAMES)\s+(.+)|(ROLE)\s+(.+)|"
    r"(SESSION\s+AUTHORIZATION)\s+(.+)|(TRANSACTION|SESSION\s+CHARACTERISTICS\s+AS\s+TRANSACTION)\s+(.+)|"
    r"(" + _IDENT + r")\s*(?:=|\s+TO\s+)\s*(.+))$",
    re.I | re.S,
)


def _do_set(session, sql: str) -> Result:
    m = _SET_RE.match(_norm(sql))
    if m is None:
        return Result(error=PgError("42601", f'syntax error at or near "{sql.split()[-1] if sql.split() else ""}"'))
    local = (m.group(1) or "").upper() == "LOCAL"
    if local and session.tx == "I":
        return Result(tag="SET", notices=(_warning("25P01", "SET LOCAL can only be used in transaction blocks"),))
    changes: dict = {}
    if m.group(2):  # TIME ZONE
        v = m.group(3).strip()
        changes = set_setting(session, "timezone", None if v.upper() in ("LOCAL", "DEFAULT") else literal(v), local)
    elif m.group(4):
        changes = set_setting(session, "client_encoding", literal(m.group(5)))
    elif m.group(6):
        session.settings["role"] = literal(m.group(7))
    elif m.group(8):
        v = m.group(9).strip()
        changes = set_setting(session, "session_authorization", None if v.upper() == "DEFAULT" else literal(v))
    elif m.group(10):
        iso = re.search(r"ISOLATION\s+LEVEL\s+(READ\s+UNCOMMITTED|READ\s+COMMITTED|REPEATABLE\s+READ|SERIALIZABLE)",
                        m.group(11), re.I)
        key = "default_transaction_isolation" if "CHARACTERISTICS" in m.group(10).upper() else "transaction_isolation"
        if iso:
            session.settings[key] = _WS.sub(" ", iso.group(1).lower())
    else:
        name = ident(m.group(12))
        raw = m.group(13).strip()
        if raw.upper() == "DEFAULT":
            changes = set_setting(session, name, None, local)
        else:
            values = [_set_value(name, v) for v in _split_list(raw)]
            changes = set_setting(session, name, ", ".join(values), local)
    return Result(columns=None, tag="SET", set_parameters=changes or None)


def _set_value(name: str, token: str) -> str:
    """One SET value as SHOW gives it back: 'lit' -> lit, "Ident" -> Ident (search_path keeps
    the quotes an identifier needs, as PostgreSQL shows it)."""
    if token.startswith('"'):
        value = ident(token)
        if name == "search_path" and not re.fullmatch(r"[a-z_][a-z0-9_$]*", value):
            return '"' + value.replace('"', '""') + '"'
        return value
    return literal(token)


def _split_list(raw: str) -> list[str]:
    out, cur, q = [], "", False
    for ch in raw:
        if ch == "'":
            q = not q
        if ch == "," and not q:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return [x for x in out if x]


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


def _do_show(session, sql: str) -> Result:
    rest = _norm(sql)[4:].strip()
    lname = _SHOW_ALIASES.get(rest.lower(), None) or ident(rest)
    if lname == "all":
        rows = [(_canonical_setting_name(k), v, "") for k, v in sorted(session.settings.items())]
        cols = (Column("name", _TEXT), Column("setting", _TEXT), Column("description", _TEXT))
        return Result(columns=cols, rows=rows, tag="SHOW")
    if lname not in session.settings:
        return Result(error=PgError("42704", f'unrecognized configuration parameter "{lname}"'))
    return Result(columns=(Column(_canonical_setting_name(lname), _TEXT),), rows=[(session.settings[lname],)],
                  tag="SHOW")


def _do_reset(session, sql: str) -> Result:
    what = _norm(sql)[5:].strip()
    changes: dict = {}
    if what.upper() == "ALL":
        for lname in list(session.settings):
            changes.update(set_setting(session, lname, None))
        init_settings(session)
    else:
        lname = _SHOW_ALIASES.get(what.lower(), None) or ident(what)
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


_SAVEPOINT_NAME = re.compile(r"^(?:ROLLBACK|ABORT)\s+(?:WORK\s+|TRANSACTION\s+)?TO\s+(?:SAVEPOINT\s+)?(" + _IDENT + ")",
                             re.I)
_RELEASE_NAME = re.compile(r"^RELEASE\s+(?:SAVEPOINT\s+)?(" + _IDENT + ")", re.I)
_SAVEPOINT_RE = re.compile(r"^SAVEPOINT\s+(" + _IDENT + ")", re.I)


def _transaction(session, kind: str, sql: str, rule_error: PgError | None = None) -> Result | None:
    """Apply a transaction-control statement; return the builtin Result (None if not one)."""
    tx = session.tx
    norm = _norm(sql)
    if kind == "BEGIN":
        tag = "START TRANSACTION" if norm[:5].upper() == "START" else "BEGIN"
        if rule_error is not None:
            return None
        if tx == "T":
            return Result(tag=tag, notices=(_warning("25001", "there is already a transaction in progress"),))
        session.tx = "T"
        iso = re.search(r"ISOLATION\s+LEVEL\s+(READ\s+UNCOMMITTED|READ\s+COMMITTED|REPEATABLE\s+READ|SERIALIZABLE)",
                        norm, re.I)
        if iso:
            session.settings["transaction_isolation"] = _WS.sub(" ", iso.group(1).lower())
        return Result(tag=tag)
    if kind in ("COMMIT", "ROLLBACK"):
        chain = re.search(r"\bAND\s+CHAIN$", norm, re.I) is not None and not re.search(r"\bNO\s+CHAIN$", norm, re.I)
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
        m = _SAVEPOINT_NAME.match(norm)
        name = ident(m.group(1)) if m else ""
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
        m = _SAVEPOINT_RE.match(norm)
        if tx == "I":
            return Result(error=PgError("25P01", "SAVEPOINT can only be used in transaction blocks"))
        if rule_error is None and m:
            session.savepoints.append(ident(m.group(1)))
        return Result(tag="SAVEPOINT")
    if kind == "RELEASE":
        m = _RELEASE_NAME.match(norm)
        name = ident(m.group(1)) if m else ""
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
_LISTEN_RE = re.compile(r"^(LISTEN|UNLISTEN)\s+(\*|" + _IDENT + r")\s*$", re.I)
_NOTIFY_RE = re.compile(r"^NOTIFY\s+(" + _IDENT + r")\s*(?:,\s*((?:E)?'(?:[^']|'')*'))?\s*$", re.I | re.S)
_PG_NOTIFY_RE = re.compile(
    r"^SELECT\s+(?:pg_catalog\.)?pg_notify\s*\(\s*('(?:[^']|'')*'|\$\d+)\s*,\s*('(?:[^']|'')*'|\$\d+|NULL)\s*\)"
    r"\s*(?:AS\s+(" + _IDENT + r"))?\s*$",
    re.I | re.S,
)


def queue_notify(session, channel: str, payload: str) -> None:
    """NOTIFY is delivered at commit: of the explicit transaction, or of the implicit one
    that ends with this Query/Sync (so a self-notification precedes the ReadyForQuery)."""
    session.pending_notifies.append((channel, payload))


def _listen(session, sql: str) -> Result:
    m = _LISTEN_RE.match(_norm(sql))
    if m is None:
        return Result(error=PgError("42601", "syntax error in LISTEN/UNLISTEN"))
    verb, chan = m.group(1).upper(), m.group(2)
    if verb == "LISTEN":
        name = ident(chan)
        session.listening.add(name)
        session.hub.listen(session, name)
    elif chan == "*":
        session.listening.clear()
        session.hub.unlisten(session, None)
    else:
        name = ident(chan)
        session.listening.discard(name)
        session.hub.unlisten(session, name)
    return Result(tag=verb)


def _notify(session, sql: str) -> Result:
    m = _NOTIFY_RE.match(sql.strip())
    if m is None:
        return Result(error=PgError("42601", "syntax error in NOTIFY"))
    payload = literal(m.group(2)) if m.group(2) else ""
    queue_notify(session, ident(m.group(1)), payload)
    return Result(tag="NOTIFY")


def _pg_notify(session, query) -> Result | None:
    m = _PG_NOTIFY_RE.match(query.sql.strip())
    if m is None:
        return None

    def arg(tok):
        if tok.startswith("$"):
            i = int(tok[1:]) - 1
            return query.params[i] if i < len(query.params) else None
        if tok.upper() == "NULL":
            return None
        return literal(tok)

    channel, payload = arg(m.group(1)), arg(m.group(2))
    if channel is None or channel == "":
        return Result(error=PgError("22023", "channel name cannot be empty"))
    queue_notify(session, str(channel), "" if payload is None else str(payload))
    name = ident(m.group(3)) if m.group(3) else "pg_notify"
    return Result(columns=(Column(name, _VOID),), rows=[("",)], static=True)


# ---------------------------------------------------------------------------- cursors
_DECLARE_RE = re.compile(
    r"^DECLARE\s+(" + _IDENT + r")\s+((?:(?:BINARY|ASENSITIVE|INSENSITIVE|NO\s+SCROLL|SCROLL)\s+)*)CURSOR\s+"
    r"(?:(WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(.+)$",
    re.I | re.S,
)
_FETCH_RE = re.compile(
    r"^(FETCH|MOVE)\s+(?:(NEXT|PRIOR|FIRST|LAST|ABSOLUTE\s+[-+]?\d+|RELATIVE\s+[-+]?\d+|[-+]?\d+|ALL|"
    r"FORWARD(?:\s+(?:[-+]?\d+|ALL))?|BACKWARD(?:\s+(?:[-+]?\d+|ALL))?)\s+)?(?:(?:FROM|IN)\s+)?(" + _IDENT + r")\s*$",
    re.I,
)
_CLOSE_RE = re.compile(r"^CLOSE\s+(ALL|" + _IDENT + r")\s*$", re.I)


def _declare(session, query):
    m = _DECLARE_RE.match(query.sql.strip())
    if m is None:
        return Result(error=PgError("42601", "syntax error in DECLARE"))
    name = ident(m.group(1))
    options = m.group(2).upper()
    hold = (m.group(3) or "").upper() == "WITH"
    if session.tx == "I" and not hold:
        return Result(error=PgError("25P01", "DECLARE CURSOR can only be used in transaction blocks"))
    if name in session.portals:
        return Result(error=PgError("42P03", f'cursor "{name}" already exists'))
    inner_sql = m.group(4).strip()
    inner = yield from session.evaluate(inner_sql, query.params, query.param_types, query.protocol, query.statement)
    if inner.error is not None:
        return inner
    if inner.columns is None:
        return Result(error=PgError("42P11", "cursor query does not return rows"))
    from .portals import Portal

    binary = "BINARY" in options
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
    m = _FETCH_RE.match(_norm(sql))
    if m is None:
        return Result(error=PgError("42601", "syntax error in FETCH/MOVE"))
    verb, direction, name = m.group(1).upper(), m.group(2), ident(m.group(3))
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

    encs = row_encoders(res.columns, portal.formats)
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
    m = _CLOSE_RE.match(_norm(sql))
    if m is None:
        return Result(error=PgError("42601", "syntax error in CLOSE"))
    if m.group(1).upper() == "ALL":
        session.portals = {k: p for k, p in session.portals.items() if not p.cursor}
        return Result(tag="CLOSE CURSOR ALL")
    name = ident(m.group(1))
    p = session.portals.get(name)
    if p is None:
        return Result(error=PgError("34000", f'cursor "{name}" does not exist'))
    del session.portals[name]
    return Result(tag="CLOSE CURSOR")


# ---------------------------------------------------------------------------- DISCARD/DEALLOCATE
def _discard(session, sql: str) -> Result:
    what = _norm(sql)[7:].strip().upper()
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


_DEALLOCATE_RE = re.compile(r"^DEALLOCATE\s+(?:PREPARE\s+)?(ALL|" + _IDENT + r")\s*$", re.I)


def _deallocate(session, sql: str) -> Result:
    m = _DEALLOCATE_RE.match(_norm(sql))
    if m is None:
        return Result(error=PgError("42601", "syntax error in DEALLOCATE"))
    if m.group(1).upper() == "ALL":
        session.statements = {k: v for k, v in session.statements.items() if k == ""}
        return Result(tag="DEALLOCATE ALL")
    name = ident(m.group(1))
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
    from ..answers.match import classify

    kind = classify(query.sql)
    if kind == "SHOW":
        res = _do_show(session, query.sql)
        return res.columns if res.error is None else None
    if kind == "FETCH":
        m = _FETCH_RE.match(_norm(query.sql))
        portal = session.portals.get(ident(m.group(3))) if m else None
        return portal.result.columns if portal is not None and portal.cursor else None
    if kind == "SELECT" and _PG_NOTIFY_RE.match(query.sql.strip()):
        m = _PG_NOTIFY_RE.match(query.sql.strip())
        return (Column(ident(m.group(3)) if m.group(3) else "pg_notify", _VOID),)
    if kind in _TX_KINDS or kind in _SIMPLE or kind == "DECLARE":
        return None
    return UNKNOWN
