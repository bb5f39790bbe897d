"""Backend mode: every client session runs on its own session in a real PostgreSQL.

The answer chain is rule -> engine: a statement a rule (or handler) answers is answered by
the session exactly as in pure mode (faults, delays, journal, expectations); everything
else is relayed to the client's own upstream session (proxy/link.py) and the client sees
the engine's bytes: its ParameterStatus, BackendKeyData, RowDescriptions, errors and
transaction status. Messages are forwarded as soon as they are read (pipelines stay
pipelined); the session waits for the upstream only before it answers something itself,
so its bytes never cut into the upstream's.

What fakepm does on its own is mirrored in the engine so both sides agree:
* a rule's (or a fault's) error inside a transaction leaves the engine's transaction
  failed too (a Bind to a statement that does not exist: the engine's own error, cut out
  of the stream), so the next statement gets 25P02 as it would from PostgreSQL;
* a scripted failure of COMMIT rolls the engine's transaction back (PostgreSQL ends a
  transaction whose COMMIT failed).

Known limits: a simple Query holding several statements of which a rule or a fault
answers one runs the others one by one (each in its own implicit transaction); fault
points inside an engine's result (after_rows, before_command_complete) apply to rule
answers only -- byte-level faults (dribble, slice, cut) apply to everything.
"""

from __future__ import annotations

import struct

from ..answers.result import Deferred, Result
from ..faults.apply import SessionAbort
from ..protocol import messages as m
from ..protocol.errors import PgError, fatal
from ..protocol.types import REGISTRY
from ..session.hub import JournalEntry
from ..session.waits import CANCELED, NEED_INPUT, UPSTREAM_IDLE, Await, Event
from ..sql import classify, split_statements
from .link import (BIND, CLOSE, EXECUTE, OWED_BIND, OWED_CLOSE, OWED_DESCRIBE, OWED_FUNCTION, OWED_PARSE, OWED_SYNC,
                   PARSE, QUERY, SYNC, SYNC_MSG, EngineLink, Owed)
from .upstream import Upstream, UpstreamError, send_cancel

ENGINE_LABEL = "engine"
_NO_RESULT = Result()  # what fault selection sees for a statement the engine answers
_FAIL_BIND = m.Bind("", "fakepm: abort the transaction").encode()  # no such statement: the engine's own error
_ROLLBACK = m.Query("ROLLBACK").encode()
_COMMIT_KINDS = frozenset({"COMMIT", "END", "COMMIT PREPARED"})
_HDR = struct.Struct("!Bi")
_NO_PORTAL = ("", "", None)
_PINNED_LIMIT = 256  # hook answers kept per session (by SQL text) for Bind/Describe/Execute of their statement
_NO_STMT = ("", ())
_ENGINE_ONLY_LIMIT = 4096  # distinct SQL texts a session remembers as "no rule can answer" (then starts over)
_ENGINE_ONLY_TEXT = 8192  # longer texts are asked again each time rather than kept


