"""Replication commands on a replication connection, and running the CopyBoth stream in the session.

`ReplicationCommands` is mixed into WalSender: `replication_query(session, sql, stmts)` is the
Session's hook for every Query on a replication=database|true connection (a generator that
returns True when it answered, False to let the normal rules answer SQL).
"""

from __future__ import annotations

from ..answers.result import Column, Result
from ..protocol import messages as m
from ..protocol import pgoutput as po
from ..protocol.errors import PgError
from ..protocol.replication import format_lsn
from ..protocol.types import REGISTRY
from ..session.waits import NEED_INPUT, OUTPUT_FULL, OUTPUT_LIMIT, Event
from . import grammar as g
from .encoder import PgoutputWriter, Publications
from .stream import LogicalStream, PhysicalStream
from .wal import Slot

_T = REGISTRY.by_name
TEXT, INT4, INT8 = _T("text"), _T("int4"), _T("int8")


def _text_cols(*names, types=None, typmod=-1) -> tuple:
    types = types or {}
    return tuple(Column(n, types.get(n, TEXT), typmod) for n in names)


IDENTIFY_COLUMNS = _text_cols("systemid", "timeline", "xlogpos", "dbname", types={"timeline": INT4})
SLOT_COLUMNS = _text_cols("slot_name", "consistent_point", "snapshot_name", "output_plugin")
READ_SLOT_COLUMNS = _text_cols("slot_type", "restart_lsn", "restart_tli", types={"restart_tli": INT8})
HISTORY_COLUMNS = _text_cols("filename", "content", typmod=0)
# PostgreSQL 16 changed both (ec40f34, "Change timeline field of IDENTIFY_SYSTEM to int8", and the same
# series' tuple descriptors for TIMELINE_HISTORY): checked on 15.18 and 18.6, read in REL_17's walsender.c
IDENTIFY_COLUMNS_16 = _text_cols("systemid", "timeline", "xlogpos", "dbname", types={"timeline": INT8})
HISTORY_COLUMNS_16 = _text_cols("filename", "content")

# output_plugin_libraries (CVE-2026-6471): the minor releases that added it refuse any plugin it does not
# name with 42501 before looking for the library (seen on 18.6: message and hint, no detail; 15.18 still
# answers 58P01)
_PLUGIN_ALLOWLIST_SINCE = {14: 24, 15: 19, 16: 15, 17: 11, 18: 6}


def _minor(version: str) -> int:
    import re

    mm = re.match(r"\d+\.(\d+)", version)
    return int(mm.group(1)) if mm else 0


def _plugin_error(config, plugin: str) -> PgError:
    """A plugin other than pgoutput. One the default allowlist names ('pgoutput, test_decoding') is
    answered as a server without that library answers."""
    major = config.major
    since = _PLUGIN_ALLOWLIST_SINCE.get(major)
    allowlisted = plugin == "test_decoding"
    if not allowlisted and (major > max(_PLUGIN_ALLOWLIST_SINCE)
                            or (since is not None and _minor(config.version) >= since)):
        return PgError("42501", f'library "{plugin}" may not be used as an output plugin',
                       hint='If it is safe for all REPLICATION users to use this library as an output plugin, '
                            'add it to "output_plugin_libraries" and reload the server configuration.')
    return PgError("58P01", f'could not access file "{plugin}": No such file or directory',
                   hint="fakepm implements the pgoutput plugin only")


class _Waiting:
    """Session mode while a command sleeps on timers (so timer events reach it)."""

    def closed(self) -> None:
        pass


