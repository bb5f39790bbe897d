"""One connection's protocol state machine, sans-I/O.

Feed it bytes (`receive`), take bytes to send (`data_to_send`). The conversation is written
as a generator (`_program`) that yields what it waits for:

* `NEED_INPUT`  - the next frontend frame (or, in CopyBoth, an event);
* an `Await`    - work the I/O layer must do off this thread or after a delay (a Python
                  handler, a `delay:`); the server calls `resume(token, value)` when done;
* `OUTPUT_FULL` - the output buffer is large; continue when `resume_output()` is called;
* `START_TLS`   - the 'S' answer to SSLRequest is queued; wrap the socket, then `resume_tls()`.

Time is never read here: the server passes `now` in (`receive`, `on_timer`).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from ..answers.responder import ENGINE
from ..answers.result import ConnectionInfo, Deferred, Query, Result
from ..protocol import messages as m
from ..protocol.auth import AuthFailed, Authenticator
from ..protocol.errors import PgError, fatal
from ..protocol.framing import FrameReader, malformed_message_error
from ..protocol.textstyle import styled_input
from ..protocol.types import REGISTRY
from ..sql import classify, count_params, default_tag, insert_values_rows, split_statements
from . import answer_cache, commands
from ..faults.apply import REPLACED, SessionAbort
from .config import ServerConfig
from .encode import resolve_formats, row_description, row_encoders, static_rows, static_rows_joined
from .rowbatch import RowBatchEncoder, take_rows as _take_rows
from .portals import Portal, PreparedStatement
from .waits import CANCELED, NEED_INPUT, OUTPUT_FULL, OUTPUT_LIMIT, START_TLS, SUSPENDED, UPSTREAM_IDLE, Await, Event

_EXTENDED_MESSAGES = frozenset((b"P", b"B", b"D", b"E", b"C", b"H"))  # an error in one skips to Sync
_ROW_BATCH = 512  # rows encoded together by a streamed result (bounded by the output room too)

_TEXT = REGISTRY.by_name("text")


_TX_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "ROLLBACK TO",
                         "PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED"})


class Session:
    text_style = None  # protocol/textstyle.py: the session's text settings when not the defaults
    # fault injection (faults/): the server sets `faults`; a plan may shape the output bytes
    # (`wire_shaper`, served by the loop) or ask the loop to end with RST (`abort_with_rst`)
    faults = None
    wire_shaper = None
    abort_with_rst = False

    def __init__(
        self,
        hub,
        config: ServerConfig,
        responder,
        *,
        peer: Any = None,
        tls_available: bool = False,
        tls_endpoint_hash: Callable[[], bytes] | None = None,
        now: float = 0.0,
        auth_options: dict | None = None,
        replication_factory: Callable | None = None,
        backend=None,
    ):
        self.hub = hub
        self.config = config
        self.responder = responder
        self.peer = peer
        self.tls_available = tls_available
        self.tls_endpoint_hash = tls_endpoint_hash
        self.auth_options = auth_options or {}
        self.replication_factory = replication_factory
        self.backend = backend  # backend mode (proxy/backend.py): the engine answers what no rule answers
        self.link = None  # backend mode: the EngineLink of this client's upstream session
        self.upstream = None  # backend mode: the upstream session (its socket is the loop's)
        self.engine_cancel = False  # backend mode: a CancelRequest the loop must forward to the engine
        self.relay_fast: Callable[[bytes], bytes] | None = None  # backend mode: relays a read, returns the rest
        self.pinned: dict = {}  # SQL -> Result or PgError a proxy hook answered for this session
        self.now = now
        self.id, self.pid, self.secret = hub.new_identity()
        self.protocol_minor = 0  # the protocol 3.x minor granted at startup (2: PostgreSQL 18's 3.2)
        self.reader = FrameReader(max_message=config.max_message_size)
        self.tls = False
        self.user = ""
        self.database = ""
        self.startup_parameters: dict = {}
        self.replication: str | None = None
        self.info: ConnectionInfo | None = None
        self.settings: dict[str, str] = {}  # lower-case name -> value
        self.reported: dict[str, str] = {}  # canonical name -> value (ParameterStatus)
        self.tx = "I"  # I idle, T in transaction, E failed transaction
        self.savepoints: list[str] = []
        self.statements: dict[str, PreparedStatement] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_until_sync = False
        self.pending_notifies: list[tuple[str, str]] = []  # NOTIFY inside a transaction
        self.inbox_notifications: deque = deque()  # notifications waiting for an idle moment
        self.listening: set[str] = set()
        self.ready = False  # authenticated
        self.idle = False  # waiting for a new command outside a transaction
        self.closed = False
        self.close_reason: str | None = None
        self.deadline: float | None = None  # next on_timer() the session wants
        self.mode = None  # a CopyBoth/walsender mode object while one is active
        self.output: list[bytes] = []
        self.output_size = 0
        self._events: deque = deque()
        self._token = 0
        self._waiting: Any = NEED_INPUT
        self.cancel_requested = False
        self.on_output: Callable[[], None] | None = None  # server hook: output appeared outside receive()
        self.post_threadsafe: Callable[[Any], None] | None = None  # server hook: wake(data) from any thread
        self.transcript: deque = deque(maxlen=400)  # (direction, summary) for test reports
        self.answer_cache: dict | None = None  # simple-query text -> answer bytes (answer_cache.py)
        self.group_cache: dict | None = None  # extended-protocol group bytes -> answer (answer_cache.py)
        self._group: bytes | None = None  # the read being served, when it may be a cacheable group
        self._group_mark = 0
        self._prog = self._program()
        self._started = False
        hub.register(self)

    # ------------------------------------------------------------------ I/O-side API
    def receive(self, data: bytes, now: float | None = None) -> None:
        if now is not None:
            self.now = now
        if self.closed:
            return
        if data:
            if self.relay_fast is not None and self._waiting is NEED_INPUT and not self.reader.buffered:
                data = self.relay_fast(data)  # backend mode: straight to the engine when nothing else can answer
                if not data:
                    return
            elif self.idle and self._waiting is NEED_INPUT and not self.reader.buffered and self.mode is None:
                # the pgbench / pool hot path: a repeated static answer, without the generator
                if data[:1] == b"Q":
                    if self.answer_cache and answer_cache.serve_query_read(self, data):
                        return
                elif answer_cache.group_candidate(data):
                    if self.group_cache and answer_cache.serve_group(self, data):
                        return
                    self._group, self._group_mark = data, len(self.output)  # remembered at its Sync if static
            self.reader.feed(data)
        self._drive()
        self._group = None

    def receive_eof(self) -> None:
        self._finish("client closed the connection")

    # -- backend mode: the upstream side (proxy/backend.py) ---------------------------
    def attach_upstream(self, upstream, link) -> None:
        """Backend mode: this client's session on the engine is open (the loop adopts its socket)."""
        self.upstream = upstream
        self.link = link
        left = upstream.reader.take_raw()  # what the engine sent after its first ReadyForQuery
        if left:
            link.feed(left, self.send)

    def receive_upstream(self, data: bytes, now: float | None = None) -> None:
        """Bytes from the engine: relayed to the client, or what the conversation waits for."""
        if now is not None:
            self.now = now
        if self.closed:
            return
        link = self.link
        link.feed(data, self.send)
        if link.paused:  # a replication fault's count was reached: the conversation applies it
            self.post_event("relay-paused")
        elif self._waiting is UPSTREAM_IDLE and not link.owed:
            self._waiting = None
            self._drive()

    def post_event(self, kind: str, data: Any = None) -> None:
        """Queue an Event for the conversation; run it now if it waits for input."""
        self._events.append(Event(kind, data))
        if self._waiting is NEED_INPUT:
            self._drive()

    def upstream_eof(self) -> None:
        """The engine ended this client's session (FATAL, terminated backend, engine stopped)."""
        if not self.closed:
            if not self.link.fatal:
                self.send(m.error_response(fatal("57P01", "terminating connection: the engine closed its session")))
            self.close_reason = "the engine closed its session"
            self._finish(self.close_reason)

    def upstream_data_to_send(self) -> bytes:
        return self.link.take_output() if self.link is not None else b""

    def rekey(self, pid: int, secret: int) -> None:
        """Take another backend identity (backend mode: the engine's pid and cancel key)."""
        self.hub.unregister_key(self)
        self.pid, self.secret = pid, secret
        self.hub.register(self)

    def data_to_send(self) -> bytes:
        if not self.output:
            return b""
        data = self.output[0] if len(self.output) == 1 else b"".join(self.output)
        self.output = []
        self.output_size = 0
        return data

    @property
    def has_output(self) -> bool:
        return bool(self.output)

    @property
    def waiting(self):
        return self._waiting

    @property
    def relaying(self) -> bool:
        """Backend mode, nothing but relaying to do: waiting for input, no timer, no cancel to forward."""
        return self._waiting is NEED_INPUT and self.upstream is not None and not self.closed \
            and self.deadline is None and not self.engine_cancel

    def resume(self, token: int, value: Any) -> None:
        """The result of an Await (a Result, a PgError, or an exception)."""
        if self.closed or not isinstance(self._waiting, Await) or self._waiting.token != token:
            return  # canceled or superseded: drop it
        self._waiting = None
        self._drive(value)

    def resume_output(self) -> None:
        if self._waiting is OUTPUT_FULL and not self.closed:
            self._waiting = None
            self._drive()

    def resume_tls(self) -> None:
        if self._waiting is START_TLS and not self.closed:
            self.tls = True
            self._waiting = None
            self._drive()

    def cancel(self) -> None:
        """A CancelRequest for this backend arrived (on another connection)."""
        self.cancel_requested = True
        if self.link is not None and self.link.owed:
            self.engine_cancel = True  # the engine is running a statement: the loop forwards the cancel
            if self.on_output is not None:
                self.on_output()
        if isinstance(self._waiting, Await):
            self._waiting = None
            self._drive(CANCELED)
            self._notify_output()
        elif self._waiting is OUTPUT_FULL:
            self.resume_output()
            self._notify_output()

    def on_timer(self, now: float) -> None:
        self.now = now
        if self.closed:
            return
        self.deadline = None
        self._events.append(Event("timer", now))
        if self._waiting is NEED_INPUT:
            self._drive()
            self._notify_output()

    def wake(self, data: Any = None) -> None:
        """Something outside the connection has news for it (walsender changes, copy-both data)."""
        if self.closed:
            return
        self._events.append(Event("wake", data))
        if self._waiting is NEED_INPUT:
            self._drive()
            self._notify_output()

    def deliver_notification(self, pid: int, channel: str, payload: str) -> None:
        msg = m.NotificationResponse(pid, channel, payload).encode()
        if self.idle and self._waiting is NEED_INPUT:
            self.send(msg)
            self._notify_output()
        else:
            self.inbox_notifications.append(msg)

    def close(self, reason: str = "server closed the connection") -> None:
        self._finish(reason)

    def authentication_timed_out(self) -> None:
        """The server's authentication_timeout passed before this client authenticated (the
        loop's timer). PostgreSQL ends the connection (its FATAL goes only to its log); a
        client that sent its startup packet gets the FATAL here, so a test sees why."""
        if self.closed or self.ready:
            return
        if not self.reader.untagged:  # startup packet read: an ErrorResponse is understood now
            self.send(m.error_response(fatal("57014", "canceling authentication due to timeout")))
        self.hub.journal.event("auth_timeout", connection=self.id, user=self.user or None)
        self._finish("canceling authentication due to timeout")

    # ------------------------------------------------------------------ internals
    def _notify_output(self) -> None:
        if self.output and self.on_output is not None:
            self.on_output()

    def _finish(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        try:
            self._prog.close()
        except Exception:  # noqa: BLE001 - a generator's cleanup must not break shutdown
            pass
        if self.mode is not None:
            try:
                self.mode.closed()
            except Exception:  # noqa: BLE001
                pass
            self.mode = None
        if self.backend is not None:
            try:
                self.backend.closed(self)
            except Exception:  # noqa: BLE001 - a hook's failure must not break shutdown
                pass
        self.hub.unregister(self)
        self.hub.journal.event("disconnect", connection=self.id, pid=self.pid, reason=reason)

    def send(self, data: bytes) -> None:
        self.output.append(data)
        self.output_size += len(data)

    def next_frame(self):
        try:
            return self.reader.next_frame()
        except m.ProtocolViolation as e:
            return e

    def _drive(self, value: Any = None) -> None:
        if not self._started:
            self._started = True
            self._waiting = next(self._prog)  # run to the first yield (waiting for the startup packet)
        gen = self._prog
        while not self.closed:
            if value is None:
                w = self._waiting
                if w is NEED_INPUT:
                    if self._events and (self.mode is not None or self.link is not None):
                        value = self._events.popleft()
                    else:
                        if self._events:
                            self._events.clear()  # timers/wakes only matter inside a mode
                        value = self.next_frame()
                        if value is None:
                            return
                elif w is OUTPUT_FULL:
                    if self.output_size > OUTPUT_LIMIT:
                        return
                elif w is not None:
                    return  # Await or START_TLS: the server resumes us
            try:
                req = gen.send(value)
            except StopIteration:
                self._finish(self.close_reason or "session ended")
                return
            except SessionAbort as e:  # a fault plan ends the connection
                self._finish(e.reason)
                return
            except Exception as e:  # noqa: BLE001 - never a traceback on the wire
                import traceback

                self.hub.journal.event("internal_error", connection=self.id, error=traceback.format_exc())
                self.send(m.error_response(fatal("XX000", f"fakepm internal error: {type(e).__name__}: {e}")))
                self._finish("internal error")
                return
            value = None
            self._waiting = req

    def fault_point(self, point: str, msg_type: bytes | None = None):
        """Fault plans at a connection-level point (faults/apply.py); nothing when none is armed."""
        fx = self.faults
        if fx is None or not fx.fs.plans:
            return ()
        return fx.at(self, point, msg_type=msg_type)

    def new_token(self) -> int:
        self._token += 1
        return self._token

    def _flush_notifications(self) -> None:
        while self.inbox_notifications:
            self.send(self.inbox_notifications.popleft())

    def ready_for_query(self) -> None:
        if self.tx == "I":
            self._flush_notifications()
        fx = self.faults
        if fx is not None and fx.stmt and fx.at_plain(self, "before_ready_for_query") is REPLACED:
            return
        self.send(m.READY[self.tx])

    def send_error(self, err: PgError) -> None:
        self.send(m.error_response(err))
        self.transcript.append(("S", f"ErrorResponse {err.code} {err.message}"))

    def send_fatal(self, err: PgError) -> None:
        self.send_error(err)
        self.close_reason = f"FATAL {err.code} {err.message}"

    # ------------------------------------------------------------------ the conversation
    def _program(self):
        ok = yield from self._startup()
        if not ok:
            return
        if self.backend is not None:
            yield from self.backend.serve(self)
        else:
            yield from self._serve()

    def _latest_minor(self) -> int:
        """The newest 3.x minor this server speaks: 2 when it announces PostgreSQL 18+, else 0.

        Backend mode: the engine's session is opened by the relay with the protocol it says it
        speaks (`backend.protocol_minor`, 0 unless the relay asks the engine for 3.2), so that the
        client gets the engine's BackendKeyData as it is."""
        if self.backend is not None:
            return min(int(getattr(self.backend, "protocol_minor", 0) or 0), 2)
        return 2 if self.config.major >= 18 else 0

    def _startup(self):
        while True:
            frame = yield NEED_INPUT
            if isinstance(frame, Exception):
                self.send_fatal(fatal("08P01", str(frame)))
                return False
            _, body = frame
            try:
                msg = m.decode_startup_packet(body)
            except m.ProtocolViolation as e:
                self.send_fatal(fatal("08P01", str(e)))
                return False
            if isinstance(msg, m.SSLRequest):
                self.transcript.append(("C", "SSLRequest"))
                yield from self.fault_point("before_ssl_answer")
                if self.tls_available and not self.tls:
                    if self.reader.buffered:
                        # bytes after SSLRequest before the handshake: PostgreSQL refuses this
                        self.send_fatal(fatal("08P01", "received unencrypted data after SSL request"))
                        return False
                    self.send(b"S")
                    yield START_TLS
                else:
                    self.send(b"N")
                yield from self.fault_point("after_ssl_answer")
                continue
            if isinstance(msg, m.GSSENCRequest):
                self.transcript.append(("C", "GSSENCRequest"))
                self.send(b"N")
                continue
            if isinstance(msg, m.CancelRequest):
                self.hub.cancel(msg.pid, msg.secret)
                self.close_reason = "cancel request"
                return False
            break
        self.transcript.append(("C", f"StartupMessage {msg.major}.{msg.minor} {msg.parameters}"))
        latest = self._latest_minor()
        if msg.major != 3:
            text = f"unsupported frontend protocol {msg.major}.{msg.minor}: server supports 3.0 to 3.{latest}"
            if msg.major < 3:
                # PostgreSQL answers in the client's (pre-3.0) error format: 'E', "FATAL:  text\n", NUL
                self.send(b"E" + m.cstr(f"FATAL:  {text}\n"))
                self.close_reason = f"FATAL 0A000 {text}"
            else:
                self.send_fatal(fatal("0A000", text))
            return False
        params = dict(msg.parameters)
        # protocol 3.2 (PostgreSQL 18): the client gets min(asked, latest); a newer minor than ours or
        # `_pq_.` options (none is known) get a NegotiateProtocolVersion naming the granted version and
        # the options in the order sent (PostgreSQL 15: always 3.0; 18: 3.0, 3.1 or 3.2 -- 3.1 is
        # granted silently, as PostgreSQL 18 does)
        self.protocol_minor = min(msg.minor, latest)
        unrecognized = tuple(k for k in params if k.startswith("_pq_."))
        if msg.minor > latest or unrecognized:
            self.send(m.NegotiateProtocolVersion((3 << 16) | self.protocol_minor, unrecognized).encode())
        if self.protocol_minor >= 2 and self.backend is None:
            # PostgreSQL 18 gives a 3.2 client a 32-byte cancel key (3.0 and 3.1: 4 bytes)
            self.hub.unregister_key(self)
            self.secret = self.hub.long_key()
            self.hub.register(self)
        self.user = params.get("user", "")
        if not self.user:
            self.send_fatal(fatal("28000", "no PostgreSQL user name specified in startup packet"))
            return False
        self.database = params.get("database") or self.user
        self.startup_parameters = params
        repl = params.get("replication")
        if repl is not None:
            r = repl.lower()
            if r == "database":
                self.replication = "database"
            elif r in ("true", "on", "yes", "1"):
                self.replication = "true"
            elif r not in ("false", "off", "no", "0"):
                self.send_fatal(fatal("22023", f'invalid value for parameter "replication": "{repl}"'))
                return False
        cfg = self.config
        # like a `hostssl` pg_hba line: TCP clients need TLS; the Unix socket cannot do TLS and is let in
        if cfg.require_tls and not self.tls and self.peer != "[local]":
            self.send_fatal(
                fatal(
                    "28000",
                    f'no pg_hba.conf entry for host "{_peer_host(self.peer)}", user "{self.user}", '
                    f'database "{self.database}", no encryption',
                )
            )
            return False
        yield from self.fault_point("startup")
        # authentication: password messages are tagged ('p'), so leave the startup framing now
        self.reader.expect_tagged()
        auth = Authenticator(
            cfg.users,
            self.user,
            tls_endpoint_hash=self.tls_endpoint_hash() if (self.tls and self.tls_endpoint_hash) else None,
            default=cfg.default_auth or _trust(),
            **self.auth_options,
        )
        try:
            for req in auth.start():
                if req.code == 0:
                    yield from self.fault_point("before_auth_ok")
                self.send(m.Authentication(req.code, req.data).encode())
            if not auth.done:
                yield from self.fault_point("auth")
            while not auth.done:
                frame = yield NEED_INPUT
                if isinstance(frame, Exception):
                    self.send_fatal(fatal("08P01", str(frame)))
                    return False
                if frame[0] is None:
                    self.send_fatal(fatal("08P01", "unexpected startup packet during authentication"))
                    return False
                t, body = frame
                if t != b"p":
                    self.send_fatal(fatal("08P01", f"expected password response, got message type {t[0]}"))
                    return False
                for req in auth.receive(body):
                    if req.code == 0:
                        yield from self.fault_point("before_auth_ok")
                    self.send(m.Authentication(req.code, req.data).encode())
        except AuthFailed as e:
            self.send_fatal(e.error)
            self.hub.journal.event("auth_failed", connection=self.id, user=self.user, error=e.error.message)
            return False
        if cfg.database is not None and self.database != cfg.database and self.replication != "true" \
                and self.backend is None:  # backend mode: other databases are the engine's
            self.send_fatal(fatal("3D000", f'database "{self.database}" does not exist'))
            return False
        if len(self.hub.sessions) > cfg.max_connections:
            self.send_fatal(fatal("53300", "sorry, too many clients already"))
            return False
        if self.backend is not None:  # the engine's session: its parameters, its backend key
            ok = yield from self.backend.open(self)
            if not ok:
                return False
        else:
            # session defaults, then what the startup packet asked for
            commands.init_settings(self)
            for name, value in cfg.reported_parameters(self.user, params):
                self.reported[name] = value
                self.send(m.parameter_status(name, value))
            yield from self.fault_point("before_backend_key_data")
            self.send(m.BackendKeyData(self.pid, self.secret).encode())
        self.info = ConnectionInfo(
            id=self.id,
            pid=self.pid,
            user=self.user,
            database=self.database,
            application_name=self.reported.get("application_name", ""),
            parameters=params,
            peer=self.peer,
            tls=self.tls,
            replication=self.replication,
        )
        self.ready = True
        self.hub.journal.event("connect", connection=self.id, pid=self.pid, user=self.user, database=self.database)
        self.reader.expect_tagged()
        if self.link is not None:
            self.tx = self.link.status
        self.ready_for_query()
        return True

    # ------------------------------------------------------------------ main loop
    def _serve(self):
        handlers = {
            b"Q": self.on_query,
            b"P": self.on_parse,
            b"B": self.on_bind,
            b"D": self.on_describe,
            b"E": self.on_execute,
            b"C": self.on_close,
            b"S": self.on_sync,
            b"H": self.on_flush,
            b"F": self.on_function_call,
        }
        decoders = m.FRONTEND_MESSAGES
        while True:
            self.idle = self.tx == "I" and not self.skip_until_sync
            if self.idle and self.inbox_notifications:
                self._flush_notifications()
            frame = yield NEED_INPUT
            self.idle = False
            if isinstance(frame, Exception):
                self.send_fatal(fatal("08P01", str(frame)))
                return
            if isinstance(frame, Event):
                continue
            t, body = frame
            if t == b"X":
                self.close_reason = "client sent Terminate"
                return
            if self.skip_until_sync and t != b"S":
                continue
            yield from self.fault_point("message", msg_type=t)
            handler = handlers.get(t)
            if handler is None:
                if t in (b"d", b"c", b"f"):
                    continue  # CopyData/CopyDone/CopyFail outside COPY are ignored, as PostgreSQL does
                self.send_fatal(fatal("08P01", f"invalid frontend message type {t[0]}"))
                return
            try:
                msg = decoders[t].decode(body)
            except m.ProtocolViolation as e:  # PostgreSQL: an ERROR, and the connection goes on
                err = PgError(*malformed_message_error(e, body))
                if t in _EXTENDED_MESSAGES:
                    self._ext_error(err)  # ... ignoring messages until Sync
                else:  # Query, FunctionCall, Sync
                    self.skip_until_sync = False
                    self.statement_failed(err)
                    self.ready_for_query()
                continue
            gen = handler(msg)
            if gen is not None:
                yield from gen
            if self.close_reason is not None:
                return

    # ------------------------------------------------------------------ simple query
    def on_query(self, msg: m.Query):
        self.transcript.append(("C", f"Query {msg.sql[:200]!r}"))
        self.statements.pop("", None)
        self.portals.pop("", None)
        if self.answer_cache and answer_cache.serve(self, msg.sql):
            self.ready_for_query()
            return
        stmts = split_statements(msg.sql)
        if not stmts:
            self.send(m.EMPTY_QUERY)
            self.ready_for_query()
            return
        if self.replication is not None:
            gen = self._replication_query(msg.sql, stmts)
            if gen is not None:
                handled = yield from gen
                if handled:
                    return
        start_tx = self.tx
        for sql in stmts:
            ok = yield from self._simple_statement(sql, msg.sql if len(stmts) == 1 else None)
            if self.close_reason is not None:
                return
            if not ok:
                break
        self.end_of_implicit(start_tx)
        self.ready_for_query()

    def _replication_query(self, sql: str, stmts: list):
        if self.replication_factory is None:
            return None
        return self.replication_factory(self, sql, stmts)

    def _simple_statement(self, sql: str, text: str | None = None):
        result = yield from self.evaluate(sql, [], (), "simple", None)
        mark = len(self.output)
        done = yield from self.emit_result(result, sql, (), None)
        if text is not None and done is True:
            answer_cache.remember(self, text, sql, result, mark)  # replayed next time if nothing can differ
        return done

    def emit_result(self, result: Result, sql: str, formats_req: tuple, portal: Portal | None, max_rows: int = 0):
        """Send one statement's answer (simple protocol or Execute).

        Returns True when done, False on error, SUSPENDED when Execute's row limit was reached.
        """
        fx = self.faults
        if fx is not None:
            fx.end_statement()
            if fx.armed(result):
                result = fx.begin_statement(self, result, sql)
                err = yield from fx.at(self, "before_reply", result, sql)
                if isinstance(err, PgError):
                    self.statement_failed(err)
                    return False
        for n in result.notices:
            self.send(m.notice_response(n))
        if result.error is not None:
            self.statement_failed(result.error)
            return False
        if result.copy is not None:
            return (yield from self._run_copy(result, sql, portal))
        if result.empty:
            self.send(m.EMPTY_QUERY)
            return True
        count = 0
        if result.columns is not None:
            try:
                # a BINARY cursor's formats apply to a simple FETCH; Bind's formats override them
                formats = (result.formats if portal is None else None) or resolve_formats(formats_req,
                                                                                           len(result.columns))
            except PgError as e:
                self.statement_failed(e)
                return False
            if portal is None:  # simple protocol: RowDescription comes with the answer
                self.send(row_description(result, formats))
            if fx is not None and fx.stmt:
                err = yield from fx.at(self, "after_row_description", result, sql)
                if isinstance(err, PgError):
                    self.statement_failed(err)
                    return False
            if result.static and (portal is None or max_rows <= 0) and not (fx is not None and fx.stmt):
                style = self.text_style  # SET DateStyle & co. (protocol/textstyle.py); None: the defaults
                rows = static_rows(result, formats, style)
                start = portal.sent if portal is not None else 0
                if start == 0:
                    self.send(static_rows_joined(result, formats, style))
                else:
                    self.send(b"".join(rows[start:]))
                count = len(rows) - start
            else:
                ok, count, suspended = yield from self._stream_rows(result, formats, portal, max_rows)
                if not ok:
                    return False
                if suspended:
                    self.send(m.PORTAL_SUSPENDED)
                    return SUSPENDED
        if result.tag is None and result.columns is None and sql[:6].upper() == "INSERT":
            count = insert_values_rows(sql)  # a rule with no rows for INSERT ... VALUES: they were inserted
        tag = result.tag if result.tag is not None else default_tag(sql, count)
        if fx is not None and fx.stmt:
            err = yield from fx.at(self, "before_command_complete", result, sql)
            if err is REPLACED:
                return True
            if err is not None:
                self.statement_failed(err)
                return False
        self.send(m.command_complete(tag))
        if result.set_parameters:
            for name, value in result.set_parameters.items():
                self.send(m.parameter_status(name, value))
        return True

    def _stream_rows(self, result: Result, formats, portal: Portal | None, max_rows: int):
        """Encode rows lazily, a batch at a time (session/rowbatch.py); yields OUTPUT_FULL so huge
        results stay flat in memory. A row that cannot be encoded, or a row source that fails,
        still sends every row before it (then the error), as one row at a time would."""
        columns = result.columns
        if portal is not None:
            if portal.rows is None:
                portal.rows = result.iter_rows()
                portal.encoders = row_encoders(columns, formats, self.text_style)
            rows = portal.rows
        else:
            rows = result.iter_rows()
        batcher = RowBatchEncoder(columns, formats, self.text_style)
        count = 0
        send = self.send
        marks = self.faults.row_mark if self.faults is not None else None
        row_size = 0  # widest average DataRow size of a batch so far: batches fit the output room
        try:
            while True:
                if marks is not None:
                    want = 1  # a fault plan looks at every row count
                elif row_size:
                    room = (OUTPUT_LIMIT - self.output_size) // row_size + 1
                    want = _ROW_BATCH if room > _ROW_BATCH else room if room > 0 else 1
                else:
                    want = 8  # rows of unknown size: a small first batch measures them
                if max_rows > 0 and max_rows - count < want:
                    want = max_rows - count
                batch, failure = _take_rows(rows, want)
                if batch:
                    data, good, err = batcher.encode(batch)
                    if good:
                        send(data)
                        count += good
                        if portal is not None:
                            portal.sent += good
                        size = len(data) // good
                        if size > row_size:
                            row_size = size
                    if err is not None:
                        raise err
                if failure is not None:
                    raise failure
                if len(batch) < want:
                    break  # the source is exhausted
                if marks is not None and marks(count):
                    err = yield from self.faults.at(self, "after_rows", result, None, rows=count)
                    if isinstance(err, PgError):
                        raise err
                if self.output_size > OUTPUT_LIMIT:
                    yield OUTPUT_FULL
                    if self.cancel_requested:
                        self.cancel_requested = False
                        raise PgError("57014", "canceling statement due to user request")
                if max_rows > 0 and count >= max_rows:
                    return True, count, True
        except PgError as e:
            self.statement_failed(e)
            return False, count, False
        if portal is not None:
            portal.done = True
        return True, count, False

    def _run_copy(self, result: Result, sql: str, portal):
        from . import copy as copy_mode  # the COPY sub-protocol lives in its own module

        return (yield from copy_mode.run(self, result, sql, portal))

    # ------------------------------------------------------------------ evaluation
    def make_query(self, sql: str, params: list, types: tuple, protocol: str, statement: str | None) -> Query:
        return Query(
            sql=sql,
            params=params,
            param_types=types,
            protocol=protocol,
            connection=self.info,
            statement=statement,
            settings=self.settings,
            transaction_status=self.tx,
        )

    def evaluate(self, sql: str, params: list, types: tuple, protocol: str, statement: str | None,
                 engine: bool = False):
        """Decide one statement's Result: failed-transaction check, rules, session commands, builtins.

        Backend mode: rules only; with `engine` true, None means "no rule: the engine answers"."""
        self.cancel_requested = False
        kind = classify(sql)
        query = self.make_query(sql, params, types, protocol, statement)
        if self.tx == "E" and kind not in commands.ALLOWED_IN_FAILED_TX:
            err = PgError("25P02", "current transaction is aborted, commands ignored until end of transaction block")
            self.journal_query(query, "session:failed-transaction", err)
            return Result(error=err)
        pinned = self.pinned.get(sql) if self.pinned else None
        if pinned is not None:  # a proxy hook's answer (proxy/backend.py)
            answer, label = (pinned if isinstance(pinned, Result) else Result(error=pinned)), "proxy hook"
        else:
            answer, label = yield from self.responder.chain(
                query, lambda q: commands.answer(self, q, kind), backend=self.backend is not None)
        if answer is ENGINE:
            if engine:
                return None  # the caller relays the statement to the engine
            answer = label = None  # a local statement whose rule stopped matching: FP000
        if answer is None:
            err = self.responder.no_match_error(query)
            self.journal_query(query, None, err)
            return Result(error=err)
        if isinstance(answer, Deferred):
            token = self.new_token()
            value = yield Await(answer, token)
            answer = self._settle(value)
        if answer.delay and answer.error is None:
            token = self.new_token()
            value = yield Await(Deferred(delay=answer.delay, label="delay"), token)
            if value is CANCELED:
                if protocol == "simple" and answer.columns is not None:
                    # PostgreSQL describes the result before running the statement (`SELECT pg_sleep(5)`
                    # canceled: RowDescription, then 57014; captured from 15 and 18)
                    self.send(row_description(answer, answer.formats or resolve_formats((), len(answer.columns))))
                answer = Result(error=PgError("57014", "canceling statement due to user request"))
        if kind == "COPY" and answer.copy is None and answer.error is None:
            from ..answers.copyspec import copy_from_rule  # a rule's plain Result answering a COPY

            answer = copy_from_rule(sql, answer, self.responder.tables)
        self.journal_query(query, label, answer.error)
        if label is not None and not label.startswith("session:"):
            # a rule answered a transaction-control statement: the session still follows it
            commands.follow_transaction(self, kind, sql, answer)
        if answer.notify and answer.error is None:
            for channel, payload in answer.notify:
                if self.backend is not None:  # listeners are the engine's: it delivers at its commit
                    self.backend.notify(self, channel, payload)
                else:
                    commands.queue_notify(self, channel, payload)
        return answer

    def _settle(self, value) -> Result:
        if value is CANCELED:
            return Result(error=PgError("57014", "canceling statement due to user request"))
        if isinstance(value, PgError):
            return Result(error=value)
        if isinstance(value, BaseException):
            return Result(error=PgError("XX000", f"fakepm handler failed: {type(value).__name__}: {value}"))
        if isinstance(value, Result):
            return value
        return Result(error=PgError("XX000", f"fakepm handler returned {type(value).__name__}, not a Result"))

    def journal_query(self, query: Query, label: str | None, error: PgError | None) -> None:
        from .hub import JournalEntry

        self.hub.journal.record(
            JournalEntry(
                sql=query.sql,
                params=list(query.params),
                protocol=query.protocol,
                connection=self.id,
                pid=self.pid,
                user=self.user,
                database=self.database,
                rule=label,
                matched=label is not None,
                error=f"{error.code} {error.message}" if error is not None else None,
                statement=query.statement,
                time=self.now,
            )
        )

    def statement_failed(self, err: PgError) -> None:
        self.send_error(err)
        if err.is_fatal:
            self.close_reason = f"FATAL {err.code} {err.message}"
            return
        if self.tx == "T":
            self.tx = "E"

    def end_of_implicit(self, start_tx: str) -> None:
        """End of a simple Query or Sync group: an implicit transaction ends here."""
        if self.tx == "I":
            self.pending_notifies_commit()
            self.drop_portals(keep_holdable=True)

    def pending_notifies_commit(self) -> None:
        if self.pending_notifies:
            notes, self.pending_notifies = self.pending_notifies, []
            for channel, payload in notes:
                self.hub.notify(channel, payload, self.pid)

    def drop_portals(self, keep_holdable: bool) -> None:
        if self.portals:
            self.portals = {k: p for k, p in self.portals.items() if keep_holdable and p.hold}

    # ------------------------------------------------------------------ extended protocol
    def _ext_error(self, err: PgError) -> None:
        self.send_error(err)
        if err.is_fatal:
            self.close_reason = f"FATAL {err.code} {err.message}"
        if self.tx == "T":
            self.tx = "E"
        self.skip_until_sync = True

    def on_parse(self, msg: m.Parse):
        self.transcript.append(("C", f"Parse {msg.name!r} {msg.sql[:200]!r}"))
        if msg.name and msg.name in self.statements:
            self._ext_error(PgError("42P05", f'prepared statement "{msg.name}" already exists'))
            return
        stmts = split_statements(msg.sql)
        if len(stmts) > 1:
            self._ext_error(PgError("42601", "cannot insert multiple commands into a prepared statement"))
            return
        sql = stmts[0] if stmts else ""
        n = max(count_params(sql), len(msg.param_oids))
        if self.tx == "E" and sql and classify(sql) not in commands.ALLOWED_IN_FAILED_TX:
            # PostgreSQL refuses it at Parse already (and again at Bind for older statements)
            self._ext_error(
                PgError("25P02", "current transaction is aborted, commands ignored until end of transaction block")
            )
            return
        if sql and self.responder.rules.rules:
            # a scripted "relation does not exist" comes at Parse, as PostgreSQL analyses there
            q = self.make_query(sql, [None] * n, tuple(msg.param_oids), "extended", msg.name)
            found = self.responder.parse_error(q)
            if found is not None:
                err, label = found
                q.params = []  # not bound yet
                self.journal_query(q, label, err)
                self.statements.pop(msg.name, None)  # an unnamed statement is replaced even on failure
                self._ext_error(err)
                return
        self.statements[msg.name] = PreparedStatement(msg.name, sql, tuple(msg.param_oids), n)
        self.send(m.PARSE_COMPLETE)

    def _statement_param_types(self, st: PreparedStatement) -> list:
        if st.param_types is None:
            declared = list(st.declared) + [0] * (st.n_params - len(st.declared))
            inferred = None
            types = []
            for i, oid in enumerate(declared):
                t = REGISTRY.get_oid(oid) if oid else None
                if t is None:
                    if inferred is None:
                        inferred = self.responder.infer_param_types(
                            self.make_query(st.sql, [None] * st.n_params, (), "extended", st.name), st.n_params
                        )
                    # unknown declared OIDs (a user enum, say) keep their values as text
                    t = _TEXT if oid else (inferred[i] if i < len(inferred) and inferred[i] is not None else _TEXT)
                types.append(t)
            st.param_types = types
        return st.param_types

    def _find_statement(self, name: str) -> PreparedStatement | None:
        st = self.statements.get(name)
        if st is None:
            if name:
                self._ext_error(PgError("26000", f'prepared statement "{name}" does not exist'))
            else:
                self._ext_error(PgError("26000", "unnamed prepared statement does not exist"))
        return st

    def on_bind(self, msg: m.Bind):
        st = self._find_statement(msg.statement)
        if st is None:
            return
        if len(msg.params) != st.n_params:
            self._ext_error(
                PgError(
                    "08P01",
                    f"bind message supplies {len(msg.params)} parameters, but prepared statement "
                    f'"{msg.statement}" requires {st.n_params}',
                )
            )
            return
        if msg.portal and msg.portal in self.portals:
            self._ext_error(PgError("42P03", f'cursor "{msg.portal}" already exists'))
            return
        types = self._statement_param_types(st)
        try:
            pformats = resolve_formats(msg.param_formats, len(msg.params), what="param")
        except PgError as e:
            self._ext_error(e)
            return
        values = []
        style = self.text_style  # None at the default settings: the registry's decoders
        for i, (raw, fmt, t) in enumerate(zip(msg.params, pformats, types)):
            if raw is None:
                values.append(None)
                continue
            try:
                if fmt:
                    values.append(t.decode_binary(raw))
                else:
                    dec = styled_input(t, style) if style is not None else None
                    values.append(dec(raw) if dec is not None else t.decode_text(raw))
            except (ValueError, TypeError, UnicodeDecodeError) as e:
                if fmt:
                    err = PgError("22P03", f"incorrect binary data format in bind parameter {i + 1}")
                else:
                    # the registry's InvalidValue carries PostgreSQL's SQLSTATE (22003 out of range, 22007 ...)
                    err = PgError(getattr(e, "sqlstate", None) or "22P02", str(e) or f"invalid input syntax for type {t.name}")
                self._ext_error(err)
                return
        if self.tx == "E" and classify(st.sql) not in commands.ALLOWED_IN_FAILED_TX:
            self._ext_error(
                PgError("25P02", "current transaction is aborted, commands ignored until end of transaction block")
            )
            return
        self.portals[msg.portal] = Portal(
            name=msg.portal,
            sql=st.sql,
            params=values,
            param_types=types,
            result_formats=tuple(msg.result_formats),
            statement=st.name,
            params_raw=msg.params,
        )
        self.send(m.BIND_COMPLETE)

    def on_describe(self, msg: m.Describe):
        if msg.kind == "S":
            st = self._find_statement(msg.name)
            if st is None:
                return
            types = self._statement_param_types(st)
            replaced = None
            if self.faults is not None and self.faults.armed():
                replaced = yield from self.faults.at(self, "describe", None, st.sql,
                                                     type_oids=tuple(t.oid for t in types))
            if replaced is not REPLACED:
                self.send(m.ParameterDescription(tuple(t.oid for t in types)).encode())
            if st.columns is None:
                pinned = self.pinned.get(st.sql) if self.pinned else None
                if pinned is not None:
                    st.columns = pinned.columns if isinstance(pinned, Result) else None
                else:
                    q = self.make_query(st.sql, [None] * st.n_params, tuple(types), "extended", st.name)
                    q.describe_only = True
                    st.columns = self.responder.describe(q, self)
            cols = st.columns
            if cols:
                self.send(row_description(Result(columns=cols), (0,) * len(cols)))
            else:
                self.send(m.NO_DATA)
            return
        portal = self.portals.get(msg.name)
        if portal is None:
            self._ext_error(PgError("34000", f'portal "{msg.name}" does not exist'))
            return
        if portal.result is None and classify(portal.sql) in _TX_CONTROL:
            # Describe does not run a statement: COMMIT described in a pipeline must not end the
            # transaction (and drop this very portal) before its Execute
            self.send(m.NO_DATA)
            return
        if portal.result is None:
            portal.result = yield from self.evaluate(
                portal.sql, portal.params, tuple(portal.param_types), "extended", portal.statement
            )
        res = portal.result
        if res.error is not None or not res.columns or res.copy is not None:
            self.send(m.NO_DATA)
            return
        try:
            formats = portal.formats or resolve_formats(portal.result_formats, len(res.columns))
        except PgError as e:
            self._ext_error(e)
            return
        portal.formats = formats
        self.send(row_description(res, formats))

    def on_execute(self, msg: m.Execute):
        portal = self.portals.get(msg.portal)
        if portal is None:
            self._ext_error(PgError("34000", f'portal "{msg.portal}" does not exist'))
            return
        if portal.cursor:
            # Execute on a DECLAREd cursor: fetch from it like FETCH FORWARD max_rows
            ok = yield from commands.execute_cursor_portal(self, portal, msg.max_rows)
            if not ok:
                self.skip_until_sync = True
            return
        if portal.done:
            self.send(m.command_complete(default_tag(portal.sql, 0)))
            return
        if portal.result is None:
            portal.result = yield from self.evaluate(
                portal.sql, portal.params, tuple(portal.param_types), "extended", portal.statement
            )
        res = portal.result
        fmts = portal.result_formats
        if portal.formats is not None:
            fmts = portal.formats
        elif res.columns and res.error is None and portal.sent == 0:
            changed = self._result_type_changed(portal, res)
            if changed is not None:
                self._ext_error(changed)
                return
        status = yield from self.emit_result(res, portal.sql, fmts, portal, msg.max_rows)
        if status is False:
            self.skip_until_sync = True
        elif status is not SUSPENDED:
            portal.done = True

    def _result_type_changed(self, portal, res) -> PgError | None:
        """The client decodes an undescribed portal by its statement's Describe: an answer with
        other column types (a rule chosen by the bound values, a handler) would be misread, so it
        is refused as PostgreSQL refuses a plan whose result type changed."""
        st = self.statements.get(portal.statement) if portal.statement is not None else None
        described = st.columns if st is not None else None
        if not described:
            return None
        if len(described) == len(res.columns) and all(
                a.type.oid == b.type.oid for a, b in zip(described, res.columns)):
            return None
        shown = lambda cols: ", ".join(f"{c.name} {c.type.name}" for c in cols)  # noqa: E731
        return PgError("0A000", "cached plan must not change result type",
                       detail=f"fakepm: the statement was described as ({shown(described)}); the answer chosen "
                              f"for these parameters has ({shown(res.columns)})",
                       hint="Give the rules of one statement the same columns: a client decodes rows by the "
                            "statement's Describe.")

    def on_close(self, msg: m.Close):
        if msg.kind == "S":
            self.statements.pop(msg.name, None)
        else:
            self.portals.pop(msg.name, None)
        self.send(m.CLOSE_COMPLETE)

    def on_sync(self, msg: m.Sync):
        if self._group is not None:
            if not self.reader.buffered:  # this Sync ends the read: it was one whole group
                answer_cache.remember_group(self, self._group, self._group_mark)
            self._group = None
        self.skip_until_sync = False
        self.end_of_implicit(self.tx)
        self.ready_for_query()

    def on_flush(self, msg: m.Flush):
        return None  # output is sent whenever the session stops; nothing else to do

    def on_function_call(self, msg: m.FunctionCall):
        self.send_error(PgError("0A000", "fakepm does not implement the fastpath function call protocol"))
        self.ready_for_query()


def _trust():
    from ..protocol.auth import UserAuth

    return UserAuth("trust")


def _peer_host(peer) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "[local]"


