"""Whole-answer bytes for repeated queries (the pgbench / pool-ping hot path).

When a connection sends the same simple-protocol text again, and the first time it was
answered by a static rule answer (or a pure builtin such as `SELECT 1`), the bytes from
RowDescription to CommandComplete are replayed instead of splitting, matching and encoding
the statement again. Everything a test can observe stays the same: the journal entry, the
rule's call count (`expect:`), ReadyForQuery and notifications are produced as usual.

Cached only when nothing can make the next answer differ: one statement; idle transaction
status before and after; no fault plan on the server; the answering rule has no handler,
`times`, `state` or sequence, and no rule of the set has a `state` guard; the Result is
static with no error, notice, notify, delay, COPY, fault or ParameterStatus. An entry is
valid only for the rule set it was made with (adding or clearing rules makes a new set).
The cache is per connection (user, database and application_name filters are fixed for a
connection) and bounded by count and by bytes (see the limits below); it dies with the
connection.

The extended protocol gets the same treatment per *group*: when one read from the socket is
exactly `[Parse ""] Bind "" [Describe portal ""] Execute "" Sync` (what pgbench -M
extended/prepared, pools and drivers send for a repeated statement), the whole group's bytes
are the key; the same bytes again (same statement, parameter bytes and formats) replay
ParseComplete/BindComplete/RowDescription/DataRows/CommandComplete, with the same journal
entry (decoded parameters, statement name) and rule count. A named statement must still be
the very PreparedStatement the entry was made with (re-preparing makes a new one).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..answers.builtin import _key as builtin_key
from ..answers.result import Result
from ..bounded import BoundedCache
from .hub import JournalEntry

MAX_ENTRIES = 256  # distinct texts per connection (pgbench and pools send a handful)
MAX_ANSWER_BYTES = 1 << 20  # a bigger static answer is re-encoded each time rather than kept per connection
MAX_CACHE_BYTES = 4 << 20  # per connection and cache: texts + answers; 1000 connections stay in a few GiB at worst
MAX_TEXT = 16 * 1024  # a longer Query text is not kept as a key (repeated hot-path texts are short)
MAX_GROUP_BYTES = 4096  # bigger extended-protocol groups (large parameters) are not worth keeping
SYNC = b"S\x00\x00\x00\x04"
_I32 = struct.Struct("!i")


class Entry(NamedTuple):
    rules: tuple  # the RuleSet's rules tuple when made: another tuple means rules changed
    rule: object  # the Rule that answered (its `calls` count), or None for a builtin
    sql: str  # the statement as journaled
    params: list
    label: str
    wire: bytes  # RowDescription + DataRows + CommandComplete


def _no_faults(session) -> bool:
    fx = session.faults
    return fx is None or (not fx.fs.plans and not fx.stmt)


def serve(session, text: str) -> bool:
    """Send the cached answer for this Query text (the caller sends ReadyForQuery); False on a miss."""
    cache = session.answer_cache
    entry = cache.get(text) if cache else None
    if entry is None:
        return False
    ruleset = session.responder.rules
    if entry.rules is not ruleset.rules or session.tx != "I" or session.replication is not None \
            or not _no_faults(session) or session.text_style is not None:
        del cache[text]  # (entries are made with the default text style: SET DateStyle & co. change the bytes)
        return False
    session.cancel_requested = False
    if entry.rule is not None:
        entry.rule.calls += 1
    session.hub.journal.record(JournalEntry(
        sql=entry.sql, params=list(entry.params), protocol="simple", connection=session.id, pid=session.pid,
        user=session.user, database=session.database, rule=entry.label, time=session.now))
    session.send(entry.wire)
    session.end_of_implicit("I")
    return True


def _static_answer(session, sql: str, result: Result, protocol: str, statement: str | None):
    """(rule, label, params) when this just-journaled answer can be replayed; None otherwise."""
    if session.tx != "I" or session.replication is not None or not _no_faults(session) \
            or session.text_style is not None:
        return None
    if not result.static or result.error is not None or result.notices or result.notify or result.delay \
            or result.copy is not None or result.fault is not None or result.set_parameters or result.empty:
        return None
    last = session.hub.journal.queries[-1] if session.hub.journal.queries else None
    if last is None or last.sql != sql or last.connection != session.id or last.rule is None \
            or last.protocol != protocol or last.statement != statement:
        return None
    entry_label = last.rule
    rules = session.responder.rules.rules
    if any(r.state is not None for r in rules):
        return None
    rule = None
    if entry_label.startswith("builtin:"):
        if session.responder.builtins._static.get(builtin_key(sql)) is not result:
            return None  # only the pure builtins (constant SELECTs, type probes) that Builtins itself caches
    else:
        if entry_label.startswith("session:"):
            return None
        rule = next((r for r in rules if r.label == entry_label), None)
        if rule is None or rule.handler is not None or rule.times is not None or len(rule.answers) != 1 \
                or rule.answers[0] is not result:
            return None
    return rule, entry_label, list(last.params)


def serve_query_read(session, data: bytes) -> bool:
    """One read that is exactly one Query message with a cached text: answer it through
    ReadyForQuery without waking the session's generator; False to take the normal path."""
    end = len(data) - 1
    if end < 5 or data[end] != 0 or _I32.unpack_from(data, 1)[0] != end or data.find(b"\x00", 5) != end:
        return False
    try:
        text = data[5:end].decode("utf-8")
    except UnicodeDecodeError:
        return False
    if text not in session.answer_cache or not serve(session, text):
        return False
    session.transcript.append(("C", f"Query {text[:200]!r}"))  # what _on_query does first
    session.statements.pop("", None)
    session.portals.pop("", None)
    session.ready_for_query()
    return True