class Backend:
    """Backend mode of one FakePostgres: its engine and the database its clients use there.

    `database` is the engine database behind the server's own database name (`dsn_database`,
    what pg.dsn names); a client asking for another database gets that one on the engine
    (Django's test database, say)."""

    def __init__(self, engine, database: str, dsn_database: str, passwords: dict | None = None, hooks=()):
        self.engine = engine
        self.database = database
        self.dsn_database = dsn_database
        self.passwords = dict(passwords or {})  # user -> password, for engines that check them
        self.hooks = list(hooks)  # ProxyHooks (proxy/hooks.py): the relay decodes what they need
        self.errors: list[str] = []  # sessions the engine refused, hooks that failed (Proxy.errors)
        self._hooked: dict[int, object] = {}  # session id -> HookedSession

    @property
    def protocol_minor(self) -> int:
        """The newest protocol 3.x minor the engine speaks (2 from PostgreSQL 18): a client granted
        3.2 gets the engine's own long cancel key."""
        version = str(getattr(self.engine, "version", "") or "")
        major = version.split(".")[0]
        return 2 if major.isdigit() and int(major) >= 18 else 0

    # ------------------------------------------------------------------ the upstream session
    def connect(self, user: str, database: str, parameters: dict, protocol_minor: int = 0) -> Upstream:
        """(worker thread) Open an upstream session as `user` on the engine, with the protocol
        minor the client was granted (its `_pq_.` options were answered by fakepm already)."""
        db = self.database if database == self.dsn_database else database
        startup = {k: v for k, v in parameters.items() if k not in ("user", "database") and not k.startswith("_pq_.")}
        opener = getattr(self.engine, "open_session", None)
        if opener is not None:  # an engine that is not a server (proxy/replay.py: a recording)
            return opener(user, db, startup)
        url = self.engine.upstream_url(user, db, password=self.passwords.get(user))
        return Upstream(url, startup, protocol_minor=protocol_minor).connect()

    def cancel(self, upstream: Upstream) -> None:
        """(worker thread) Forward a client's CancelRequest to the engine, with the engine's key."""
        send_cancel(upstream.url, upstream.pid, upstream.secret)

    def open(self, s):
        """Generator, after the client authenticated: the upstream session, then what the engine
        says at startup (ParameterStatus, BackendKeyData). False when the engine refused."""
        params = dict(s.startup_parameters)
        user, database, minor = s.user, s.database, s.protocol_minor
        token = s.new_token()
        value = yield Await(Deferred(compute=lambda: self.connect(user, database, params, minor),
                                     label="engine session"), token)
        if not isinstance(value, Upstream):
            self.errors.append(f"connection #{s.id}: {value}")
            del self.errors[:-1000]  # bounded: a client retrying against a refusing engine
            if isinstance(value, UpstreamError) and value.error is not None:
                err = value.error  # the engine's own FATAL (no such role, no such database ...)
            elif value is CANCELED:
                err = fatal("57014", "canceling authentication due to user request")
            else:
                err = fatal("08006", f"fakepm: could not open a session on the engine: {value}")
            for h in self.hooks:  # the recorder keeps refusals (replay refuses the same clients)
                refused = getattr(h, "on_refused", None)
                if refused is not None:
                    from .hooks import ConnInfo

                    refused(ConnInfo(s.id, user, database, dict(s.startup_parameters), {}, s.replication), err)
            s.send_fatal(err)
            return False
        link = EngineLink(on_error=lambda err, entry: _note_error(s, err))
        link.on_copy = lambda direction, entry: _on_copy(s, link, direction, entry)
        hooked = None
        if self.hooks:
            from .hooked import HookedSession
            from .hooks import ConnInfo

            info = ConnInfo(s.id, value.startup.get("user", s.user), value.startup.get("database", s.database),
                            dict(s.startup_parameters), dict(value.parameters), s.replication,
                            pid=value.pid, secret=value.secret if isinstance(value.secret, int) else 0)
            hooked = self._hooked[s.id] = HookedSession(self.hooks, info, self.errors)
            link.frame_hook = hooked.frame
        s.attach_upstream(value, link)
        for name, val in value.parameters.items():
            s.reported[name] = val
            s.send(m.parameter_status(name, val))
        yield from s.fault_point("before_backend_key_data")
        s.rekey(value.pid, value.secret)
        s.send(m.BackendKeyData(value.pid, value.secret).encode())
        if hooked is not None:
            hooked.connected()
        return True

    def notify(self, s, channel: str, payload: str) -> None:
        """A rule's `notify:` in backend mode: NOTIFY on the client's own engine session (silently),
        so the engine delivers it to its listeners when that session's transaction commits."""
        s.link.forward(m.Query(f"SELECT pg_catalog.pg_notify({_literal(channel)}, {_literal(payload)})").encode(),
                       Owed(QUERY, silent=True))

    def notify_all(self, channel: str, payload: str) -> None:
        """(any thread) `pg.notify(...)` in backend mode: a NOTIFY on the server's database."""
        up = Upstream(self.engine.upstream_url("postgres", self.database)).connect()
        try:
            up.send(m.Query(f"SELECT pg_catalog.pg_notify({_literal(channel)}, {_literal(payload)})"))
            while not isinstance(up.read_message(), m.ReadyForQuery):
                pass
        finally:
            up.close()

    def closed(self, s) -> None:
        """The session ended (the hooks hear it)."""
        hooked = self._hooked.pop(s.id, None)
        if hooked is not None:
            hooked.disconnected()

    # ------------------------------------------------------------------ the conversation
    def serve(self, s):
        """Generator: the relayed conversation (replaces the session's own after startup)."""
        link = s.link
        conv = _Conversation(s, link, self._hooked.get(s.id))
        s.relay_fast = conv.fast
        handlers = {
            b"Q": conv.query, b"P": conv.parse, b"B": conv.bind, b"D": conv.describe, b"E": conv.execute,
            b"C": conv.close, b"S": conv.sync, b"H": conv.flush, b"F": conv.function_call,
        }
        while True:
            frame = yield NEED_INPUT
            if isinstance(frame, Exception):
                s.send_fatal(fatal("08P01", str(frame)))
                return
            if isinstance(frame, Event):
                if frame.kind == "relay-paused" and link.paused:
                    yield from conv.stream_faults()
                continue
            t, body = frame
            if t == b"X":
                link.forward(b"X\x00\x00\x00\x04")
                s.close_reason = "client sent Terminate"
                return
            if link.copy_in or link.copy_both:
                if t in (b"d", b"c", b"f"):  # COPY data for the engine: relayed as is
                    conv.up(t, body)
                    continue
            if s.skip_until_sync and t != b"S":
                continue  # after a local error in the extended protocol, as PostgreSQL does
            if conv.message_faults():
                yield from conv.idle()
                yield from s.fault_point("message", msg_type=t)
                if s.close_reason is not None:
                    return
            handler = handlers.get(t)
            if handler is None:
                conv.up(t, body)  # the engine judges what fakepm does not know
                continue
            gen = handler(body, t)
            if gen is not None:
                yield from gen
            if s.close_reason is not None:
                return


