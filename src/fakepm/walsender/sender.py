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

import contextlib
import threading
import time
from typing import Any, Callable

from ..answers.catalog import Table
from ..answers.result import Column, Result
from ..protocol import messages as m
from ..protocol import pgoutput as po
from ..protocol.errors import PgError
from ..protocol.replication import format_lsn, parse_lsn, to_pg_timestamp
from ..protocol.types import REGISTRY
from ..session.connection import NEED_INPUT, OUTPUT_FULL, OUTPUT_LIMIT, Event
from . import grammar as g
from .encoder import PgoutputWriter, Publications
from .stream import LogicalStream, PhysicalStream
from .wal import Change, Marker, NonTxMessage, Slot, SubAbort, Txn, WalLog, make_change

_T = REGISTRY.by_name
TEXT, INT4, INT8 = _T("text"), _T("int4"), _T("int8")


def _text_cols(*names, types=None, typmod=-1) -> tuple:
    types = types or {}
    return tuple(Column(n, types.get(n, TEXT), typmod) for n in names)


IDENTIFY_COLUMNS = _text_cols("systemid", "timeline", "xlogpos", "dbname", types={"timeline": INT4})
SLOT_COLUMNS = _text_cols("slot_name", "consistent_point", "snapshot_name", "output_plugin")
READ_SLOT_COLUMNS = _text_cols("slot_type", "restart_lsn", "restart_tli", types={"restart_tli": INT8})
HISTORY_COLUMNS = _text_cols("filename", "content", typmod=0)


