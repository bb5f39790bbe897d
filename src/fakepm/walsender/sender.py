"""WalSender: the fake's logical replication source, `pg.wal`.

One per FakePostgres. It owns the WAL log, the slots and the publications, answers the
replication commands of replication connections (the Session calls `replication_query`
for every Query on a connection opened with replication=database|true), runs the
CopyBoth streams, and is the Python API tests use to emit changes while consumers listen:

    pg.wal.insert("public.orders", {"id": 1, "total": 9.99})
    with pg.wal.transaction() as tx:
        tx.update("public.orders", {"id": 1, "total": 5}, old={"id": 1, "total": 9.99})
    pg.wal.wait_for_flush(tx.end_lsn, timeout=5)

Appends may come from any thread; streams run on the server's loop thread and are woken.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..answers.catalog import Table
from ..protocol.errors import PgError
from ..protocol.replication import format_lsn
from .builder import TransactionBuilder, _lsn, _seconds, _timestamp
from .commands import ReplicationCommands
from .stream import LogicalStream
from .wal import Change, Marker, Slot, WalLog


class WalSender(ReplicationCommands):
    def __init__(self, pg=None, *, clock: Callable[[], float] = time.time):
        self.pg = pg
        self.clock = clock  # wall clock for commit times and sendTime (inject for determinism)
        self.log = WalLog()
        self._slots: dict[str, Slot] = {}  # see the `slots` property
        self._slots_lock = threading.RLock()
        self.publications: dict | None = None  # None: every publication name publishes every table
        self.systemid = "7710764530963304710"
        self.timeline = 1
        self.dbname: str | None = None
        self.wal_sender_timeout = 60.0
        self.keepalive_interval = 10.0
        self.slot_start = "beginning"  # new slots start at the log's beginning ("end": at the WAL end)
        self.feedback: list[dict] = []  # every standby status update / hot standby feedback
        self._cond = threading.Condition()
        self._local = threading.local()
        self._active: dict = {}  # session -> stream (loop thread)
        self._catalog_local = None

    # ------------------------------------------------------------------ configuration
    def configure(self, *, systemid=None, timeline=None, dbname=None, start_lsn=None, wal_sender_timeout=None,
                  keepalive_interval=None, slot_start=None, first_xid=None) -> "WalSender":
        if systemid is not None:
            self.systemid = str(systemid)
        if timeline is not None:
            self.timeline = int(timeline)
        if dbname is not None:
            self.dbname = dbname
        if start_lsn is not None:
            if self.log.records:
                raise ValueError("start_lsn can only be set before the first change is emitted")
            self.log.start_lsn = self.log.insert_lsn = _lsn(start_lsn, "start_lsn")
        if first_xid is not None:
            self.log.next_xid = int(first_xid)
        if wal_sender_timeout is not None:
            self.wal_sender_timeout = _seconds(wal_sender_timeout, "wal_sender_timeout")
        if keepalive_interval is not None:
            self.keepalive_interval = _seconds(keepalive_interval, "keepalive_interval")
        if slot_start is not None:
            if slot_start not in ("beginning", "end"):
                raise ValueError(f"slot_start must be 'beginning' or 'end', got {slot_start!r}")
            self.slot_start = slot_start
        return self

    def load(self, source, where: str | None = None) -> "WalSender":
        """Apply a `replication:` section: a mapping (with or without the `replication` key) or a YAML file."""
        import os

        from .scenario import parse_replication_section

        if isinstance(source, (str, os.PathLike)):
            import yaml

            with open(source) as f:
                data = yaml.safe_load(f)
            where = where or f"{os.fspath(source)}: replication"
        else:
            data = source
        if isinstance(data, dict) and "replication" in data:
            data = data["replication"]
        parse_replication_section(data, where or "replication").apply(self.pg)
        return self

    def create_slot(self, name: str, *, kind: str = "logical", plugin: str = "pgoutput", two_phase: bool = False,
                    confirmed_flush=None, failover: bool = False) -> Slot:
        """Declare a slot as if a client had created it (confirmed_flush defaults to the log's start)."""
        if kind not in ("logical", "physical"):
            raise ValueError(f"slot {name!r}: kind must be 'logical' or 'physical', got {kind!r}")
        if kind == "logical" and plugin != "pgoutput":
            raise ValueError(f"slot {name!r}: fakepm implements the pgoutput plugin only, got {plugin!r}")
        start = _lsn(confirmed_flush, f"slot {name} confirmed_flush") if confirmed_flush is not None else \
            self.log.start_lsn
        slot = Slot(name, kind, plugin if kind == "logical" else None, two_phase, confirmed_flush=start,
                    restart_lsn=start, consistent_point=start, failover=failover)
        with self._slots_lock:
            self._slots[name] = slot
        return slot

    def publication(self, name: str, tables=None, *, publish=("insert", "update", "delete", "truncate")) -> None:
        """Declare a publication (tables=None: FOR ALL TABLES). Once any is declared, unknown names fail."""
        bad = set(publish) - {"insert", "update", "delete", "truncate"}
        if bad:
            raise ValueError(f"publication {name!r}: publish takes insert, update, delete, truncate; got {sorted(bad)}")
        if self.publications is None:
            self.publications = {}
        names = None if tables is None else {self.table(t, f"publication {name}").qualname for t in tables}
        self.publications[name] = {"tables": names, "publish": set(publish)}

    def table(self, name, where: str = "change") -> Table:
        if isinstance(name, Table):
            return name
        catalog = self.pg.catalog if self.pg is not None else self._catalog()
        t = catalog.tables.get(name)  # an exact "schema.table" (the usual spelling) needs no parsing
        if t is None:
            t = catalog.get(str(name))
        if t is None:
            known = sorted(catalog.tables) or ["(none)"]
            raise ValueError(f"{where}: table {name!r} is not declared (pg.table(...) or replication.tables in "
                             f"the scenario); declared: {', '.join(known)}")
        return t

    def _catalog(self):
        if self._catalog_local is None:
            from ..answers.catalog import Catalog

            self._catalog_local = Catalog()
        return self._catalog_local

    def alter_table(self, name: str, columns, *, key=None, replica_identity=None) -> Table:
        """Change a declared table (same OID): consumers get a new Relation before its next change."""
        old = self.table(name, "alter_table")
        catalog = self.pg.catalog if self.pg is not None else self._catalog()
        return catalog.add(old.qualname, columns, key=old.key if key is None else key, rows=(),
                           replica_identity=old.replica_identity if replica_identity is None else replica_identity,
                           oid=old.oid)

    def capture_writes(self, tables=None, *, priority: int = 0):
        """"Client writes, CDC sees it": answer simple INSERT/UPDATE/DELETE on declared tables from ordinary
        connections (tags INSERT 0 n / UPDATE n / DELETE n over the table's current rows) and emit the
        matching changes (one transaction per statement, or per BEGIN..COMMIT block)."""
        from .capture import WriteCapture

        if self.pg is None:
            raise RuntimeError("capture_writes needs a FakePostgres (its rules answer the writes)")
        cap = WriteCapture(self, tables)
        cap.install(self.pg, priority)
        return cap

    # ------------------------------------------------------------------ emitting (any thread)
    @property
    def lsn(self) -> int:
        """The current end of WAL (what IDENTIFY_SYSTEM reports)."""
        return self.log.insert_lsn

    def transaction(self, **kw) -> TransactionBuilder:
        """`with pg.wal.transaction(streaming=False, prepare=None, origin=None, xid=None, commit_time=None) as tx:`"""
        if "origin" in kw and kw["origin"] is not None and not isinstance(kw["origin"], tuple):
            o = kw["origin"]
            kw["origin"] = (o["name"], _lsn(o.get("lsn", 0), "origin lsn")) if isinstance(o, dict) else (str(o), 0)
        return TransactionBuilder(self, **kw)

    def _current(self) -> TransactionBuilder | None:
        return getattr(self._local, "tx", None)

    def _single(self, fn):
        tx = self._current()
        if tx is not None:
            return fn(tx)
        tx = TransactionBuilder(self)
        fn(tx)
        return tx.commit()

    def insert(self, table, row, **kw):
        """Emit an INSERT (in the open `with transaction()` or as its own transaction). Returns the Txn."""
        return self._single(lambda tx: tx.insert(table, row, **kw))

    def update(self, table, row, *, old=None, **kw):
        return self._single(lambda tx: tx.update(table, row, old=old, **kw))

    def delete(self, table, row, **kw):
        return self._single(lambda tx: tx.delete(table, row, **kw))

    def truncate(self, tables, **kw):
        return self._single(lambda tx: tx.truncate(tables, **kw))

    def message(self, prefix: str, content, *, transactional: bool = False, lsn=None):
        """pg_logical_emit_message(): non-transactional by default (sent on its own, only with messages=true)."""
        data = content.encode() if isinstance(content, str) else bytes(content)
        if transactional:
            return self._single(lambda tx: tx.message(prefix, data, transactional=True, lsn=lsn))
        change = Change("message", prefix=prefix, content=data)
        return self._append(lambda: self.log.append_message(change, lsn=_lsn(lsn, "message lsn") if lsn else None))

    def commit_prepared(self, gid: str, *, commit_time=None, lsn=None) -> Any:
        t = _timestamp(commit_time if commit_time is not None else self.clock(), "commit_time")
        return self._append(lambda: self.log.append_prepared_end("commit", gid, t, lsn=_lsn(lsn, "lsn") if lsn else None))

    def rollback_prepared(self, gid: str, *, rollback_time=None, lsn=None) -> Any:
        t = _timestamp(rollback_time if rollback_time is not None else self.clock(), "rollback_time")
        return self._append(lambda: self.log.append_prepared_end("rollback", gid, t,
                                                                 lsn=_lsn(lsn, "lsn") if lsn else None,
                                                                 where="rollback_prepared"))

    def pause(self, seconds: float) -> Marker:
        """Senders wait this long before sending what comes after (per connection)."""
        return self._append(lambda: self.log.append_marker(Marker("pause", float(seconds))))

    def keepalive(self, reply_requested: bool = False) -> Marker:
        return self._append(lambda: self.log.append_marker(Marker("keepalive", bool(reply_requested))))

    def fault(self, kind: str = "disconnect", *, code: str = "XX000", message: str = "fakepm: scripted walsender error",
              once: bool = True) -> Marker:
        """At this stream point: `disconnect` (close the socket) or `error` (ErrorResponse, then close)."""
        if kind not in ("disconnect", "error"):
            raise ValueError(f"fault kind must be 'disconnect' or 'error', got {kind!r}")
        err = PgError(code, message)
        return self._append(lambda: self.log.append_marker(Marker("fault", (kind, err), once=once)))

    def _append(self, fn):
        rec = fn()
        # only streams need waking; one that starts later polls the log (which already holds rec) first
        if self._active:
            loop = getattr(self.pg, "_loop", None) if self.pg is not None else None
            if loop is not None and getattr(self.pg, "_started", False):
                loop.call_soon_threadsafe(self._wake_all)
        return rec

    def _wake_all(self) -> None:
        loop = self.pg._loop
        for session in list(self._active):
            loop.wake_session(session, time.monotonic())

    # ------------------------------------------------------------------ consumer progress
    def _record_feedback(self, session, slot: Slot | None, data: dict) -> None:
        entry = dict(data, connection=session.id, slot=slot.name if slot else None,
                     application_name=session.reported.get("application_name", ""), time=session.now)
        session.hub.journal.event(entry.pop("kind"), **entry)
        entry["kind"] = data["kind"]
        with self._cond:
            self.feedback.append(entry)
            if len(self.feedback) > 100_000:
                del self.feedback[:50_000]
            self._cond.notify_all()

    def wait_for(self, lsn, *, field: str = "flush", timeout: float = 5.0, slot: str | None = None) -> dict:
        """Wait until a consumer reports `field` (write/flush/apply) >= lsn; returns that status update."""
        target = _lsn(lsn.end_lsn if hasattr(lsn, "end_lsn") else lsn, "lsn")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for fb in self.feedback:
                    if fb["kind"] == "standby_status" and fb[field] >= target and (slot is None or fb["slot"] == slot):
                        return fb
                left = deadline - time.monotonic()
                if left <= 0:
                    last = [f for f in self.feedback if f["kind"] == "standby_status"][-3:]
                    shown = ", ".join(f"{f['slot']}: {field}={format_lsn(f[field])}" for f in last) or "none"
                    raise TimeoutError(f"no consumer reported {field} >= {format_lsn(target)} within {timeout}s "
                                       f"(last status updates: {shown})")
                self._cond.wait(left)

    def wait_for_flush(self, lsn, timeout: float = 5.0, *, slot: str | None = None) -> dict:
        return self.wait_for(lsn, field="flush", timeout=timeout, slot=slot)

    def wait_for_apply(self, lsn, timeout: float = 5.0, *, slot: str | None = None) -> dict:
        return self.wait_for(lsn, field="apply", timeout=timeout, slot=slot)

    def wait_for_stream(self, *, slot: str | None = None, timeout: float = 5.0) -> None:
        """Wait until a consumer is streaming (from `slot`, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for st in self.streams:
                if isinstance(st, LogicalStream) and (slot is None or (st.slot and st.slot.name == slot)):
                    return
            time.sleep(0.01)
        raise TimeoutError(f"no consumer started streaming{' from slot ' + slot if slot else ''} within {timeout}s")

    @property
    def streams(self) -> list:
        """The streams running now (LogicalStream / PhysicalStream; read from any thread)."""
        for _ in range(10):
            try:
                return list(self._active.values())
            except RuntimeError:  # the loop thread changed the dict while we copied it
                continue
        return []

    @property
    def slots(self) -> dict:
        """name -> Slot (kind, two_phase, confirmed_flush, restart_lsn, active_pid); temporary slots of
        closed connections are gone, as in PostgreSQL."""
        self._purge_temporary()
        return self._slots

    def _purge_temporary(self) -> None:
        with self._slots_lock:  # the test thread (pg.wal.slots) and the loop thread both purge
            for name, slot in list(self._slots.items()):
                if slot.temporary and slot.owner is not None and slot.owner.closed:
                    self._slots.pop(name, None)
                if slot.active_pid is not None and slot.owner is not None and slot.owner.closed:
                    slot.active_pid = None

    def _slot(self, name: str) -> Slot:
        self._purge_temporary()
        slot = self._slots.get(name)
        if slot is None:
            raise PgError("42704", f'replication slot "{name}" does not exist')
        return slot