class EngineEntry(JournalEntry):
    """A journal entry for a statement the engine answered: its parameters are decoded when a
    test first reads them (the relay only keeps the Bind it saw)."""

    _source = None  # (Bind body or (params, formats), param oids) until decoded

    @property
    def params_size(self) -> int:
        """Bytes the journal counts for the parameters, without decoding them (its hot path)."""
        src = self._source
        if src is None:
            return 32 * len(self.__dict__.get("params") or ())
        bound = src[0]
        return len(bound) if isinstance(bound, (bytes, bytearray, memoryview)) else 64 * len(bound[0])

    @property
    def params(self) -> list:
        src = self._source
        if src is not None:
            self._source = None
            bound, oids = src
            if isinstance(bound, (bytes, bytearray, memoryview)):
                try:
                    b = m.Bind.decode(bytes(bound))
                    bound = (b.params, b.param_formats)
                except m.ProtocolViolation:
                    bound = ((), ())
            self.__dict__["params"] = decode_params(bound[0], bound[1], oids)
        return self.__dict__["params"]

    @params.setter
    def params(self, value) -> None:
        self.__dict__["params"] = value


def _literal(text: str) -> str:
    """A standard-conforming string literal (the engine runs with standard_conforming_strings on)."""
    return "'" + text.replace("\x00", "").replace("'", "''") + "'"


def _note_error(s, err: PgError) -> None:
    s.transcript.append(("S", f"ErrorResponse {err.code} {err.message} (engine)"))


def _on_copy(s, link: EngineLink, direction: str, entry):
    if direction == "both":  # a replication stream: fault plans `at: replication` pause it at their counts
        fx = s.faults
        link.pause_at(sorted({p.rows for p in fx.fs.plans if p.at == "replication"}) if fx is not None else [])
    return _copy_record(s, direction, entry)