def _seconds(value, what: str) -> float:
    """60, 1.5, '60s', '2min', '500ms' -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        s = value.strip().lower()
        for suffix, mult in (("ms", 0.001), ("min", 60.0), ("s", 1.0), ("h", 3600.0)):
            if s.endswith(suffix):
                try:
                    return float(s[: -len(suffix)]) * mult
                except ValueError:
                    break
        try:
            return float(s)
        except ValueError:
            pass
    raise ValueError(f"{what}: expected seconds (a number) or a duration like '60s', '2min', '500ms'; got {value!r}")


def _lsn(value, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return parse_lsn(str(value))
    except ValueError:
        raise ValueError(f"{what}: expected an LSN like '0/1000000', got {value!r}") from None


def _timestamp(value, what: str) -> int:
    """datetime, ISO 8601 text or Unix seconds -> microseconds since 2000-01-01 UTC."""
    import datetime as dt

    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: expected an ISO 8601 timestamp or Unix seconds, got {value!r}") from None
    try:
        return to_pg_timestamp(value)
    except TypeError as e:
        raise ValueError(f"{what}: {e}") from None


class TransactionBuilder:
    """What `pg.wal.transaction()` yields: add changes, then leave the `with` block to commit."""

    def __init__(self, wal: "WalSender", *, xid=None, commit_time=None, origin=None, streaming=False,
                 prepare: str | None = None, abort: bool = False, segment_size: int = 100, lsn=None,
                 commit_lsn=None, end_lsn=None, where: str = "transaction"):
        self._wal = wal
        self.where = where
        self.xid = xid if xid is not None else wal.log.new_xid()
        self.commit_time = commit_time
        self.origin = origin
        self.streaming = streaming
        self.gid = prepare
        self.aborted = abort
        self.segment_size = segment_size
        self.items: list = []
        self._subxid: int | None = None
        self._lsns = (lsn, commit_lsn, end_lsn)
        self.txn: Txn | None = None

    # changes -----------------------------------------------------------------
    def _add(self, change: Change, lsn=None) -> Change:
        change.subxid = self._subxid
        if lsn is not None:
            change.lsn = _lsn(lsn, f"{self.where} change lsn")
        self.items.append(change)
        return change

    def insert(self, table, row, *, lsn=None) -> Change:
        t = self._wal.table(table, self.where)
        return self._add(make_change("insert", t, row, where=f"{self.where} insert into {t.qualname}"), lsn)

    def update(self, table, row, *, old=None, lsn=None) -> Change:
        t = self._wal.table(table, self.where)
        return self._add(make_change("update", t, row, old=old, where=f"{self.where} update of {t.qualname}"), lsn)

    def delete(self, table, row, *, lsn=None) -> Change:
        t = self._wal.table(table, self.where)
        return self._add(make_change("delete", t, row, where=f"{self.where} delete from {t.qualname}"), lsn)

    def truncate(self, tables, *, cascade: bool = False, restart_identity: bool = False, lsn=None) -> Change:
        if isinstance(tables, (str, Table)):
            tables = [tables]
        ts = tuple(self._wal.table(t, self.where) for t in tables)
        opts = (po.TRUNCATE_CASCADE if cascade else 0) | (po.TRUNCATE_RESTART_IDENTITY if restart_identity else 0)
        return self._add(Change("truncate", tables=ts, truncate_options=opts), lsn)

    def message(self, prefix: str, content, *, transactional: bool = True, lsn=None):
        data = content.encode() if isinstance(content, str) else bytes(content)
        if not transactional:
            return self._wal.message(prefix, data, transactional=False, lsn=lsn)
        return self._add(Change("message", prefix=prefix, content=data), lsn)

    @contextlib.contextmanager
    def subtransaction(self, *, abort: bool = False):
        """Changes made inside belong to a subtransaction (SAVEPOINT); abort=True rolls it back."""
        outer = self._subxid
        self._subxid = self._wal.log.new_xid()
        try:
            yield self
        finally:
            if abort:
                self.items.append(SubAbort(self._subxid))
            self._subxid = outer

    def abort(self) -> None:
        """Roll the whole transaction back (only streamed transactions show anything)."""
        self.aborted = True

    # commit ----------------------------------------------------------------------
    def commit(self) -> Txn:
        if self.txn is not None:
            return self.txn
        ct = _timestamp(self.commit_time if self.commit_time is not None else self._wal.clock(), "commit_time")
        txn = Txn(self.xid, self.items, ct, origin=self.origin, streaming=self.streaming, aborted=self.aborted,
                  gid=self.gid, segment_size=self.segment_size)
        b, c, e = self._lsns
        self.txn = self._wal._append(
            lambda: self._wal.log.append_txn(txn, begin_lsn=_lsn(b, "lsn") if b is not None else None,
                                             commit_lsn=_lsn(c, "commit_lsn") if c is not None else None,
                                             end_lsn=_lsn(e, "end_lsn") if e is not None else None,
                                             where=self.where))
        return self.txn

    @property
    def commit_lsn(self) -> int:
        return self.commit().commit_lsn

    @property
    def end_lsn(self) -> int:
        return self.commit().end_lsn

    def __enter__(self) -> "TransactionBuilder":
        self._outer = getattr(self._wal._local, "tx", None)
        self._wal._local.tx = self
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._wal._local.tx = self._outer
        if exc_type is None:  # an exception inside the block discards the transaction (a rollback)
            self.commit()


class _Waiting:
    """Session mode while a command sleeps on timers (so timer events reach it)."""

    def closed(self) -> None:
        pass


class WalSender:
    def __init__(self, pg=None, *, clock: Callable[[], float] = time.time):
        self.pg = pg
        self.clock = clock  # wall clock for commit times and sendTime (inject for determinism)
        self.log = WalLog()
        self._slots: dict[str, Slot] = {}  # see the `slots` property
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
                    confirmed_flush=None) -> Slot:
        """Declare a slot as if a client had created it (confirmed_flush defaults to the log's start)."""
        if kind not in ("logical", "physical"):
            raise ValueError(f"slot {name!r}: kind must be 'logical' or 'physical', got {kind!r}")
        if kind == "logical" and plugin != "pgoutput":
            raise ValueError(f"slot {name!r}: fakepm implements the pgoutput plugin only, got {plugin!r}")
        start = _lsn(confirmed_flush, f"slot {name} confirmed_flush") if confirmed_flush is not None else \
            self.log.start_lsn
        slot = Slot(name, kind, plugin if kind == "logical" else None, two_phase, confirmed_flush=start,
                    restart_lsn=start, consistent_point=start)
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

    # ------------------------------------------------------------------ replication connections
    def replication_query(self, session, sql: str, stmts: list):
        """Session hook (a generator): True = handled here, False = let the normal rules answer."""
        try:
            cmd = g.parse_command(sql)
        except PgError as e:
            yield from self._fail(session, sql, e)
            return True
        except ValueError as e:
            yield from self._fail(session, sql, PgError("42601", "syntax error", detail=f"fakepm: {e}"))
            return True
        if cmd is None:
            if session.replication == "true":
                yield from self._fail(session, sql, PgError(
                    "0A000", "cannot execute SQL commands in WAL sender for physical replication"))
                return True
            from .catalog_queries import answer_catalog_query

            handled = yield from answer_catalog_query(self, session, sql)
            return handled
        if isinstance(cmd, g.Show):
            return False  # the session's SHOW answers it (one text column named after the setting)
        handler = {
            g.IdentifySystem: self._identify_system,
            g.TimelineHistory: self._timeline_history,
            g.CreateSlot: self._create_slot,
            g.DropSlot: self._drop_slot,
            g.ReadSlot: self._read_slot,
            g.StartLogical: self._start_logical,
            g.StartPhysical: self._start_physical,
        }.get(type(cmd))
        if handler is None:
            yield from self._fail(session, sql, PgError("0A000", f"fakepm does not implement {cmd.keyword}"))
            return True
        try:
            yield from handler(session, sql, cmd)
        except PgError as e:
            yield from self._fail(session, sql, e)
        return True

    def _journal(self, session, sql: str, error: PgError | None = None, label: str = "walsender") -> None:
        session._journal(session.make_query(sql, [], (), "replication", None), label, error)

    def _fail(self, session, sql: str, err: PgError):
        self._journal(session, sql, err)
        session._statement_failed(err)
        session._ready_for_query()
        return
        yield  # a generator

    def _reply(self, session, sql: str, result: Result, label: str):
        self._journal(session, sql, None, label)
        yield from session._emit_result(result, sql, (), None)
        session._ready_for_query()

    @property
    def slots(self) -> dict:
        """name -> Slot (kind, two_phase, confirmed_flush, restart_lsn, active_pid); temporary slots of
        closed connections are gone, as in PostgreSQL."""
        self._purge_temporary()
        return self._slots

    def _purge_temporary(self) -> None:
        for name, slot in list(self._slots.items()):
            if slot.temporary and slot.owner is not None and slot.owner.closed:
                del self._slots[name]
            if slot.active_pid is not None and slot.owner is not None and slot.owner.closed:
                slot.active_pid = None

    def _slot(self, name: str) -> Slot:
        self._purge_temporary()
        slot = self._slots.get(name)
        if slot is None:
            raise PgError("42704", f'replication slot "{name}" does not exist')
        return slot

    def _identify_system(self, session, sql, cmd):
        db = None if session.replication == "true" else (self.dbname or session.database)
        row = (self.systemid, self.timeline, format_lsn(self.log.insert_lsn), db)
        yield from self._reply(session, sql, Result(IDENTIFY_COLUMNS, [row], tag="IDENTIFY_SYSTEM"),
                               "walsender:IDENTIFY_SYSTEM")

    def _timeline_history(self, session, sql, cmd):
        from ..session.encode import row_description

        self._journal(session, sql, None, "walsender:TIMELINE_HISTORY")
        session._send(row_description(Result(HISTORY_COLUMNS), (0, 0)))
        name = f"{cmd.timeline:08X}.history"
        session._statement_failed(PgError("58P01", f'could not open file "pg_wal/{name}": No such file or directory'))
        session._ready_for_query()
        return
        yield

    def _create_slot(self, session, sql, cmd: g.CreateSlot):
        self._purge_temporary()
        if cmd.kind == "logical" and session.replication == "true":
            raise PgError("55000", "logical decoding requires a database connection")
        if cmd.name in self._slots:
            raise PgError("42710", f'replication slot "{cmd.name}" already exists')
        if cmd.kind == "logical":
            if cmd.plugin != "pgoutput":
                raise PgError("58P01", f'could not access file "{cmd.plugin}": No such file or directory',
                              hint="fakepm implements the pgoutput plugin only")
            if cmd.snapshot == "use" and session.tx == "I":
                raise PgError("XX000", "CREATE_REPLICATION_SLOT ... (SNAPSHOT 'use') must be called inside a transaction")
            if cmd.snapshot == "export" and session.tx != "I":
                raise PgError("XX000", "CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export') must not be called inside "
                                       "a transaction")
        start = self.log.start_lsn if self.slot_start == "beginning" else self.log.insert_lsn
        slot = Slot(cmd.name, cmd.kind, cmd.plugin, cmd.two_phase, cmd.temporary, confirmed_flush=start,
                    restart_lsn=start if cmd.kind == "logical" or cmd.reserve_wal else 0, consistent_point=start,
                    owner=session if cmd.temporary else None)
        self._slots[cmd.name] = slot
        if cmd.kind == "physical":
            row = (cmd.name, "0/0", None, None)
        else:
            snap = f"{3:08X}-{len(self._slots):08X}-1" if cmd.snapshot == "export" else None
            row = (cmd.name, format_lsn(start), snap, cmd.plugin)
        session.hub.journal.event("slot_created", connection=session.id, slot=cmd.name, slot_type=cmd.kind,
                                  consistent_point=format_lsn(start))
        yield from self._reply(session, sql, Result(SLOT_COLUMNS, [row], tag="CREATE_REPLICATION_SLOT"),
                               "walsender:CREATE_REPLICATION_SLOT")

    def _drop_slot(self, session, sql, cmd: g.DropSlot):
        slot = self._slot(cmd.name)
        if cmd.wait:
            # WAIT: the previous user (an apply worker being stopped) may not have hung up yet
            yield from self._wait_inactive(session, slot, timeout=10.0)
        if slot.active_pid is not None and slot.active_pid != session.pid:
            raise PgError("55006", f'replication slot "{cmd.name}" is active for PID {slot.active_pid}')
        del self._slots[cmd.name]
        session.hub.journal.event("slot_dropped", connection=session.id, slot=cmd.name)
        yield from self._reply(session, sql, Result(None, tag="DROP_REPLICATION_SLOT"), "walsender:DROP_REPLICATION_SLOT")

    def _wait_inactive(self, session, slot: Slot, timeout: float):
        """Sleep on loop timers (never blocking the loop) until nobody else streams from `slot`."""
        until = session.now + timeout
        session.mode = _Waiting()
        try:
            while True:
                self._purge_temporary()
                owner = slot.owner
                busy = slot.active_pid is not None and slot.active_pid != session.pid and (owner is None or not owner.closed)
                if not busy or session.now >= until:
                    return
                session.deadline = session.now + 0.05
                item = yield NEED_INPUT  # a timer Event (frames are not expected while the command runs)
                if isinstance(item, tuple) and item[0] == b"X":
                    session.close_reason = "client sent Terminate"
                    return
        finally:
            session.mode = None
            session.deadline = None

    def _read_slot(self, session, sql, cmd: g.ReadSlot):
        self._purge_temporary()
        slot = self._slots.get(cmd.name)
        if slot is None:
            row = (None, None, None)
        elif slot.kind == "logical":
            raise PgError("0A000", "cannot use READ_REPLICATION_SLOT with a logical replication slot")
        else:
            row = ("physical", format_lsn(slot.restart_lsn) if slot.restart_lsn else None,
                   self.timeline if slot.restart_lsn else None)
        yield from self._reply(session, sql, Result(READ_SLOT_COLUMNS, [row], tag="READ_REPLICATION_SLOT"),
                               "walsender:READ_REPLICATION_SLOT")

    def _claim(self, session, slot: Slot) -> None:
        if slot.active_pid is not None and slot.owner is not None and not slot.owner.closed \
                and slot.owner is not session:
            raise PgError("55006", f'replication slot "{slot.name}" is active for PID {slot.active_pid}')
        slot.active_pid = session.pid
        if not slot.temporary:
            slot.owner = session

    def _release(self, session, slot: Slot | None) -> None:
        if slot is not None and slot.active_pid == session.pid:
            slot.active_pid = None
            if not slot.temporary:
                slot.owner = None

    def _start_logical(self, session, sql, cmd: g.StartLogical):
        if session.replication == "true":
            raise PgError("55000", "logical decoding requires a database connection")
        slot = self._slot(cmd.slot)
        if slot.kind != "logical":
            raise PgError("55000", "cannot use physical replication slot for logical decoding")
        major = min(max(session.config.major, 14), 18)
        options = po.parse_pgoutput_options(list(cmd.options), major, slot_name=slot.name)
        self._claim(session, slot)
        start = max(cmd.lsn, slot.confirmed_flush)
        writer = PgoutputWriter(options, Publications(self.publications), major)
        stream = LogicalStream(
            wal=self.log, writer=writer, slot=slot, now=session.now, clock=self.clock,
            timeout=self.wal_sender_timeout, keepalive_interval=self.keepalive_interval,
            on_feedback=lambda d: self._record_feedback(session, slot, d), start_lsn=start)
        self._journal(session, sql, None, "walsender:START_REPLICATION")
        session.hub.journal.event("start_replication", connection=session.id, slot=slot.name, start=format_lsn(start),
                                  proto_version=options.proto_version, options=dict(cmd.options))
        yield from self._run(session, stream, slot)

    def _start_physical(self, session, sql, cmd: g.StartPhysical):
        slot = None
        if cmd.slot is not None:
            slot = self._slot(cmd.slot)
            if slot.kind != "physical":
                raise PgError("55000", "cannot use a logical replication slot for physical replication")
            self._claim(session, slot)
        stream = PhysicalStream(slot=slot, now=session.now, clock=self.clock, timeout=self.wal_sender_timeout,
                                keepalive_interval=0, on_feedback=lambda d: self._record_feedback(session, slot, d),
                                start_lsn=cmd.lsn)
        self._journal(session, sql, None, "walsender:START_REPLICATION")
        yield from self._run(session, stream, slot)

    def _run(self, session, stream, slot: Slot | None):
        """Drive a stream inside the session's conversation until CopyDone, Terminate, EOF or timeout."""
        session.mode = stream
        self._active[session] = stream
        stream.closed = lambda: self._release(session, slot)  # the session calls mode.closed() on EOF
        try:
            session._send(stream.start(session.now))
            while True:
                out = stream.poll(session.now)
                if out:
                    session._send(out)
                    fx = session.faults
                    if fx is not None and fx.armed():  # fault plans "at: replication" (faults/apply.py)
                        yield from fx.replication(session, getattr(stream, "messages_sent", 0))
                # client messages already buffered are handled between batches
                while stream.state == "streaming":
                    frame = session._next_frame()
                    if frame is None:
                        break
                    self._handle(session, stream, frame)
                if stream.state != "streaming":
                    break
                if session._out_size > OUTPUT_LIMIT:
                    yield OUTPUT_FULL
                    continue
                if stream.more:
                    continue
                session.deadline = stream.deadline
                item = yield NEED_INPUT
                if isinstance(item, Event):
                    if item.kind == "wake" and isinstance(item.data, float):
                        session.now = max(session.now, item.data)
                    continue
                self._handle(session, stream, item)
                if stream.state != "streaming":
                    break
        finally:
            session.mode = None
            session.deadline = None
            self._active.pop(session, None)
            self._release(session, slot)
        if stream.state == "done":
            session._send(stream.end())
            session._send(m.command_complete("START_REPLICATION"))
            session._ready_for_query()
            return
        if stream.error is not None:
            session._send(m.error_response(stream.error))
        session.close_reason = stream.close_reason or "walsender stream ended"

    @staticmethod
    def _handle(session, stream, frame) -> None:
        if isinstance(frame, Exception):
            stream._fail(PgError("08P01", str(frame), severity="FATAL"))
            return
        t, body = frame
        out = stream.receive(t, body, session.now)
        if out:
            session._send(out)
