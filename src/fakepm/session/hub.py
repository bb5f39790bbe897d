"""What sessions of one server share: backend keys, LISTEN registrations, the journal.

Only the server's I/O thread calls into the Hub (other threads hand work to that thread),
so the Hub needs no locks on its hot paths.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class JournalEntry:
    """One statement a client sent, and what fakepm did with it."""

    sql: str
    params: list
    protocol: str  # "simple" | "extended" | "replication"
    connection: int  # connection id
    pid: int
    user: str
    database: str
    rule: str | None = None  # label of the rule that answered, "builtin:<what>", or None
    matched: bool = True
    error: str | None = None  # "SQLSTATE message" when the answer was an error
    tag: str | None = None
    statement: str | None = None
    time: float = 0.0

    def __repr__(self) -> str:
        p = f" params={self.params!r}" if self.params else ""
        return f"<{self.protocol} #{self.connection} {self.sql!r}{p} -> {self.rule or 'UNMATCHED'}>"


@dataclass
class Journal:
    limit: int = 100_000
    queries: deque = field(default_factory=deque)
    unmatched: list = field(default_factory=list)
    events: deque = field(default_factory=deque)  # connection/auth/replication events
    copies: deque = field(default_factory=deque)  # session.copy.CopyRecord per COPY (pg.copies)

    def record(self, entry: JournalEntry) -> None:
        q = self.queries
        q.append(entry)
        if len(q) > self.limit:
            q.popleft()
        if not entry.matched:
            self.unmatched.append(entry)

    def event(self, kind: str, **data: Any) -> None:
        ev = {"kind": kind, **data}
        self.events.append(ev)
        if len(self.events) > self.limit:
            self.events.popleft()

    def clear(self) -> None:
        self.queries.clear()
        self.unmatched.clear()
        self.events.clear()
        self.copies.clear()


class Hub:
    def __init__(self, journal: Journal, clock: Callable[[], float]):
        self.journal = journal
        self.clock = clock  # injected by the server; sessions never read a clock themselves
        self.sessions: dict[int, Any] = {}  # pid -> Session
        self.listeners: dict[str, set] = {}  # channel -> sessions
        self.closed_transcripts: deque = deque(maxlen=50)  # (connection id, transcript) of ended sessions
        self._pids = itertools.count(10_000 + secrets.randbelow(20_000))
        self._conn_ids = itertools.count(1)

    def new_identity(self) -> tuple[int, int, int]:
        """(connection id, pid, secret key) for a new connection."""
        return next(self._conn_ids), next(self._pids), secrets.randbits(31)

    def register(self, session) -> None:
        self.sessions[session.pid] = session

    def unregister_key(self, session) -> None:
        """Forget the session's backend key (it is about to take another one)."""
        if self.sessions.get(session.pid) is session:
            del self.sessions[session.pid]

    def unregister(self, session) -> None:
        if self.sessions.get(session.pid) is session:
            del self.sessions[session.pid]
            self.closed_transcripts.append((session.id, list(session.transcript)))
        self.unlisten(session, None)

    def cancel(self, pid: int, secret: int) -> bool:
        s = self.sessions.get(pid)
        if s is None or s.secret != secret:
            self.journal.event("cancel_ignored", pid=pid)
            return False
        self.journal.event("cancel", pid=pid)
        s.cancel()
        return True

    def listen(self, session, channel: str) -> None:
        self.listeners.setdefault(channel, set()).add(session)

    def unlisten(self, session, channel: str | None) -> None:
        if channel is None:
            for ch in list(self.listeners):
                self.listeners[ch].discard(session)
                if not self.listeners[ch]:
                    del self.listeners[ch]
        else:
            s = self.listeners.get(channel)
            if s:
                s.discard(session)
                if not s:
                    del self.listeners[channel]

    def notify(self, channel: str, payload: str, sender_pid: int) -> int:
        """Deliver to every listening session; returns how many got it."""
        targets = self.listeners.get(channel, ())
        for s in list(targets):
            s.deliver_notification(sender_pid, channel, payload)
        self.journal.event("notify", channel=channel, payload=payload, pid=sender_pid, delivered=len(targets))
        return len(targets)