def _copy_record(s, direction: str, entry):
    """pg.copies for a COPY the engine ran: what the statement says, the count from its tag. The
    rows stay in the engine (query the table); `rows` is None."""
    from ..answers.copyspec import parse_copy
    from ..session.copy import CopyRecord

    sql = entry.sql if entry is not None else ""
    table = schema = None
    columns: list = []
    fmt, options = "text", {}
    try:
        st = parse_copy(sql)
        table, schema, columns = st.table, st.schema, list(st.columns or ())
        fmt, options = st.options.format, st.options.as_dict()
    except Exception:  # noqa: BLE001 - the engine accepted it; the record keeps what is known
        pass
    rec = CopyRecord(direction=direction, table=table, columns=columns, format=fmt, options=options, rows=None,
                     count=0, sql=sql, connection=s.id, schema=schema)
    s.hub.journal.copies.append(rec)
    return rec


def decode_params(raw: tuple, formats: tuple, oids: tuple) -> list:
    """Bound parameters as natural values for the journal: decoded when the type is known,
    text as str, unknown binary values as bytes."""
    out = []
    nf = len(formats)
    for i, v in enumerate(raw):
        if v is None:
            out.append(None)
            continue
        fmt = formats[0] if nf == 1 else (formats[i] if i < nf else 0)
        oid = oids[i] if i < len(oids) else 0
        t = REGISTRY.get_oid(oid) if oid else None
        try:
            if t is not None:
                out.append(t.decode_binary(v) if fmt else t.decode_text(v))
                continue
        except Exception:  # noqa: BLE001 - the journal shows what it can
            pass
        out.append(bytes(v) if fmt else bytes(v).decode("utf-8", "replace"))
    return out


