"""What sessions of one server share: backend keys, LISTEN registrations, the journal.

Only the server's I/O thread calls into the Hub (other threads hand work to that thread),
so the Hub needs no locks on its hot paths.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from dataclasses import dataclass
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
    sql_size: int | None = None  # set when the journal kept only the start of a longer text (its length)

    def __repr__(self) -> str:
        p = f" params={self.params!r}" if self.params else ""
        return f"<{self.protocol} #{self.connection} {self.sql!r}{p} -> {self.rule or 'UNMATCHED'}>"


# The journal's limits. A test double keeps what a test asks about afterwards (pg.queries,
# pg.unmatched, pg.events, pg.copies) but must not grow without end when clients (a soak, a
# fuzzer, a long pgbench) never stop: each list keeps its newest entries within a count and
# an estimate of the bytes they hold; `Journal.dropped` says how many each list let go.
JOURNAL_ENTRIES = 100_000  # per list: a long test's every statement, far more than a report shows
QUERY_BYTES = 32 << 20  # pg.queries: ~300 bytes an entry, so the byte bound bites only for long texts
UNMATCHED_BYTES = 8 << 20  # pg.unmatched: verify() needs one to fail a test, not a million
EVENT_BYTES = 8 << 20  # pg.events: connect/auth/notify events are small
COPY_BYTES = 64 << 20  # pg.copies: the rows COPY IN kept, by the memory they take (COPY_MEMORY_FACTOR)
# Typed rows take 2 to 8 times their COPY text in memory (int and text ~2-3x, numeric ~8x:
# Decimal objects); the estimate takes the worst
COPY_MEMORY_FACTOR = 8
MAX_TEXT = 1 << 20  # the SQL kept per entry: a longer text keeps its first MiB (`sql_size` has its length)
_ENTRY_OVERHEAD = 300  # the entry object, its dict and small fields


class BoundedLog:
    """A list of the newest entries within `limit` entries and `max_bytes` (sizes from `sizeof`);
    iterates oldest first like the deque it replaces. The newest entry is always kept."""

    __slots__ = ("dropped", "items", "limit", "max_bytes", "size", "sizeof", "sizes")

    def __init__(self, limit: int, max_bytes: int, sizeof: Callable[[Any], int]):
        self.items: deque = deque()
        self.sizes: deque = deque()
        self.limit = limit
        self.max_bytes = max_bytes
        self.size = 0
        self.dropped = 0
        self.sizeof = sizeof

    def append(self, item) -> None:
        n = self.sizeof(item)
        self.items.append(item)
        self.sizes.append(n)
        self.size += n
        while len(self.items) > 1 and (len(self.items) > self.limit or self.size > self.max_bytes):
            self.items.popleft()
            self.size -= self.sizes.popleft()
            self.dropped += 1

    def clear(self) -> None:
        self.items.clear()
        self.sizes.clear()
        self.size = 0

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __repr__(self) -> str:
        return f"<BoundedLog {len(self.items)} entries, ~{self.size} bytes, {self.dropped} dropped>"


def _value_size(v) -> int:
    """Bytes a journaled value holds, roughly (long lists are sampled: cheap on every entry)."""
    if isinstance(v, (str, bytes, bytearray, memoryview)):
        return len(v) + 50
    if isinstance(v, dict):
        v = list(v.values())
    if isinstance(v, (list, tuple)):
        n = len(v)
        if n == 0:
            return 56
        sample = v[:100]
        return 56 + 8 * n + sum(_value_size(x) for x in sample) * n // len(sample)
    return 32


def _entry_size(e) -> int:
    hint = getattr(e, "params_size", None)  # an entry whose parameters are decoded lazily knows their size
    return _ENTRY_OVERHEAD + len(e.sql) + (hint if hint is not None else _value_size(e.params))


def _event_size(ev: dict) -> int:
    return 200 + sum(_value_size(v) for v in ev.values())


_COPY_OVERHEAD = 2300  # a CopyRecord's own objects (options, columns, first/last row, checksum): ~2.2 kB measured


def _copy_size(rec) -> int:
    kept = getattr(rec, "kept_bytes", 0) or 0
    return _COPY_OVERHEAD + len(getattr(rec, "sql", "") or "") + kept * COPY_MEMORY_FACTOR


class CopyLog(BoundedLog):
    """pg.copies: over its byte bound, the oldest records first let go of their rows (they keep
    count, bytes, checksum, first and last rows, and say so: CopyRecord.release_rows); a record
    goes only when the count bound is reached."""

    __slots__ = ()

    def append(self, item) -> None:
        n = self.sizeof(item)
        self.items.append(item)
        self.sizes.append(n)
        self.size += n
        i, last = 0, len(self.items) - 1
        while self.size > self.max_bytes and i < last:
            rec = self.items[i]
            release = getattr(rec, "release_rows", None)
            if release is not None and getattr(rec, "kept_bytes", 0):
                release("pg.copies keeps the rows of its newest COPYs only")
                m = self.sizeof(rec)
                self.size += m - self.sizes[i]
                self.sizes[i] = m
            i += 1
        while len(self.items) > 1 and (len(self.items) > self.limit or self.size > self.max_bytes):
            self.items.popleft()
            self.size -= self.sizes.popleft()
            self.dropped += 1


class Journal:
    """What one server saw: queries, unmatched queries, events, COPYs -- each a BoundedLog."""

    def __init__(self, limit: int = JOURNAL_ENTRIES, *, query_bytes: int = QUERY_BYTES,
                 unmatched_bytes: int = UNMATCHED_BYTES, event_bytes: int = EVENT_BYTES,
                 copy_bytes: int = COPY_BYTES, max_text: int = MAX_TEXT):
        self.limit = limit
        self.max_text = max_text
        self.queries = BoundedLog(limit, query_bytes, _entry_size)
        self.unmatched = BoundedLog(limit, unmatched_bytes, _entry_size)
        self.events = BoundedLog(limit, event_bytes, _event_size)  # connection/auth/replication events
        self.copies = CopyLog(limit, copy_bytes, _copy_size)  # session.copy.CopyRecord per COPY (pg.copies)
        # fn(what, item) called (on the recording thread) for each statement ("statement", entry) and
        # event ("event", dict): the serve log. Observers must be quick and must not raise.
        self.observers: list[Callable[[str, Any], None]] = []
        # rows the COPYs still running keep (estimated memory), within the same bound as pg.copies:
        # many connections loading at once share it (session/copy.py _Kept)
        self.copy_inflight = 0
        self.copy_inflight_max = copy_bytes

    @property
    def dropped(self) -> dict:
        """How many entries each list let go to stay within its limits."""
        return {"queries": self.queries.dropped, "unmatched": self.unmatched.dropped,
                "events": self.events.dropped, "copies": self.copies.dropped}

    def record(self, entry: JournalEntry) -> None:
        if len(entry.sql) > self.max_text:  # the first MiB says what it was; sql_size how long it was
            entry.sql_size = len(entry.sql)
            entry.sql = entry.sql[: self.max_text]
        self.queries.append(entry)
        if not entry.matched:
            self.unmatched.append(entry)
        if self.observers:
            for fn in self.observers:
                fn("statement", entry)

    def event(self, kind: str, **data: Any) -> None:
        ev = {"kind": kind, **data}
        self.events.append(ev)
        if self.observers:
            for fn in self.observers:
                fn("event", ev)

    def clear(self) -> None:
        self.queries.clear()
        self.unmatched.clear()
        self.events.clear()
        self.copies.clear()


LONG_KEY_LENGTH = 32  # PostgreSQL 18's MAX_CANCEL_KEY_LENGTH (the protocol allows up to 256)


def _same_key(mine: "int | bytes", theirs: "int | bytes") -> bool:
    if isinstance(mine, int) or isinstance(theirs, int):
        return isinstance(mine, int) and isinstance(theirs, int) and mine == theirs
    return secrets.compare_digest(mine, theirs)  # as PostgreSQL 18: timingsafe_bcmp


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
        """(connection id, pid, secret key) for a new connection (a protocol 3.0 key: 4 bytes, an int)."""
        return next(self._conn_ids), next(self._pids), secrets.randbits(31)

    @staticmethod
    def long_key(length: int = LONG_KEY_LENGTH) -> bytes:
        """A protocol 3.2 cancel key: PostgreSQL 18 gives a 3.2 client 32 random bytes."""
        return secrets.token_bytes(length)

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

    def cancel(self, pid: int, secret: "int | bytes") -> bool:
        """A CancelRequest: the key must be the session's, of the same length (4 bytes = an int)."""
        s = self.sessions.get(pid)
        if s is None or not _same_key(s.secret, secret):
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