def remember(session, text: str, sql: str, result: Result, out_mark: int) -> None:
    """After the first answer to `text` went out through the normal path: keep its bytes if safe."""
    found = _static_answer(session, sql, result, "simple", None)
    if found is None:
        return
    rule, label, params = found
    wire = b"".join(session.output[out_mark:])
    if len(wire) <= MAX_ANSWER_BYTES and len(text) <= MAX_TEXT:
        _put(session, "answer_cache", text, Entry(session.responder.rules.rules, rule, sql, params, label, wire))


def _size(key, entry) -> int:
    """Bytes an entry holds: its key (text or group bytes), the journaled SQL and the answer."""
    return len(key) + len(entry[2] if isinstance(entry, Entry) else b"") + len(entry.wire) + 300


def _put(session, attr: str, key, entry) -> None:
    """Keep an entry in the session's cache `attr` (made on first use; least recently used goes first)."""
    cache = getattr(session, attr)
    if cache is None:
        cache = BoundedCache(MAX_ENTRIES, MAX_CACHE_BYTES, _size)
        setattr(session, attr, cache)
    cache.put(key, entry)


# ---------------------------------------------------------------------- extended-protocol groups
class GroupEntry(NamedTuple):
    rules: tuple
    rule: object
    statement: object  # the PreparedStatement (Parse "" in the group: installed again on replay)
    parsed: str | None  # the group starts with Parse "": its transcript line
    params: list
    label: str
    wire: bytes  # [ParseComplete] BindComplete [RowDescription] DataRows CommandComplete


def group_candidate(data: bytes) -> bool:
    """Cheap pre-check on one read: could it be a whole cacheable group? (see group_shape)"""
    return data[-5:] == SYNC and data[:1] in (b"P", b"B") and len(data) <= MAX_GROUP_BYTES


def group_shape(data: bytes) -> bool:
    """True when `data` is exactly [Parse ""] Bind "" [Describe P ""] Execute "" Sync.

    An Execute row limit is allowed: the answer (rows, then PortalSuspended or CommandComplete)
    depends only on the static result, and Sync drops the unnamed portal outside a transaction."""
    pos, end, kinds = 0, len(data), []
    while pos < end:
        if end - pos < 5:
            return False
        t = data[pos:pos + 1]
        (n,) = _I32.unpack_from(data, pos + 1)
        if n < 4 or pos + 1 + n > end:
            return False
        body = data[pos + 5:pos + 1 + n]
        if t == b"P" or t == b"B":
            ok = body[:1] == b"\x00"  # unnamed statement (Parse) / unnamed portal (Bind)
        elif t == b"D":
            ok = body == b"P\x00"
        elif t == b"E":
            ok = len(body) == 5 and body[:1] == b"\x00"  # unnamed portal (a row limit is fine: Sync drops it)
        else:
            ok = t == b"S"
        if not ok:
            return False
        kinds.append(t)
        pos += 1 + n
    return b"".join(kinds) in (b"BES", b"BDES", b"PBES", b"PBDES")


def remember_group(session, data: bytes, out_mark: int) -> None:
    """At the Sync of a group that arrived as one read: keep its answer bytes if nothing can differ."""
    portal = session.portals.get("")
    if portal is None or portal.result is None or session.skip_until_sync or portal.cursor:
        return
    statement = session.statements.get(portal.statement)
    if statement is None or not group_shape(data):
        return
    found = _static_answer(session, portal.sql, portal.result, "extended", portal.statement)
    if found is None:
        return
    rule, label, params = found
    wire = b"".join(session.output[out_mark:])
    if len(wire) > MAX_ANSWER_BYTES:
        return
    parsed = None
    if data[:1] == b"P":  # the transcript line _on_parse writes (the text as sent, before splitting)
        text = data[6:data.index(b"\x00", 6)].decode("utf-8", "replace")
        parsed = f"Parse '' {text[:200]!r}"
    _put(session, "group_cache", data, GroupEntry(session.responder.rules.rules, rule, statement, parsed, params,
                                                  label, wire))


def serve_group(session, data: bytes) -> bool:
    """Answer a whole group (through ReadyForQuery) from the cache; False on a miss."""
    entry = session.group_cache.get(data)
    if entry is None:
        return False
    st = entry.statement
    if entry.rules is not session.responder.rules.rules or session.tx != "I" or session.replication is not None \
            or not _no_faults(session) or (entry.parsed is None and session.statements.get(st.name) is not st) \
            or session.text_style is not None:
        del session.group_cache[data]
        return False
    if entry.parsed is not None:
        session.transcript.append(("C", entry.parsed))
        session.statements[""] = st
    session.portals.pop("", None)
    session.cancel_requested = False
    if entry.rule is not None:
        entry.rule.calls += 1
    session.hub.journal.record(JournalEntry(
        sql=st.sql, params=list(entry.params), protocol="extended", connection=session.id, pid=session.pid,
        user=session.user, database=session.database, rule=entry.label, statement=st.name, time=session.now))
    session.send(entry.wire)
    session.end_of_implicit("I")
    session.ready_for_query()
    return True