class _Conversation:
    """Per-message decisions of one relayed session: answer here (a rule) or forward."""

    def __init__(self, s, link: EngineLink, hooked=None):
        self.s = s
        self.link = link
        self.rules = s.responder.rules
        self.hk = hooked  # proxy hooks (proxy/hooked.py), or None
        self.promoted: set[str] = set()  # local statement names that also exist on the engine
        # SQL text -> no rule can answer it (the fast path's question), for the rules tuple it was
        # asked of; not kept when a rule has a `state:` (its answer may change with the state)
        self._engine_only: dict[str, bool] = {}
        self._engine_only_rules: tuple | None = None
        self._engine_only_cacheable = True

    def up(self, t: bytes, body: bytes, owed: Owed | None = None) -> None:
        """Forward a client message (as read, or as a hook rewrote it) to the engine."""
        self.link.forward(m.frame(t, body), owed)
        if self.hk is not None:
            self.hk.client(t, body)

    # ------------------------------------------------------------------ the fast path
    def fast(self, data: bytes) -> bytes:
        """Relay a read without waking the conversation when nothing can be answered here (no
        rules, no faults, no local statements): frames are only looked at, the read goes to the
        engine as it came. Returns what it left for the conversation (from the first frame it
        does not handle, or a frame cut at the end of the read)."""
        s, link = self.s, self.link
        hk = self.hk
        if (hk is not None and not hk.taps_only) or s.skip_until_sync or (s.faults is not None and s.faults.fs.plans):
            return data
        rules = self.rules.rules
        local_stmts, local_portals = s.statements, s.portals  # names the session answers itself
        n = len(data)
        pos = 0
        owed = link.owed
        unpack = _HDR.unpack_from
        statements, portals = link.statements, link.portals
        last = 0
        while n - pos >= 5:
            kind, length = unpack(data, pos)
            end = pos + 1 + length
            if end > n or length < 4:
                break
            if kind == 66:  # Bind: portal, statement; parameters decoded only if a test reads them
                a = pos + 5 if data[pos + 5] == 0 else data.index(b"\0", pos + 5, end)
                b = a + 1 if data[a + 1] == 0 else data.index(b"\0", a + 1, end)
                stmt = data[a + 1:b].decode() if b > a + 1 else ""
                portal = data[pos + 5:a].decode() if a > pos + 5 else ""
                if (local_stmts and stmt in local_stmts) or (local_portals and portal in local_portals):
                    break
                portals[portal] = (statements.get(stmt, _NO_STMT)[0], stmt, data[pos + 5:end])
                owed.append(OWED_BIND)
            elif kind == 69:  # Execute
                a = pos + 5 if data[pos + 5] == 0 else data.index(b"\0", pos + 5, end)
                portal = data[pos + 5:a].decode() if a > pos + 5 else ""
                if local_portals and portal in local_portals:
                    break
                sql, stmt, bound = portals.get(portal, _NO_PORTAL)
                owed.append(Owed(EXECUTE, [self._entry(sql, "extended", stmt, bound)]))
            elif kind == 83:  # Sync
                owed.append(OWED_SYNC)
            elif kind == 81 and not link.copy_in:  # Query
                sql = data[pos + 5:end - 1].decode("utf-8", "replace")
                stmts = split_statements(sql)
                if rules and not all(self._engine_only_sql(st, "simple") for st in stmts):
                    break
                s.transcript.append(("C", f"Query {sql[:200]!r}"))
                owed.append(Owed(QUERY, [self._entry(st, "simple") for st in stmts]))
            elif kind == 80:  # Parse
                msg = m.Parse.decode(data[pos + 5:end])
                if (local_stmts and msg.name in local_stmts) or (rules and not self._engine_only_sql(msg.sql,
                                                                                                   "extended")):
                    break
                s.transcript.append(("C", f"Parse {msg.name!r} {msg.sql[:200]!r}"))
                statements[msg.name] = (msg.sql, msg.param_oids)
                owed.append(OWED_PARSE)
            elif kind == 68:  # Describe
                if local_stmts or local_portals:
                    name = data[pos + 6:end - 1].decode()
                    if name in (local_stmts if data[pos + 5] == 83 else local_portals):
                        break
                owed.append(OWED_DESCRIBE)
            elif kind == 72:  # Flush
                pass
            elif kind == 67:  # Close
                name = data[pos + 6:end - 1].decode()
                if name in (local_stmts if data[pos + 5] == 83 else local_portals):
                    break
                (statements if data[pos + 5] == 83 else portals).pop(name, None)
                owed.append(OWED_CLOSE)
            elif (kind == 100 or kind == 99 or kind == 102) and (link.copy_in or link.copy_both):
                pass  # COPY data for the engine
            else:
                break  # Terminate, a function call, something odd: the conversation decides
            last = kind
            pos = end
        if not pos:
            return data
        link.forward(data if pos == n else data[:pos])
        if hk is not None:  # hooks that only read raw frames (the recorder) see what was relayed
            hk.client_frames(data, pos)
        link.unflushed = last not in (81, 83, 72, 100, 99, 102)
        return data[pos:] if pos < n else b""

    def _engine_only_sql(self, sql: str, protocol: str) -> bool:
        """No rule can answer this SQL (the fast path may relay it)."""
        rules = self.rules.rules
        if rules is not self._engine_only_rules:
            self._engine_only.clear()
            self._engine_only_rules = rules
            self._engine_only_cacheable = not any(r.state is not None for r in rules)
        known = self._engine_only.get(sql)
        if known is None:
            known = not self._may_answer(sql, protocol)
            if self._engine_only_cacheable and len(sql) <= _ENGINE_ONLY_TEXT:
                if len(self._engine_only) >= _ENGINE_ONLY_LIMIT:
                    self._engine_only.clear()
                self._engine_only[sql] = known
        return known

    # ------------------------------------------------------------------ helpers
    def idle(self):
        """Wait until the engine owes nothing (then the session may speak itself)."""
        link = self.link
        if link.owed:
            link.flush()
            yield UPSTREAM_IDLE
        self.s.tx = link.status

    def stream_faults(self):
        """Generator: the relayed replication stream reached a fault plan's message count."""
        s, link = self.s, self.link
        fx = s.faults
        if fx is not None:
            yield from fx.replication(s, link.xlog_sent)  # may wait, send an error and end the session
        link.resume(s.send)
        if link.paused:
            s.post_event("relay-paused")

    def message_faults(self) -> bool:
        fx = self.s.faults
        return fx is not None and any(p.at == "message" for p in fx.fs.plans)

    def _may_answer(self, sql: str, protocol: str) -> bool:
        """Could a rule answer this SQL (whatever its parameters)?"""
        if not self.rules.rules:
            return False
        return self.s.responder.could_answer(self.s.make_query(sql, [], (), protocol, None))

    def _entry(self, sql: str, protocol: str, statement: str | None = None, bound=None) -> JournalEntry:
        s = self.s
        e = EngineEntry(sql, [], protocol, s.id, s.pid, s.user, s.database, ENGINE_LABEL, True, None, None,
                        statement, s.now)
        if bound is not None:
            e._source = (bound, self.link.statements.get(statement, ("", ()))[1])
        s.hub.journal.record(e)
        return e

    def _fault_error(self, sql: str):
        """Generator: fault plans for a statement the engine would answer; a PgError when one
        replaces its answer with an error (None otherwise)."""
        s = self.s
        fx = s.faults
        if fx is None or not fx.fs.plans:
            return None
        fx.end_statement()
        fx.begin_statement(s, _NO_RESULT, sql)
        if not fx.stmt:
            return None
        yield from self.idle()
        err = yield from fx.at(s, "before_reply", _NO_RESULT, sql)
        fx.end_statement()
        return err if isinstance(err, PgError) else None

    def _mirror_failure(self, sql: str, extended: bool):
        """Generator: the engine's side of an error fakepm answered itself (see module doc)."""
        link = self.link
        if classify(sql) in _COMMIT_KINDS and link.status != "I":
            link.forward(_ROLLBACK, Owed(QUERY, silent=True))
        elif extended:
            link.forward(_FAIL_BIND, Owed(BIND, silent=True))
            return
        elif link.status == "T":
            link.forward(_FAIL_BIND, Owed(BIND, silent=True))
            link.forward(SYNC_MSG, Owed(SYNC, silent=True))
        else:
            return
        yield from self.idle()

    # ------------------------------------------------------------------ simple query
    def query(self, body: bytes, t: bytes):
        s = self.s
        sql = m.Query.decode(body).sql
        s.transcript.append(("C", f"Query {sql[:200]!r}"))
        if self.hk is not None:
            answer, new = self._hooks(sql)
            if answer is not None:
                return self._hook_answer(sql, answer)
            if new != sql:
                sql, body = new, m.Query(new).encode_body()
        fx = s.faults
        plans = fx is not None and bool(fx.fs.plans)
        if not self.rules.rules and not plans:
            stmts = split_statements(sql)
            entries = [self._entry(st, "simple") for st in stmts]
            self.up(t, body, Owed(QUERY, entries))
            return None
        return self._query_checked(sql, body, t)

    def _query_checked(self, sql: str, body: bytes, t: bytes):
        s, link = self.s, self.link
        stmts = split_statements(sql)
        local = [self._may_answer(st, "simple") for st in stmts]
        if len(stmts) <= 1 and not any(local):
            err = (yield from self._fault_error(stmts[0])) if stmts else None
            if err is None:
                entries = [self._entry(st, "simple") for st in stmts]
                self.up(t, body, Owed(QUERY, entries))
                return
            stmts_err = [(stmts[0], err)]
        else:
            stmts_err = None
        yield from self.idle()
        if stmts_err is not None:  # a fault answered the one statement with an error
            self._local_error(*stmts_err[0])
            yield from self._mirror_failure(stmts_err[0][0], extended=False)
            self._ready()
            return
        for st, is_local in zip(stmts, local):
            if is_local:
                result = yield from s.evaluate(st, [], (), "simple", None, engine=True)
                if result is not None:
                    ok = yield from s.emit_result(result, st, (), None)
                    if s.close_reason is not None:
                        return
                    if not ok:
                        yield from self._mirror_failure(st, extended=False)
                        break
                    continue
            err = yield from self._fault_error(st)
            if err is not None:
                self._local_error(st, err)
                if s.close_reason is not None:
                    return
                yield from self._mirror_failure(st, extended=False)
                break
            entry = self._entry(st, "simple")
            self.up(b"Q", m.Query(st).encode_body(), Owed(QUERY, [entry], hide_ready=True))
            yield from self.idle()
            if entry.error is not None or link.fatal:
                break
        self._ready()

    def _local_error(self, sql: str, err: PgError, label: str = "fault") -> None:
        s = self.s
        q = s.make_query(sql, [], (), "simple", None)
        s.journal_query(q, label, err)
        s.statement_failed(err)

    # ------------------------------------------------------------------ proxy hooks
    def _hooks(self, sql: str):
        """(local answer or None, SQL to send); a failing hook ends the session with a FATAL naming it."""
        from .hooked import HookError

        try:
            return self.hk.on_query(sql)
        except HookError as e:
            self.s.send_fatal(fatal("XX000", f"fakepm proxy: {e}"))
            raise SessionAbort(f"fakepm proxy: {e}") from None

    def _pin(self, sql: str, answer) -> None:
        pinned = self.s.pinned
        if len(pinned) >= _PINNED_LIMIT:  # bounded: a session answering endless distinct SQL locally
            del pinned[next(iter(pinned))]
        pinned[sql] = answer

    def _hook_answer(self, sql: str, answer):
        """Generator: a simple Query a hook answered (the whole query text, as the hook saw it)."""
        s = self.s
        self._pin(sql, answer)
        yield from self.idle()
        result = yield from s.evaluate(sql, [], (), "simple", None, engine=True)
        ok = yield from s.emit_result(result, sql, (), None)
        if s.close_reason is not None:
            return
        if not ok:
            yield from self._mirror_failure(sql, extended=False)
        self._ready()

    def _ready(self) -> None:
        s = self.s
        s.tx = self.link.status
        s.ready_for_query()

    # ------------------------------------------------------------------ extended protocol
    def parse(self, body: bytes, t: bytes):
        s, link = self.s, self.link
        msg = m.Parse.decode(body)
        if self.hk is not None:
            answer, new = self._hooks(msg.sql)
            if answer is not None:
                self._pin(msg.sql, answer)
                return self._local(s.on_parse, msg, drop_upstream_statement=msg.name)
            if new != msg.sql:
                msg = m.Parse(msg.name, new, msg.param_oids)
                body = msg.encode_body()
        if self._may_answer(msg.sql, "extended"):
            return self._local(s.on_parse, msg, drop_upstream_statement=msg.name)
        s.transcript.append(("C", f"Parse {msg.name!r} {msg.sql[:200]!r}"))
        s.statements.pop(msg.name, None)
        self.promoted.discard(msg.name)
        link.statements[msg.name] = (msg.sql, msg.param_oids)
        self.up(t, body, OWED_PARSE)
        return None

    def _local(self, handler, msg, drop_upstream_statement: str | None = None):
        """Generator: a message the session answers itself, after the engine's pending replies."""
        yield from self.idle()
        if self.link.skipping:
            return  # the engine is discarding this group after its error: so would PostgreSQL
        if drop_upstream_statement is not None:
            self.link.statements.pop(drop_upstream_statement, None)
        portal = self.s.portals.get(getattr(msg, "portal", None))
        sql = portal.sql if portal is not None else getattr(msg, "sql", "")
        gen = handler(msg)
        if gen is not None:
            yield from gen
        if self.s.skip_until_sync:  # the session answered with an error: the engine's group fails too
            yield from self._mirror_failure(sql, extended=True)

    def bind(self, body: bytes, t: bytes):
        s, link = self.s, self.link
        msg = m.Bind.decode(body)
        st = s.statements.get(msg.statement)
        if st is not None:
            return self._bind_local(msg, st)
        link.portals[msg.portal] = (link.statements.get(msg.statement, ("", ()))[0], msg.statement,
                                    (msg.params, msg.param_formats))
        s.portals.pop(msg.portal, None)
        self.up(t, body, OWED_BIND)
        return None

    def _bind_local(self, msg, st):
        s, link = self.s, self.link
        yield from self._local(s.on_bind, msg)
        portal = s.portals.get(msg.portal)
        if portal is None or s.skip_until_sync:
            return
        q = s.make_query(portal.sql, portal.params, tuple(portal.param_types), "extended", st.name)
        if portal.sql in s.pinned or self.rules.find(q, consume=False) is not None:
            return
        # no rule for these parameters: the engine answers this portal (its BindComplete was sent)
        del s.portals[msg.portal]
        if st.name not in self.promoted or not st.name:
            link.forward(m.Parse(st.name, st.sql, st.declared).encode(), Owed(PARSE, silent=True))
            if st.name:
                self.promoted.add(st.name)
        link.forward(msg.encode(), Owed(BIND, silent=True))
        link.portals[msg.portal] = (st.sql, st.name, (msg.params, msg.param_formats))

    def describe(self, body: bytes, t: bytes):
        s = self.s
        msg = m.Describe.decode(body)
        local = s.statements if msg.kind == "S" else s.portals
        if msg.name in local:
            return self._local(s.on_describe, msg)
        self.up(t, body, OWED_DESCRIBE)
        return None

    def execute(self, body: bytes, t: bytes):
        s, link = self.s, self.link
        msg = m.Execute.decode(body)
        if msg.portal in s.portals:
            return self._local(s.on_execute, msg)
        sql, stmt, bound = link.portals.get(msg.portal, _NO_PORTAL)
        fx = s.faults
        if fx is not None and fx.fs.plans and not link.skipping:
            return self._execute_checked(msg, body, t, sql, stmt, bound)
        self.up(t, body, Owed(EXECUTE, [self._entry(sql, "extended", stmt, bound)]))
        return None

    def _execute_checked(self, msg, body, t, sql, stmt, bound):
        s = self.s
        err = yield from self._fault_error(sql)
        if err is None:
            self.up(t, body, Owed(EXECUTE, [self._entry(sql, "extended", stmt, bound)]))
            return
        self._local_error(sql, err)
        s.skip_until_sync = True
        yield from self._mirror_failure(sql, extended=True)

    def close(self, body: bytes, t: bytes):
        s, link = self.s, self.link
        msg = m.Close.decode(body)
        local = s.statements if msg.kind == "S" else s.portals
        if msg.name in local:
            if msg.kind == "S" and msg.name in self.promoted:
                self.promoted.discard(msg.name)
                link.forward(msg.encode(), Owed(CLOSE, silent=True))
            return self._local(s.on_close, msg)
        (link.statements if msg.kind == "S" else link.portals).pop(msg.name, None)
        self.up(t, body, OWED_CLOSE)
        return None

    def sync(self, body: bytes, t: bytes):
        s, link = self.s, self.link
        s.skip_until_sync = False
        if link.dirty:
            self.up(t, body, OWED_SYNC)
            return None
        return self._local_sync()

    def _local_sync(self):
        yield from self.idle()
        self._ready()

    def flush(self, body: bytes, t: bytes):
        if self.link.dirty:
            self.up(t, body)
            self.link.unflushed = False
        return None

    def function_call(self, body: bytes, t: bytes):
        self.up(t, body, OWED_FUNCTION)
        return None


__all__ = ["Backend", "ENGINE_LABEL", "decode_params"]
