"""Whole-answer bytes for repeated simple queries (the pgbench / pool-ping hot path).

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
connection) and bounded.
"""

from __future__ import annotations

from typing import NamedTuple

from ..answers.builtin import _key as builtin_key
from ..answers.result import Result
from .hub import JournalEntry

MAX_ENTRIES = 256  # distinct texts per connection (pgbench and pools send a handful)


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
            or not _no_faults(session):
        del cache[text]
        return False
    session._cancel_requested = False
    if entry.rule is not None:
        entry.rule.calls += 1
    session.hub.journal.record(JournalEntry(
        sql=entry.sql, params=list(entry.params), protocol="simple", connection=session.id, pid=session.pid,
        user=session.user, database=session.database, rule=entry.label, time=session.now))
    session._send(entry.wire)
    session._end_of_implicit("I")
    return True


def remember(session, text: str, sql: str, result: Result, out_mark: int) -> None:
    """After the first answer to `text` went out through the normal path: keep its bytes if safe."""
    if session.tx != "I" or session.replication is not None or not _no_faults(session):
        return
    if not result.static or result.error is not None or result.notices or result.notify or result.delay \
            or result.copy is not None or result.fault is not None or result.set_parameters or result.empty:
        return
    last = session.hub.journal.queries[-1] if session.hub.journal.queries else None
    if last is None or last.sql != sql or last.connection != session.id or last.rule is None:
        return
    entry_label = last.rule
    ruleset = session.responder.rules
    rules = ruleset.rules
    if any(r.state is not None for r in rules):
        return
    rule = None
    if entry_label.startswith("builtin:"):
        if session.responder.builtins._static.get(builtin_key(sql)) is not result:
            return  # only the pure builtins (constant SELECTs, type probes) that Builtins itself caches
    else:
        if entry_label.startswith("session:"):
            return
        rule = next((r for r in rules if r.label == entry_label), None)
        if rule is None or rule.handler is not None or rule.times is not None or len(rule.answers) != 1 \
                or rule.answers[0] is not result:
            return
    cache = session.answer_cache
    if cache is None:
        cache = session.answer_cache = {}
    if len(cache) >= MAX_ENTRIES:
        cache.clear()
    cache[text] = Entry(rules, rule, sql, list(last.params), entry_label, b"".join(session._out[out_mark:]))
