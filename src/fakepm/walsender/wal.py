"""The fake WAL: an append-only list of decoded records with LSNs, and the replication slots.

A record is what logical decoding would hand to pgoutput: a committed (or prepared, or
aborted streamed) transaction with its changes, a non-transactional message, the COMMIT
PREPARED / ROLLBACK PREPARED of an earlier prepared transaction, or a scripted marker
(pause, keepalive, fault) for the senders. Every walsender connection reads the same log
from its own start position, which is what makes at-least-once re-sending natural.

LSNs are assigned when a record is appended, monotonic and shaped like PostgreSQL's
(walsender-behavior.md 4.1): changes at increasing positions, `commit_lsn` after the last
change, `end_lsn = commit_lsn + 0x30`, the next transaction starting at the previous
`end_lsn`. Explicit LSNs may be given; they must not go backwards.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..answers.catalog import Table
from ..protocol.pgoutput import UNCHANGED_TOAST
from ..protocol.replication import format_lsn

CHANGE_SIZE = 0x80  # bytes of "WAL" one change occupies (any positive multiple of 8 works)
COMMIT_SIZE = 0x30  # end_lsn - commit_lsn, as in the captures
MESSAGE_SIZE = 0x50


@dataclass
class Change:
    kind: str  # insert | update | delete | truncate | message
    table: Table | None = None
    new: tuple | None = None  # natural values (UNCHANGED_TOAST allowed) in column order
    old: tuple | None = None  # old key (others None) or full old row
    old_kind: str | None = None  # "K" | "O" | None
    tables: tuple = ()  # truncate
    truncate_options: int = 0
    prefix: str = ""  # message
    content: bytes = b""
    lsn: int = 0
    subxid: int | None = None  # the subtransaction that made it (None = top level)
    cache: dict = field(default_factory=dict, repr=False)  # encoded tuples per format


@dataclass
class SubAbort:
    """ROLLBACK TO SAVEPOINT of a subtransaction inside a (streamed) transaction."""

    subxid: int
    lsn: int = 0


@dataclass
class Txn:
    xid: int
    items: list  # Change | SubAbort, in order
    commit_time: int  # us since 2000-01-01
    origin: tuple | None = None  # (name, origin_lsn)
    streaming: bool = False  # large transaction: streamed to consumers with streaming on
    aborted: bool = False  # a streamed transaction that rolled back
    gid: str | None = None  # PREPARE TRANSACTION gid (two-phase)
    first_lsn: int = 0
    commit_lsn: int = 0  # commit (or prepare / abort) record position
    end_lsn: int = 0
    segment_size: int = 100  # changes per Stream Start..Stream Stop segment
    plain: Any = field(default=False, repr=False, compare=False)  # encoder.plain_body() cache (False: not yet)

    @property
    def changes(self) -> list:
        return [c for c in self.items if isinstance(c, Change)]

    @property
    def aborted_subxids(self) -> set:
        return {s.subxid for s in self.items if isinstance(s, SubAbort)}

    @property
    def position(self) -> int:
        return self.commit_lsn


@dataclass
class NonTxMessage:
    change: Change
    end_lsn: int = 0

    @property
    def position(self) -> int:
        return self.change.lsn


@dataclass
class PreparedEnd:
    """COMMIT PREPARED or ROLLBACK PREPARED of an earlier prepared Txn."""

    kind: str  # "commit" | "rollback"
    txn: Txn
    lsn: int = 0  # commit_lsn / rollback record position
    end_lsn: int = 0
    time: int = 0

    @property
    def position(self) -> int:
        return self.lsn


@dataclass
class Marker:
    """A scripted event for senders at a WAL position: pause, keepalive, fault."""

    kind: str  # pause | keepalive | fault
    data: Any = None
    lsn: int = 0
    once: bool = False
    fired: bool = False

    @property
    def position(self) -> int:
        return self.lsn

    end_lsn = property(lambda self: self.lsn)


@dataclass
class Slot:
    name: str
    kind: str = "logical"  # logical | physical
    plugin: str | None = "pgoutput"
    two_phase: bool = False
    temporary: bool = False
    failover: bool = False  # PostgreSQL 17+: synchronised to standbys (CREATE ... (FAILOVER), ALTER_REPLICATION_SLOT)
    confirmed_flush: int = 0
    restart_lsn: int = 0
    consistent_point: int = 0
    active_pid: int | None = None
    owner: Any = None  # the session of a temporary slot

    def __repr__(self) -> str:
        return (f"<Slot {self.name} {self.kind} confirmed_flush={format_lsn(self.confirmed_flush)}"
                f"{' active pid=' + str(self.active_pid) if self.active_pid else ''}>")


class WalLog:
    """Records in LSN order. Appends may come from any thread; readers index `records`."""

    def __init__(self, start_lsn: int = 0x1000000, first_xid: int = 740):
        self.records: list = []
        self.start_lsn = start_lsn  # where the log (and, by default, every new slot) starts
        self.insert_lsn = start_lsn  # the end of WAL
        self.next_xid = first_xid
        self.lock = threading.RLock()
        self.prepared: dict[str, Txn] = {}

    def new_xid(self) -> int:
        with self.lock:
            x = self.next_xid
            self.next_xid += 1
            return x

    def _advance_to(self, lsn: int | None, what: str) -> None:
        if lsn is None:
            return
        if lsn < self.insert_lsn:
            raise ValueError(
                f"{what}: LSN {format_lsn(lsn)} goes backwards (the WAL is already at {format_lsn(self.insert_lsn)})"
            )
        self.insert_lsn = lsn

    def append_txn(self, txn: Txn, *, begin_lsn=None, commit_lsn=None, end_lsn=None, where="transaction",
                   prepare=None) -> Txn:
        """Give txn its LSNs and append it; `prepare(txn)` runs once it has them, before readers can see it."""
        with self.lock:
            if txn.gid is not None and txn.gid in self.prepared:
                raise ValueError(f'{where}: transaction identifier "{txn.gid}" is already in use')
            start = self.insert_lsn
            try:
                self._advance_to(begin_lsn, f"{where} lsn")
                txn.first_lsn = self.insert_lsn
                for item in txn.items:
                    explicit = item.lsn or None
                    self._advance_to(explicit, f"{where} change lsn")
                    item.lsn = self.insert_lsn
                    self.insert_lsn += CHANGE_SIZE if isinstance(item, Change) else COMMIT_SIZE
                self._advance_to(commit_lsn, f"{where} commit_lsn")
                txn.commit_lsn = self.insert_lsn
                txn.end_lsn = end_lsn if end_lsn is not None else txn.commit_lsn + COMMIT_SIZE
                if txn.end_lsn <= txn.commit_lsn:
                    raise ValueError(f"{where}: end_lsn must be after commit_lsn {format_lsn(txn.commit_lsn)}")
            except ValueError:
                self.insert_lsn = start  # a refused transaction leaves the WAL where it was
                raise
            self.insert_lsn = txn.end_lsn
            if prepare is not None:
                prepare(txn)
            if txn.gid is not None:
                self.prepared[txn.gid] = txn
            self.records.append(txn)
            return txn

    def append_message(self, change: Change, *, lsn=None, where="message") -> NonTxMessage:
        with self.lock:
            self._advance_to(lsn, f"{where} lsn")
            change.lsn = self.insert_lsn
            rec = NonTxMessage(change, self.insert_lsn + MESSAGE_SIZE)
            self.insert_lsn = rec.end_lsn
            self.records.append(rec)
            return rec

    def append_prepared_end(self, kind: str, gid: str, time: int, *, lsn=None, end_lsn=None,
                            where="commit_prepared") -> PreparedEnd:
        with self.lock:
            txn = self.prepared.pop(gid, None)
            if txn is None:
                raise ValueError(f'{where}: prepared transaction with identifier "{gid}" does not exist')
            self._advance_to(lsn, f"{where} lsn")
            rec = PreparedEnd(kind, txn, self.insert_lsn, 0, time)
            rec.end_lsn = end_lsn if end_lsn is not None else rec.lsn + COMMIT_SIZE
            self.insert_lsn = rec.end_lsn
            self.records.append(rec)
            return rec

    def append_marker(self, marker: Marker) -> Marker:
        with self.lock:
            marker.lsn = self.insert_lsn
            self.records.append(marker)
            return marker


def natural_row(table: Table, row, where: str, *, partial_ok: bool = False) -> tuple:
    """A row (mapping or sequence) as a tuple in column order, values checked against the types.

    Missing columns of a mapping are NULL; UNCHANGED_TOAST passes through.
    """
    names = table.column_names
    if isinstance(row, dict):
        unknown = set(row) - set(names)
        if unknown:
            raise ValueError(f"{where}: unknown column(s) {sorted(unknown)} for {table.qualname}; columns are {names}")
        values = [row.get(n) for n in names]
    else:
        values = list(row)
        if len(values) != len(names):
            raise ValueError(f"{where}: {len(values)} value(s) for {table.qualname}, which has columns {names}")
    out = []
    for col, v in zip(table.columns, values):
        if v is None or v is UNCHANGED_TOAST:
            out.append(v)
            continue
        try:
            out.append(col.type.coerce(v))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: column {col.name!r} of {table.qualname}: {e}") from None
    return tuple(out)


def key_columns(table: Table) -> list[str]:
    """Columns of the replica identity (flag 1 in Relation)."""
    ri = table.replica_identity
    if ri == "f":
        return table.column_names
    if ri == "n":
        return []
    return list(table.key)


def make_change(kind: str, table: Table, row=None, *, old=None, where: str = "change") -> Change:
    """Build an insert/update/delete Change the way pgoutput would publish it."""
    ri = table.replica_identity
    if kind == "insert":
        return Change("insert", table, new=natural_row(table, row, where))
    if kind == "update":
        new = natural_row(table, row, where)
        if ri == "f":
            if old is None:
                raise ValueError(f"{where}: {table.qualname} has REPLICA IDENTITY FULL: give the full old row (old=)")
            return Change("update", table, new=new, old=natural_row(table, old, f"{where} old"), old_kind="O")
        if old is not None and ri in ("d", "i"):
            o = natural_row(table, old, f"{where} old")
            keys = key_columns(table)
            idx = [table.column_names.index(k) for k in keys]
            if any(o[i] != new[i] for i in idx):
                key_only = tuple(o[i] if i in idx else None for i in range(len(o)))
                return Change("update", table, new=new, old=key_only, old_kind="K")
        return Change("update", table, new=new)
    if kind == "delete":
        if ri == "n":
            raise ValueError(
                f'{where}: cannot delete from table "{table.name}" because it does not have a replica identity '
                "and publishes deletes (declare a key or replica_identity: full)"
            )
        if ri == "f":
            return Change("delete", table, old=natural_row(table, row, where), old_kind="O")
        keys = key_columns(table)
        if not keys:
            raise ValueError(f"{where}: {table.qualname} has no key columns: declare key: [...] or replica_identity: full")
        full = natural_row(table, row, where)
        missing = [k for k in keys if full[table.column_names.index(k)] is None]
        if missing:
            raise ValueError(f"{where}: delete from {table.qualname} needs the key column(s) {missing}")
        idx = {table.column_names.index(k) for k in keys}
        return Change("delete", table, old=tuple(v if i in idx else None for i, v in enumerate(full)), old_kind="K")
    raise ValueError(f"{where}: unknown change kind {kind!r}")