class ReplicationCommands:
    """Mixin of WalSender: the replication command language and the stream runner."""

    def replication_query(self, session, sql: str, stmts: list):
        """Session hook (a generator): True = handled here, False = let the normal rules answer."""
        major = session.config.major
        try:
            cmd = g.parse_command(sql, major)
        except PgError as e:
            yield from self._fail(session, sql, e)
            return True
        except ValueError as e:
            yield from self._fail(session, sql, PgError("42601", "syntax error", detail=f"fakepm: {e}"))
            return True
        if cmd is None:
            word = sql.split(None, 1)[0].rstrip(";").upper() if sql.strip() else ""
            if word in ("ALTER_REPLICATION_SLOT", "UPLOAD_MANIFEST") and session.replication != "true":
                # a keyword of PostgreSQL 17+: an older server parses it as SQL, and SQL has no such word
                yield from self._fail(session, sql, PgError(
                    "42601", f'syntax error at or near "{sql.split(None, 1)[0].rstrip(";")}"',
                    position=sql.index(sql.split(None, 1)[0]) + 1))
                return True
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
            g.AlterSlot: self._alter_slot,
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
        session.journal_query(session.make_query(sql, [], (), "replication", None), label, error)

    def _fail(self, session, sql: str, err: PgError):
        self._journal(session, sql, err)
        session.statement_failed(err)
        session.ready_for_query()
        return
        yield  # a generator

    def _reply(self, session, sql: str, result: Result, label: str):
        self._journal(session, sql, None, label)
        yield from session.emit_result(result, sql, (), None)
        session.ready_for_query()

    def _identify_system(self, session, sql, cmd):
        db = None if session.replication == "true" else (self.dbname or session.database)
        row = (self.systemid, self.timeline, format_lsn(self.log.insert_lsn), db)
        columns = IDENTIFY_COLUMNS_16 if session.config.major >= 16 else IDENTIFY_COLUMNS
        yield from self._reply(session, sql, Result(columns, [row], tag="IDENTIFY_SYSTEM"),
                               "walsender:IDENTIFY_SYSTEM")

    def _timeline_history(self, session, sql, cmd):
        from ..session.encode import row_description

        self._journal(session, sql, None, "walsender:TIMELINE_HISTORY")
        columns = HISTORY_COLUMNS_16 if session.config.major >= 16 else HISTORY_COLUMNS
        session.send(row_description(Result(columns), (0, 0)))
        name = f"{cmd.timeline:08X}.history"
        session.statement_failed(PgError("58P01", f'could not open file "pg_wal/{name}": No such file or directory'))
        session.ready_for_query()
        return
        yield

    def _create_slot(self, session, sql, cmd: g.CreateSlot):
        self._purge_temporary()
        if cmd.kind == "logical" and session.replication == "true":
            raise PgError("55000", "logical decoding requires a database connection")
        if cmd.failover and cmd.temporary:
            raise PgError("0A000", "cannot enable failover for a temporary replication slot")
        if cmd.name in self._slots:
            raise PgError("42710", f'replication slot "{cmd.name}" already exists')
        if cmd.kind == "logical":
            if cmd.plugin != "pgoutput":
                raise _plugin_error(session.config, cmd.plugin)
            if cmd.snapshot == "use" and session.tx == "I":
                raise PgError("XX000", "CREATE_REPLICATION_SLOT ... (SNAPSHOT 'use') must be called inside a transaction")
            if cmd.snapshot == "export" and session.tx != "I":
                raise PgError("XX000", "CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export') must not be called inside "
                                       "a transaction")
        start = self.log.start_lsn if self.slot_start == "beginning" else self.log.insert_lsn
        slot = Slot(cmd.name, cmd.kind, cmd.plugin, cmd.two_phase, cmd.temporary, cmd.failover, confirmed_flush=start,
                    restart_lsn=start if cmd.kind == "logical" or cmd.reserve_wal else 0, consistent_point=start,
                    owner=session if cmd.temporary else None)
        with self._slots_lock:
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
        with self._slots_lock:
            self._slots.pop(cmd.name, None)
        session.hub.journal.event("slot_dropped", connection=session.id, slot=cmd.name)
        yield from self._reply(session, sql, Result(None, tag="DROP_REPLICATION_SLOT"), "walsender:DROP_REPLICATION_SLOT")

    def _alter_slot(self, session, sql, cmd: g.AlterSlot):
        """ALTER_REPLICATION_SLOT (17: failover; 18: failover and two_phase), walsender.c's
        ParseAlterReplSlotOptions then slot.c's ReplicationSlotAlter, with their errors."""
        known = ("failover", "two_phase") if session.config.major >= 18 else ("failover",)
        values: dict = {}
        for opt, value in cmd.options:
            if opt not in known:
                raise PgError("XX000", f"unrecognized option: {opt}")
            if opt in values:
                raise PgError("42601", "conflicting or redundant options")
            values[opt] = g._bool_option(opt, value, sql)
        self._purge_temporary()
        slot = self._slot(cmd.name)
        if slot.kind == "physical":
            raise PgError("0A000", "cannot use ALTER_REPLICATION_SLOT with a physical replication slot")
        if slot.active_pid is not None and slot.active_pid != session.pid and \
                (slot.owner is None or not slot.owner.closed):
            raise PgError("55006", f'replication slot "{slot.name}" is active for PID {slot.active_pid}')
        if values.get("failover") and slot.temporary:
            raise PgError("0A000", "cannot enable failover for a temporary replication slot")
        if "failover" in values:
            slot.failover = values["failover"]
        if "two_phase" in values:
            slot.two_phase = values["two_phase"]
        session.hub.journal.event("slot_altered", connection=session.id, slot=slot.name,
                                  **{k: v for k, v in values.items()})
        yield from self._reply(session, sql, Result(None, tag="ALTER_REPLICATION_SLOT"),
                               "walsender:ALTER_REPLICATION_SLOT")

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
            raise PgError("55000", "cannot use physical replication slot for logical decoding")  # 15 and 18
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
            session.send(stream.start(session.now))
            while True:
                out = stream.poll(session.now)
                if out:
                    session.send(out)
                    fx = session.faults
                    if fx is not None and fx.armed():  # fault plans "at: replication" (faults/apply.py)
                        yield from fx.replication(session, getattr(stream, "messages_sent", 0))
                # client messages already buffered are handled between batches
                while stream.state == "streaming":
                    frame = session.next_frame()
                    if frame is None:
                        break
                    self._handle(session, stream, frame)
                if stream.state != "streaming":
                    break
                if session.output_size > OUTPUT_LIMIT:
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
            session.send(stream.end())
            session.send(m.command_complete("START_REPLICATION"))
            session.ready_for_query()
            return
        if stream.error is not None:
            session.send(m.error_response(stream.error))
            if not stream.error.is_fatal:  # a malformed standby message: back to commands, as PostgreSQL
                session.ready_for_query()
                return
        session.close_reason = stream.close_reason or "walsender stream ended"

    @staticmethod
    def _handle(session, stream, frame) -> None:
        if isinstance(frame, Exception):  # a message length PostgreSQL refuses: it hangs up without a word
            stream._hang_up(b"")
            stream.close_reason = str(frame)
            return
        t, body = frame
        out = stream.receive(t, body, session.now)
        if out:
            session.send(out)
