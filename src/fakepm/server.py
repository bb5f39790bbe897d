"""FakePostgres: the embeddable server a test starts in a few milliseconds.

    with FakePostgres() as pg:
        pg.on("SELECT name FROM users WHERE id = $1").reply(columns={"name": "text"}, rows=[["ada"]])
        psycopg.connect(pg.dsn)...
        pg.verify()
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import threading
import time
from typing import Any, Callable

from .answers.builtin import Builtins
from .answers.catalog import Catalog, Table
from .answers.responder import Responder
from .answers.result import Column, Query, Result, make_columns
from .dsn import Addresses
from .answers.rules import Rule, RuleSet, RuleState, reply_result
from .faults import FaultPlan, FaultSet, SessionFaults, parse_fault, parse_faults
from .loop import Loop, listen_tcp, listen_unix
from .protocol.auth import user_auths
from .protocol.errors import PgError
from .protocol.framing import check_max_message_size
from .session.config import DEFAULT_VERSION, ServerConfig
from .session.connection import Session
from .session.hub import Hub, Journal


class RuleBuilder:
    """What `pg.on(...)` returns: finish it with `.reply(...)`, `.error(...)`, `.respond(...)`
    or use it as a decorator for a handler."""

    def __init__(self, pg: "FakePostgres", kwargs: dict):
        self._pg = pg
        self._kwargs = kwargs

    def _add(self, **more) -> Rule:
        kw = dict(self._kwargs)
        kw.update(more)
        return self._pg._add_rule(Rule(**kw))

    def reply(self, columns=None, rows=None, tag: str | None = None, *, notices=(), notify=(),
              delay: float = 0.0, fault=None) -> Rule:
        """Answer with rows (natural Python values, checked against the column types now).

        `fault`: a fault plan (dict of the YAML keys, a FaultPlan, or a list) applied when
        this rule answers; see the README section "Faults"."""
        result = reply_result(columns, rows, tag, notices=_notices(notices), notify=_notify_list(notify), delay=delay)
        if fault is not None:
            result.fault = _rule_faults(fault)
        return self._add(answers=[result])

    def fault(self, plan=None, **keys) -> Rule:
        """Answer with an empty command whose delivery is broken by a fault plan:
        `pg.on("SELECT 1").fault(close=True)`."""
        return self._add(answers=[Result(columns=None, fault=_rule_faults(plan if plan is not None else keys))])

    def error(self, code: str = "XX000", message: str = "error", *, severity: str = "ERROR", delay: float = 0.0,
              fault=None, **fields) -> Rule:
        """Answer with an ErrorResponse (`code` is a SQLSTATE or a condition name)."""
        err = PgError(code=code, message=message, severity=severity, **fields)
        return self._add(answers=[Result(error=err, delay=delay,
                                         fault=_rule_faults(fault) if fault is not None else None)])

    def respond(self, *results: Result) -> Rule:
        """Answer with prepared Result objects; several make a sequence (the last repeats)."""
        return self._add(answers=list(results))

    def sequence(self, *answers: dict) -> Rule:
        """Successive calls get successive answers (dicts of reply()/error() arguments)."""
        out = []
        for a in answers:
            if "error" in a:
                e = a["error"]
                out.append(Result(error=e if isinstance(e, PgError) else PgError(**e)))
            else:
                out.append(reply_result(a.get("columns"), a.get("rows"), a.get("tag")))
        return self._add(answers=out)

    def handle(self, fn: Callable[[Query], Any]) -> Callable:
        self._add(handler=fn)
        return fn

    def copy_both(self, handler: Callable | None = None, *, script: list | None = None, binary: bool = False,
                  columns: int = 0, tag: str | None = None) -> Rule:
        """Answer with CopyBothResponse: `handler(channel)` runs on its own thread (channel.recv()/
        send()/done()), or `script=[{"recv": ..., "send": ...}, ...]` is played. See README "COPY"."""
        from .answers.copyspec import copy_both

        return self._add(answers=[copy_both(handler, script=script, binary=binary, columns=columns, tag=tag)])

    __call__ = handle


def _rule_faults(fault):
    plans = parse_faults(fault, "fault") if isinstance(fault, (list, tuple)) else [parse_fault(fault, "fault")]
    return plans[0] if len(plans) == 1 else tuple(plans)


def _notices(notices) -> tuple:
    out = []
    for n in notices:
        if isinstance(n, PgError):
            out.append(n)
        elif isinstance(n, dict):
            d = dict(n)
            d.setdefault("severity", "NOTICE")
            d.setdefault("code", "00000")
            out.append(PgError(**d))
        else:
            out.append(PgError("00000", str(n), severity="NOTICE"))
    return tuple(out)


def _notify_list(notify) -> tuple:
    out = []
    for n in notify:
        if isinstance(n, dict):
            out.append((n["channel"], n.get("payload", "")))
        else:
            ch, payload = n
            out.append((ch, payload))
    return tuple(out)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_source() -> str:
    """file:line of the user code that added a rule (for messages naming rules)."""
    frame = inspect.currentframe()
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


_WAL_LOCK = threading.Lock()


class FakePostgres(Addresses):
    """A fake PostgreSQL server on 127.0.0.1 (free port), ready when `start()`/`with` returns.

    `subprocess=True` runs the same server in a child process driven through the control API
    (fakepm/child.py): the same methods, handlers called back in this process, and no client
    that blocks inside C code holding the GIL can stall it."""

    def __new__(cls, *args, subprocess: bool = False, **kwargs):
        if subprocess and cls is FakePostgres:
            from .child import ChildPostgres

            return ChildPostgres(*args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        scenario: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_socket_dir: str | bool | None = None,
        version: str = DEFAULT_VERSION,
        database: str | None = None,
        users: dict | None = None,
        tls: bool = False,
        require_tls: bool = False,
        parameters: dict | None = None,
        user: str | None = None,
        max_connections: int = 1000,
        max_message_size: int = 64 << 20,
        journal_limit: int = 100_000,
        copy_keep_bytes: int = 8 << 20,
        authentication_timeout: float = 60.0,
        backend=None,
        schema=(),
        hooks=(),
        subprocess: bool = False,
    ):
        self.host = host
        self._requested_port = port
        self.port = 0
        if user is None:  # the DSN names a user who may log in: postgres, else the first declared one
            user = "postgres" if not users or "postgres" in users else next(iter(users))
        self.user = user
        self._unix_dir_opt = unix_socket_dir
        self.unix_socket_dir: str | None = None
        self._own_unix_dir = False
        self.config = ServerConfig(
            version=str(version),
            database=database,
            parameters=dict(parameters or {}),
            users=user_auths(users),
            tls=tls,
            require_tls=require_tls,
            max_connections=max_connections,
            max_message_size=check_max_message_size(max_message_size),
            journal_limit=journal_limit,
            copy_keep_bytes=copy_keep_bytes,
            authentication_timeout=authentication_timeout,
        )
        self.rules = RuleSet()
        self.journal = Journal(limit=journal_limit)
        self.builtins = Builtins(self.config)
        self.catalog = Catalog()
        self.responder = Responder(self.rules, self.builtins, self.catalog)
        self.hub = Hub(self.journal, time.monotonic)
        self.faults = FaultSet()  # server-level fault plans (pg.fault, YAML `faults:`)
        self._refuse_new = False
        self.certificates = None
        self._loop: Loop | None = None
        self._started = False
        self._scenarios: list = []
        # what `reset(keep_scenarios=True)` (the control API's reset) restores: the rules and
        # fault plans present at start() and those loaded from scenario files since
        self._baseline: tuple[tuple, tuple] = ((), ())
        self._extensions: list = []  # hooks other rooms attach (walsender, copy, scenario)
        self._wal = None  # `pg.wal`, made on first use: walsender/ and pgoutput cost ~30 ms to import
        self.replication_factory: Callable | None = self._replication_query
        # backend mode: "postgres" (an engine fakepm manages), "postgres:15", a postgresql:// URL of
        # an existing server, or an engine object; None/"none": the pure fake
        self.backend_spec = None if backend in (None, "none") else backend
        # backend mode: SQL run when the database is made (text, or os.PathLike of a .sql file)
        self.schema: list = list(schema)
        self.backend = None  # proxy.backend.Backend while started in backend mode
        self.hooks = list(hooks)  # backend mode: ProxyHooks over the relayed traffic (proxy/hooks.py)
        if scenario is not None:
            self.load(scenario)

    @property
    def wal(self):
        """The logical replication source (walsender/'s WalSender): `pg.wal.insert(...)` etc."""
        if self._wal is None:
            with _WAL_LOCK:  # the test's thread and the loop thread (a replication connection) may race
                if self._wal is None:
                    from .walsender import WalSender

                    self._wal = WalSender(self)
        return self._wal

    @wal.setter
    def wal(self, value) -> None:  # an attribute before it became lazy: still assignable
        self._wal = value

    def _replication_query(self, session, sql, stmts):
        return self.wal.replication_query(session, sql, stmts)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakePostgres":
        if self._started:
            return self
        ssl_context = None
        if self.config.tls:
            from .certs import make_test_certificates

            self.certificates = make_test_certificates()
            ssl_context = self.certificates.server_ssl_context()
            self._endpoint_hash = self.certificates.tls_endpoint_hash
        if self.backend_spec is not None:
            self._open_backend()
        loop = Loop(self._make_session, ssl_context=ssl_context)
        sock = listen_tcp(self.host, self._requested_port)
        self.port = sock.getsockname()[1]
        loop.add_listener(sock)
        if self._unix_dir_opt:
            if self._unix_dir_opt is True:
                self.unix_socket_dir = tempfile.mkdtemp(prefix="fakepm-")
                self._own_unix_dir = True
            else:
                self.unix_socket_dir = str(self._unix_dir_opt)
            usock, self._unix_path = listen_unix(self.unix_socket_dir, self.port)
            loop.add_listener(usock)
        self._loop = loop
        loop.refuse_new = self._refuse_new
        self._baseline = (self.rules.rules, self.faults.plans)
        loop.start()
        self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._loop.stop()
        if self.unix_socket_dir:
            try:
                os.unlink(self._unix_path)
            except OSError:
                pass
            if self._own_unix_dir:
                shutil.rmtree(self.unix_socket_dir, ignore_errors=True)
        if self.certificates is not None:
            self.certificates.cleanup()
            self.certificates = None
        if self.backend is not None:
            backend, self.backend = self.backend, None
            backend.engine.release_database(backend.database)

    close = stop

    def _open_backend(self) -> None:
        """Backend mode: this server's own database on the engine (cloned from the template its
        tables and schema make), and its declared users as roles."""
        from .engine import DatabaseSetup, resolve_engine
        from .proxy.backend import Backend

        spec = self.backend_spec
        engine = resolve_engine(spec) if isinstance(spec, str) else spec
        engine.start()
        users = self.config.users or {}
        passwords = {name: ua.password for name, ua in users.items()}
        if passwords:
            engine.ensure_roles(passwords)
        scripts = tuple(_read(s) if isinstance(s, os.PathLike) else str(s) for s in self.schema)
        setup = DatabaseSetup(tables=tuple(self.catalog.tables.values()), schema=scripts)
        # the DSN's user, when declared, owns the database (and so its public schema on PostgreSQL
        # 15+: migrations run as that user can create tables, as on a server set up for the app)
        owner = self.user if self.user in passwords and self.user != "postgres" else None
        database = engine.acquire_database(setup, owner=owner) if owner else engine.acquire_database(setup)
        self.backend = Backend(engine, database, self.config.database or "postgres",
                               {n: p for n, p in passwords.items() if p}, hooks=self.hooks)

    def __enter__(self) -> "FakePostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._started

    def _make_session(self, peer, is_unix: bool) -> Session:
        s = Session(
            self.hub,
            self.config,
            self.responder,
            peer="[local]" if is_unix else peer,
            tls_available=self.config.tls and not is_unix,
            tls_endpoint_hash=(lambda: self._endpoint_hash) if self.config.tls else None,
            replication_factory=self.replication_factory,
            backend=self.backend,
        )
        s.post_threadsafe = lambda data, s=s: self._post_to_session(s, data)
        s.faults = SessionFaults(self.faults)
        for ext in self._extensions:
            hook = getattr(ext, "on_session", None)
            if hook is not None:
                hook(s)
        return s

    # ------------------------------------------------------------------ addresses (dsn, url, conninfo: Addresses)
    @property
    def ca_file(self) -> str | None:
        return self.certificates.ca_file if self.certificates else None

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("FakePostgres is not started: use `with FakePostgres() as pg:` or pg.start()")

    # ------------------------------------------------------------------ rules
    def on(self, query: str | None = None, *, regex: str | None = None, params: list | None = None,
           times: int | None = None, expect: int | bool | None = None, priority: int = 0, user: str | None = None,
           database: str | None = None, application_name: str | None = None, name: str | None = None,
           columns=None, param_types: list | None = None, state: dict | None = None) -> RuleBuilder:
        """Start a rule: `pg.on("SELECT ...", params=[1]).reply(columns=..., rows=...)`."""
        if query is None and regex is None:
            raise ValueError("pg.on() needs a query or regex=")
        kw = dict(query=query, regex=regex, params=list(params) if params is not None else None, times=times,
                  expect=expect, priority=priority, user=user, database=database, application_name=application_name,
                  name=name, source=_caller_source(),
                  columns=make_columns(columns) if columns is not None else None,
                  param_types=tuple(param_types) if param_types else None,
                  state=RuleState(**state) if state else None)
        return RuleBuilder(self, kw)

    def handler(self, query: str | None = None, *, regex: str | None = None, columns=None, **kw) -> Callable:
        """Decorator: a Python function answers matching queries on a worker thread.

        It receives a Query (sql, params, connection, ...) and returns rows (needs
        `columns=`), a Result, a tag string, or None; raising PgError answers with that error.
        """
        builder = self.on(query, regex=regex, columns=columns, **kw)
        return builder.handle

    def _add_rule(self, rule: Rule) -> Rule:
        return self.rules.add(rule)

    def table(self, name: str, columns, *, key=(), rows=(), replica_identity: str = "d") -> Table:
        """Declare a table (`public.products`): used for parameter types, COPY, \\d and the walsender."""
        return self.catalog.add(name, columns, key=key, rows=rows, replica_identity=replica_identity)

    def load(self, path) -> Any:
        """Add the rules (and server settings) of a YAML scenario file."""
        from .scenario import load_scenario  # the scenario room

        sc = load_scenario(path)
        rules, plans = self.rules.rules, self.faults.plans
        sc.apply(self)
        self._scenarios.append(sc)
        if self._started:  # loaded while running: part of what reset(keep_scenarios=True) restores
            base_rules, base_plans = self._baseline
            self._baseline = (base_rules + tuple(r for r in self.rules.rules if r not in rules),
                              base_plans + tuple(p for p in self.faults.plans if p not in plans))
        return sc

    # ------------------------------------------------------------------ journal & verification
    @property
    def queries(self) -> list:
        """Every statement received, in order (JournalEntry: sql, params, protocol, connection, rule ...)."""
        return list(self.journal.queries)

    @property
    def unmatched(self) -> list:
        return list(self.journal.unmatched)

    @property
    def events(self) -> list:
        return list(self.journal.events)

    def verify(self) -> None:
        """Raise AssertionError listing unmet expectations, unmatched queries and handler failures."""
        __tracebackhide__ = True  # pytest shows the report, not this method
        problems = self.problems()
        if problems:
            raise AssertionError("fakepm verification failed:\n- " + "\n- ".join(problems))

    def problems(self) -> list[str]:
        """What verify() would report, one text per problem (empty when all is well)."""
        problems = []
        for rule in self.rules.rules:
            if rule.expect is None or rule.expect is False:
                continue
            if rule.expect is True:
                if rule.calls < 1:
                    problems.append(f"expected at least one call, got none: {rule.label}")
            elif rule.calls != int(rule.expect):
                problems.append(f"expected {int(rule.expect)} call(s), got {rule.calls}: {rule.label}")
        for entry in self.journal.unmatched:
            q = Query(sql=entry.sql, params=entry.params)
            near = self.rules.nearest(q)
            msg = f"no rule matched {entry.sql!r}" + (f" params={entry.params!r}" if entry.params else "")
            if near:
                msg += "\n    nearest: " + "\n             ".join(near)
            problems.append(msg)
        for failure in self.rules.handler_failures:
            problems.append(failure)
        replay = getattr(getattr(self.backend, "engine", None), "report", None)  # a recording replayed
        if replay:
            problems.extend(f"the replay left the recording: {line}" for line in replay
                            if "not in the recording" in line)
        if self._loop is not None and self._loop.errors:
            problems.extend(f"fakepm internal error:\n{e}" for e in self._loop.errors)
        return problems

    def reset(self, *, keep_scenarios: bool = False) -> None:
        """Forget rules, journal, fault plans, state and handler failures (connections stay open).

        keep_scenarios=True: the rules and fault plans the server started with (and those of
        scenario files loaded since) come back as new (no calls counted, state `start`), and new
        connections are let in again: what the control API's `POST /__admin/reset` does."""
        rules, plans = self._baseline if keep_scenarios else ((), ())

        def do():
            self.rules.clear()
            self.journal.clear()
            self.faults.clear()
            for r in rules:
                r.calls = 0
                self.rules.add(r)
            for p in plans:
                self.faults.add(p)
            if keep_scenarios:
                self.refuse_new_connections(any(p.action == "refuse_new" for p in plans))

        self._call(do)

    def remove_rule(self, rule: Rule) -> bool:
        """Remove one rule (what `pg.on(...)` returned, or one of `pg.rules.rules`); False if absent."""
        return self.rules.remove(rule)

    @property
    def state(self) -> str:
        """The scenario state (`state: {when, set}` rules); `start` until a rule sets another."""
        return self.rules.current_state()

    def set_state(self, state: str, connection: int | None = None) -> None:
        """Set the scenario state (globally, or of one connection for `scope: connection` rules)."""
        self.rules.set_state(state, connection)

    # ------------------------------------------------------------------ interacting with live connections
    def _call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run fn on the loop thread and wait for it (or run it directly when not started)."""
        if not self._started or self._loop is None:
            return fn()
        if threading.current_thread() is self._loop.thread:
            return fn()
        done = threading.Event()
        box: list = []

        def run():
            try:
                box.append((True, fn()))
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                box.append((False, e))
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        if not done.wait(timeout):
            raise TimeoutError("fakepm server loop did not answer in time")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _post_to_session(self, session: Session, data: Any) -> None:
        """(any thread) hand `data` to a session as a wake Event on the loop thread (COPY both, walsender)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(lambda: loop.wake_session(session, data))

    @property
    def copies(self) -> list:
        """Every COPY, in order (CopyRecord: direction, table, columns, format, options, rows, count, error)."""
        return list(self.journal.copies)

    def notify(self, channel: str, payload: str = "") -> int:
        """Send a NOTIFY to every connection LISTENing on channel; returns how many got it
        (backend mode: the engine delivers it to its listeners; returns 0)."""
        if self.backend is not None:
            self.backend.notify_all(channel, payload)
            return 0
        return self._call(lambda: self.hub.notify(channel, payload, 0))

    def fault(self, plan=None, **keys) -> FaultPlan:
        """Add a server-level fault plan: `pg.fault(error="40001", query="COMMIT", first=2)`.

        Takes the keys of a YAML `faults:` item (or a FaultPlan); returns the plan (give it to
        `remove_fault`). `refuse_new=True` makes the listener close new connections at once."""
        p = parse_fault(plan if plan is not None else keys, "pg.fault()")
        if p.action == "refuse_new":
            self.refuse_new_connections(True)
        self.faults.add(p)
        return p

    def remove_fault(self, plan: FaultPlan) -> None:
        self.faults.remove(plan)

    def clear_faults(self) -> None:
        """Forget every server-level fault plan and let new connections in again."""
        self.faults.clear()
        self.refuse_new_connections(False)

    def refuse_new_connections(self, refuse: bool = True) -> None:
        """Close new TCP connections right after accept (existing ones go on)."""
        self._refuse_new = refuse
        if self._loop is not None:
            self._loop.refuse_new = refuse

    def disconnect_all(self) -> None:
        """Close every client connection (as if the server went away)."""
        self._call(lambda: self._loop.close_all())

    @property
    def connections(self) -> list:
        """Facts about currently open, authenticated connections."""
        return self._call(lambda: [s.info for s in self.hub.sessions.values() if s.info is not None])

    def transcripts(self) -> dict:
        """Recent protocol summaries per open connection id (for failure reports)."""
        def collect():
            out = dict(self.hub.closed_transcripts)
            out.update({s.id: list(s.transcript) for s in self.hub.sessions.values()})
            return out

        return self._call(collect)

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self._started else "stopped"
        return f"<FakePostgres {state} rules={len(self.rules.rules)}>"


def _read(path) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()




__all__ = ["FakePostgres", "RuleBuilder", "Column", "Result"]
