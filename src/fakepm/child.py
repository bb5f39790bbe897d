"""FakePostgres(subprocess=True): the same server in a child process, driven from the test's.

    with FakePostgres(subprocess=True) as pg:           # a ChildPostgres
        pg.on("SELECT 1").reply(columns={"x": "int4"}, rows=[[1]])
        @pg.handler("SELECT balance FROM accounts WHERE id = $1", columns={"balance": "int4"})
        def balance(q):                                   # runs here, in the test's process
            return [[100 * q.params[0]]]
        ...
        pg.verify()

Why: a client library that blocks inside C code while holding the GIL (psycopg2's and psycopg's
blocking `conn.cancel()`, libpq's `get_result()` driving COPY both) stops every other thread of
its process, the in-process server's too. In a child process the server runs on its own (and
on another core). The child is `python -m fakepm.admin`: a FakePostgres with its control API
on loopback (a bearer token only this process knows); every method here is one request to it,
so this module holds no server logic. Python handlers stay in this process: the child queues
each call and a thread here long-polls for them (GET /__admin/callbacks), runs the handler and
posts the answer. The child ends when this process closes its stdin -- or dies.

What differs from the in-process server: values cross as JSON (with the tags of
admin/values.py), so `rows=` must be a list (not a callable), fault plans are given as
dicts, `pg.rules` is a view (`.rules`, `.clear()`), and the journal is read afresh on each
access (`pg.queries` is a request: keep it in a variable inside loops).
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import traceback
from types import SimpleNamespace
from typing import Any, Callable

from .admin.client import AdminClient, AdminRequestError
from .admin.values import from_json, to_json
from .answers.result import ConnectionInfo, Query, Result
from .dsn import Addresses
from .protocol.errors import PgError

START_TIMEOUT = 60.0  # the child prints its DSN within this (an import of fakepm takes ~0.15 s)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_source() -> str:
    frame = inspect.currentframe()
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _type_spec(t) -> str:
    from .answers.result import Column
    from .protocol.types import PgType, format_type

    if isinstance(t, str):
        return t
    if isinstance(t, Column):
        return t.type.name if t.typmod == -1 else format_type(t.type, t.typmod)
    if isinstance(t, PgType):
        return t.name
    raise TypeError(f"a column type is a name such as 'int4', got {t!r}")


def columns_json(spec) -> list | None:
    """Columns as the JSON API takes them: [{"name", "type"}]."""
    from .answers.result import Column

    if spec is None:
        return None
    if isinstance(spec, dict):
        return [{"name": str(n), "type": _type_spec(t)} for n, t in spec.items()]
    out = []
    for item in spec:
        if isinstance(item, Column):
            out.append({"name": item.name, "type": _type_spec(item)})
        elif isinstance(item, dict):
            out.append({"name": str(item["name"]), "type": _type_spec(item.get("type", "text"))})
        else:
            name, t = item
            out.append({"name": str(name), "type": _type_spec(t)})
    return out


def _rows_json(rows) -> list:
    if callable(rows):
        raise TypeError("rows given as a callable cannot cross to a child process: give a list (or use "
                        "`generate:` in a scenario file)")
    return to_json([r if isinstance(r, dict) else (list(r) if isinstance(r, (list, tuple)) else r) for r in rows])


def error_json(e: PgError) -> dict:
    out = {"code": e.code, "message": e.message}
    for key in ("severity", "detail", "hint", "position", "where", "schema_name", "table_name", "column_name",
                "data_type_name", "constraint_name", "internal_query", "internal_position"):
        v = getattr(e, key, None)
        if v is not None and not (key == "severity" and v == "ERROR"):
            out[key] = v
    return out


def _notices_json(notices) -> list:
    out = []
    for n in notices:
        if isinstance(n, PgError):
            d = error_json(n)
            d.setdefault("severity", n.severity)
            out.append(d)
        elif isinstance(n, dict):
            out.append(dict(n))
        else:
            out.append(str(n))
    return out


def _notify_json(notify) -> list:
    out = []
    for n in notify:
        if isinstance(n, dict):
            out.append({"channel": n["channel"], "payload": n.get("payload", "")})
        else:
            ch, payload = n
            out.append({"channel": ch, "payload": payload})
    return out


def _fault_json(fault):
    from .faults import FaultPlan

    if isinstance(fault, FaultPlan):
        raise TypeError("in a child process give fault plans as dicts ({'error': '40001', 'first': 2}), "
                        "not FaultPlan objects")
    if isinstance(fault, (list, tuple)):
        return [_fault_json(f) for f in fault]
    return to_json(fault)


def result_json(res: Result) -> dict:
    """A Result as a JSON answer (what a handler returned)."""
    out: dict = {}
    if res.error is not None:
        out["error"] = error_json(res.error)
    if res.columns is not None:
        out["columns"] = columns_json(res.columns)
        out["rows"] = _rows_json(res.rows() if callable(res.rows) else res.rows)
    if res.tag is not None:
        out["tag"] = res.tag
    if res.notices:
        out["notices"] = _notices_json(res.notices)
    if res.notify:
        out["notify"] = _notify_json(res.notify)
    if res.delay:
        out["delay"] = res.delay
    return out


def answer_json(out, *, has_columns: bool) -> dict:
    """What a Python handler returned, as the JSON answer the child reads (see handler_result)."""
    if out is None:
        return {}
    if isinstance(out, Result):
        return result_json(out)
    if isinstance(out, str):
        return {"tag": out}
    if isinstance(out, PgError):
        return {"error": error_json(out)}
    if not has_columns:
        return {"error": {"code": "XX000", "message": "fakepm handler returned rows but the handler declares "
                                                      "no columns="}}
    return {"rows": _rows_json(list(out))}


def query_of(payload: dict) -> Query:
    c = payload.get("connection")
    conn = None
    if c:
        conn = ConnectionInfo(id=c["id"], pid=c["pid"], user=c["user"], database=c["database"],
                              application_name=c.get("application_name") or "", parameters=c.get("parameters") or {},
                              tls=bool(c.get("tls")), replication=c.get("replication"))
    return Query(sql=payload["sql"], params=from_json(payload.get("params") or []),
                 protocol=payload.get("protocol", "simple"), connection=conn, statement=payload.get("statement"),
                 settings=from_json(payload.get("settings") or {}),
                 transaction_status=payload.get("transaction_status", "I"))


# ---------------------------------------------------------------------------------- rules
class RemoteRule:
    """A rule living in the child (what `pg.on(...).reply(...)` returns): `.calls` asks it."""

    def __init__(self, pg: "ChildPostgres", spec: dict):
        self._pg = pg
        self.spec = spec
        self.id: int | None = None
        self._info: dict = {}

    def _fetch(self) -> dict:
        if self.id is None:
            return {"calls": 0, "label": self.spec.get("query") or self.spec.get("regex")}
        try:
            self._info = self._pg._api.get(f"/rules/{self.id}")
        except AdminRequestError as e:
            if e.status != 404:
                raise
            self._info = dict(self._info, removed=True)
        return self._info

    @property
    def calls(self) -> int:
        return self._fetch().get("calls", 0)

    @property
    def label(self) -> str:
        return self._fetch().get("label", "")

    def exhausted(self) -> bool:
        return bool(self._fetch().get("exhausted"))

    def __getattr__(self, name: str):
        if name in ("query", "regex", "params", "times", "expect", "priority", "user", "database",
                    "application_name", "name", "source"):
            return self.spec.get(name)
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"<RemoteRule #{self.id} {self.spec.get('query') or self.spec.get('regex')!r}>"


class RemoteRuleBuilder:
    """What `pg.on(...)` returns in subprocess mode: the same methods as RuleBuilder."""

    def __init__(self, pg: "ChildPostgres", spec: dict):
        self._pg = pg
        self._spec = spec

    def _add(self, **answer) -> RemoteRule:
        spec = dict(self._spec)
        spec.update({k: v for k, v in answer.items() if v is not None})
        return self._pg._add_rule_spec(spec)

    def reply(self, columns=None, rows=None, tag: str | None = None, *, notices=(), notify=(),
              delay: float = 0.0, fault=None) -> RemoteRule:
        if rows is not None and columns is None and self._spec.get("columns") is None:
            raise ValueError("rows given without columns")
        cols = columns_json(columns) if columns is not None else None
        return self._add(columns=cols if cols is not None else None,
                         rows=_rows_json(rows) if rows is not None else ([] if cols is not None else None),
                         tag=tag, notices=_notices_json(notices) or None, notify=_notify_json(notify) or None,
                         delay=delay or None, fault=_fault_json(fault) if fault is not None else None)

    def fault(self, plan=None, **keys) -> RemoteRule:
        return self._add(fault=_fault_json(plan if plan is not None else keys))

    def error(self, code: str = "XX000", message: str = "error", *, severity: str = "ERROR", delay: float = 0.0,
              fault=None, **fields) -> RemoteRule:
        err = {"code": code, "message": message, **{k: v for k, v in fields.items() if v is not None}}
        if severity != "ERROR":
            err["severity"] = severity
        spec = dict(self._spec)
        spec.pop("columns", None)
        return self._pg._add_rule_spec({**spec, "error": err, **({"delay": delay} if delay else {}),
                                        **({"fault": _fault_json(fault)} if fault is not None else {})})

    def respond(self, *results: Result) -> RemoteRule:
        answers = [result_json(r) for r in results]
        if len(answers) == 1:
            return self._add(**answers[0])
        return self._add(sequence=answers)

    def sequence(self, *answers: dict) -> RemoteRule:
        seq = []
        for a in answers:
            if "error" in a:
                e = a["error"]
                seq.append({"error": error_json(e) if isinstance(e, PgError) else dict(e)})
            else:
                item = {}
                if a.get("columns") is not None:
                    item["columns"] = columns_json(a["columns"])
                    item["rows"] = _rows_json(a.get("rows") or [])
                if a.get("tag") is not None:
                    item["tag"] = a["tag"]
                seq.append(item)
        return self._add(sequence=seq)

    def handle(self, fn: Callable[[Query], Any]) -> Callable:
        spec = dict(self._spec)
        spec["callback"] = True
        self._pg._add_rule_spec(spec, handler=fn)
        return fn

    __call__ = handle

    def copy_both(self, handler: Callable | None = None, *, script: list | None = None, binary: bool = False,
                  columns: int = 0, tag: str | None = None) -> RemoteRule:
        if (handler is None) == (script is None):
            raise ValueError("copy_both() needs exactly one of handler= or script=")
        spec = dict(self._spec)
        spec.pop("columns", None)
        if script is not None:
            both = {"both": to_json([_step(s) for s in script])}
            if binary:
                both["binary"] = True
            if tag:
                both["tag"] = tag
            return self._pg._add_rule_spec({**spec, "copy": both})
        spec["callback"] = "copy_both"
        return self._pg._add_rule_spec(spec, handler=handler, copy_both=True)


def _step(step):
    if isinstance(step, (tuple, list)) and len(step) == 2:
        return {"recv": step[0], "send": step[1]}
    return step


class RemoteRules:
    """`pg.rules` in subprocess mode: `.rules` (the child's rules, as dicts) and `.clear()`."""

    def __init__(self, pg: "ChildPostgres"):
        self._pg = pg

    @property
    def rules(self) -> list[dict]:
        return self._pg._api.get("/rules")["rules"]

    def clear(self) -> None:
        self._pg._api.delete("/rules")

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


class RemoteFault(SimpleNamespace):
    """A fault plan living in the child: give it to `pg.remove_fault`."""


class RemoteCopy(SimpleNamespace):
    """One COPY the child saw (the attributes of session.copy.CopyRecord, rows as tuples)."""


# ---------------------------------------------------------------------------------- COPY both
class RemoteChannel:
    """A COPY-both channel in the child, for a handler running here (recv/send/done/iteration)."""

    def __init__(self, api: AdminClient, chan_id: int):
        self._api = api
        self._id = chan_id
        self.client_done = False
        self._closed = False

    def recv(self, timeout: float | None = 10.0) -> bytes | None:
        import base64

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 30.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                out = self._api.get(f"/channels/{self._id}/recv?timeout={min(left, 30.0):.3f}", timeout=left + 10)
            except AdminRequestError as e:
                if e.status == 404:
                    self.client_done = True
                    return None
                raise
            if out.get("done"):
                self.client_done = True
                return None
            if "data" in out:
                return base64.b64decode(out["data"])
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no CopyData from the client within {timeout} s")

    def __iter__(self):
        while True:
            item = self.recv()
            if item is None:
                return
            yield item

    def send(self, data: bytes | str) -> None:
        import base64

        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            self._api.post(f"/channels/{self._id}/send", {"data": base64.b64encode(bytes(data)).decode("ascii")})
        except AdminRequestError as e:
            raise ConnectionError("the COPY channel is closed") from None if e.status in (404, 409) else e

    def done(self) -> None:
        try:
            self._api.post(f"/channels/{self._id}/done", {})
        except AdminRequestError:
            pass
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


# ---------------------------------------------------------------------------------- the walsender
class RemoteTransaction:
    """`with pg.wal.transaction() as tx:` in subprocess mode: changes sent as one transaction."""

    def __init__(self, wal: "RemoteWal", kw: dict):
        self._wal = wal
        self._kw = kw
        self.changes: list = []
        self.commit_lsn = self.end_lsn = None

    def _row(self, kind: str, table: str, row: dict, old=None, lsn=None) -> None:
        from .protocol.pgoutput import UNCHANGED_TOAST

        row = dict(row)
        unchanged = [k for k, v in row.items() if v is UNCHANGED_TOAST]
        for k in unchanged:
            del row[k]
        spec = {"table": table, "row": to_json(row)}
        if unchanged:
            spec["unchanged"] = unchanged
        if old is not None:
            spec["old"] = to_json(old)
        if lsn is not None:
            spec["lsn"] = lsn
        self.changes.append({kind: spec})

    def insert(self, table, row, *, lsn=None):
        self._row("insert", table, row, lsn=lsn)

    def update(self, table, row, old=None, *, lsn=None):
        self._row("update", table, row, old, lsn)

    def delete(self, table, row, *, lsn=None):
        self._row("delete", table, row, lsn=lsn)

    def truncate(self, tables, cascade=False, restart_identity=False, *, lsn=None):
        tables = [tables] if isinstance(tables, str) else list(tables)
        self.changes.append({"truncate": {"tables": tables, "cascade": cascade, "restart_identity": restart_identity,
                                          **({"lsn": lsn} if lsn else {})}})

    def message(self, prefix, content, transactional=True, *, lsn=None):
        if isinstance(content, bytes):
            content = content.decode("utf-8")
        self.changes.append({"message": {"prefix": prefix, "content": content, "transactional": transactional,
                                         **({"lsn": lsn} if lsn else {})}})

    def commit(self):
        out = self._wal._emit([{"transaction": {**to_json(self._kw), "changes": self.changes}}])
        self.commit_lsn = self.end_lsn = out["lsn"]
        return self

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.commit()


class RemoteWal:
    """`pg.wal` in subprocess mode: emit changes and read slots/feedback through the control API.
    LSNs are text ("0/1000A28"); transactions' `end_lsn` is the WAL end after them."""

    def __init__(self, pg: "ChildPostgres"):
        self._pg = pg

    def _emit(self, section) -> dict:
        body = {"stream": section} if isinstance(section, list) else section
        return self._pg._api.post("/replication", body)

    def configure(self, **kw) -> None:
        system = {k: kw.pop(k) for k in ("systemid", "timeline", "dbname", "start_lsn", "first_xid") if k in kw}
        body = {k: v for k, v in kw.items() if v is not None}
        if system:
            body["system"] = system
        self._emit(body)

    def transaction(self, **kw) -> RemoteTransaction:
        return RemoteTransaction(self, kw)

    def _single(self, method: str, *args, **kw):
        tx = self.transaction()
        getattr(tx, method)(*args, **kw)
        return tx.commit()

    def insert(self, table, row, **kw):
        return self._single("insert", table, row, **kw)

    def update(self, table, row, old=None, **kw):
        return self._single("update", table, row, old, **kw)

    def delete(self, table, row, **kw):
        return self._single("delete", table, row, **kw)

    def truncate(self, tables, **kw):
        return self._single("truncate", tables, **kw)

    def message(self, prefix, content, transactional=False, **kw):
        if transactional:
            return self._single("message", prefix, content, True, **kw)
        if isinstance(content, bytes):
            content = content.decode("utf-8")
        return self._emit([{"message": {"prefix": prefix, "content": content, "transactional": False}}])

    def pause(self, seconds: float) -> None:
        self._emit([{"pause": seconds}])

    def keepalive(self, reply_requested: bool = False) -> None:
        self._emit([{"keepalive": {"reply_requested": reply_requested}}])

    def fault(self, kind: str = "disconnect", code: str = "XX000", message: str = "fakepm: scripted walsender error",
              once: bool = True) -> None:
        self._emit([{"fault": {"kind": kind, "code": code, "message": message, "once": once}}])

    def publication(self, name: str, tables=None, publish=("insert", "update", "delete", "truncate")) -> None:
        spec = {"publish": list(publish)}
        if tables is None:
            spec["all_tables"] = True
        else:
            spec["tables"] = list(tables)
        self._emit({"publications": {name: spec}})

    def create_slot(self, name: str, kind: str = "logical", **kw) -> None:
        self._emit({"slots": [{"name": name, "type": kind, **kw}]})

    @property
    def lsn(self) -> str:
        return self._pg._api.get("/replication")["lsn"]

    @property
    def slots(self) -> dict:
        return {name: SimpleNamespace(name=name, **s) for name, s in self._pg._api.get("/replication")["slots"].items()}

    @property
    def feedback(self) -> list:
        return self._pg._api.get("/replication")["feedback"]

    def wait_for_flush(self, lsn, timeout: float = 5.0) -> dict:
        return self._wait("flush", lsn, timeout)

    def wait_for_apply(self, lsn, timeout: float = 5.0) -> dict:
        return self._wait("apply", lsn, timeout)

    def _wait(self, field: str, lsn, timeout: float) -> dict:
        lsn = getattr(lsn, "end_lsn", lsn)
        try:
            return self._pg._api.post("/replication/wait", {"field": field, "lsn": lsn, "timeout": timeout},
                                      timeout=timeout + 10)
        except AdminRequestError as e:
            if e.status == 408:
                raise TimeoutError(e.body.get("error")) from None
            raise


# ---------------------------------------------------------------------------------- the server
class ChildPostgres(Addresses):
    """FakePostgres's API over a server running in a child process (see the module docstring)."""

    def __init__(self, scenario=None, *, python: str | None = None, **kwargs):
        if kwargs.get("hooks"):
            raise ValueError("hooks= run on the server's I/O thread: they cannot run in a child process")
        kwargs.pop("hooks", None)
        if kwargs.get("backend") is not None and not isinstance(kwargs["backend"], str):
            raise ValueError("backend= in a child process is a string (postgres, postgres:15 or a URL)")
        if "schema" in kwargs:
            kwargs["schema"] = [os.path.abspath(os.fspath(s)) if isinstance(s, os.PathLike) else s
                                for s in kwargs["schema"]]
        self._kwargs = kwargs
        self._python = python or sys.executable
        self._scenarios: list[str] = []
        self._pending: list[tuple] = []  # (spec, RemoteRule, handler, copy_both) added before start()
        self._pending_calls: list[tuple] = []  # other requests made before start(), in order
        self._handlers: dict[int, tuple] = {}
        self._proc: subprocess.Popen | None = None
        self._api: AdminClient | None = None
        self._info: dict = {}
        self._poller: threading.Thread | None = None
        self._pool = None  # handler threads (see _workers)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.host = kwargs.get("host", "127.0.0.1")
        self.port = 0
        self.user = kwargs.get("user") or "postgres"
        self.unix_socket_dir = None
        self.config = SimpleNamespace(version=str(kwargs.get("version", "")), database=kwargs.get("database"),
                                      tls=bool(kwargs.get("tls")))
        self.rules = RemoteRules(self)
        self.wal = RemoteWal(self)
        self.admin_url: str | None = None
        if scenario is not None:
            self.load(scenario)

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "ChildPostgres":
        if self._proc is not None:
            return self
        token = secrets.token_urlsafe(24)
        env = dict(os.environ)
        pkg_parent = os.path.dirname(_PACKAGE_DIR)  # the child imports this very fakepm
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen([self._python, "-m", "fakepm.admin"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, text=True, start_new_session=True)
        try:
            cfg = {"kwargs": to_json(self._kwargs), "scenarios": self._scenarios, "token": token}
            self._proc.stdin.write(json.dumps(cfg) + "\n")
            self._proc.stdin.flush()
            line = _readline(self._proc, START_TIMEOUT)
            info = json.loads(line) if line.strip() else {"error": f"the child exited ({self._proc.poll()})"}
            if "error" in info:
                raise _start_error(info)
        except BaseException:
            self._kill()
            raise
        self._info = info
        self.host, self.port, self.user = info["host"], info["port"], info["user"]
        self.unix_socket_dir = info.get("unix_socket_dir")
        self.config = SimpleNamespace(version=info.get("version"), database=info.get("database"),
                                      tls=bool(self._kwargs.get("tls")))
        self.admin_url = info["admin"]
        self._api = AdminClient(info["admin"], token=token)
        pending, self._pending = self._pending, []
        for spec, rule, handler, copy in pending:
            self._post_rule(spec, rule, handler, copy)
        calls, self._pending_calls = self._pending_calls, []
        for method, path, body in calls:
            self._api.request(method, path, body)
        return self

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._stopping.set()
        try:
            proc.stdin.close()  # the child stops its server and exits
        except OSError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            self._kill()
        if self._poller is not None:
            self._poller.join(5)
            self._poller = None
        if self._pool is not None:
            self._pool.stop()  # a handler still blocked is a daemon thread: it never holds up the exit
            self._pool = None
        if proc.stdout is not None:
            proc.stdout.close()
        if self._api is not None:
            self._api.close()
        self._proc = None

    close = stop

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self._proc = None

    def __enter__(self) -> "ChildPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):
        try:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _require_started(self) -> None:
        if self._proc is None:
            raise RuntimeError("FakePostgres is not started: use `with FakePostgres(subprocess=True) as pg:` "
                               "or pg.start()")

    def _request(self, method: str, path: str, body=None):
        """A request now, or (before start) when the child starts."""
        if self._api is None:
            self._pending_calls.append((method, path, body))
            return None
        return self._api.request(method, path, body)[1]

    # ------------------------------------------------------------------ addresses
    @property
    def pid(self) -> int | None:
        """The child process's id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def ca_file(self) -> str | None:
        return self._info.get("ca_file")

    # ------------------------------------------------------------------ rules
    def on(self, query: str | None = None, *, regex: str | None = None, params: list | None = None,
           times: int | None = None, expect: int | bool | None = None, priority: int = 0, user: str | None = None,
           database: str | None = None, application_name: str | None = None, name: str | None = None,
           columns=None, param_types: list | None = None, state: dict | None = None) -> RemoteRuleBuilder:
        if query is None and regex is None:
            raise ValueError("pg.on() needs a query or regex=")
        spec: dict = {"query": query} if query is not None else {"regex": regex}
        for key, v in (("params", to_json(list(params)) if params is not None else None), ("times", times),
                       ("expect", expect), ("priority", priority or None), ("user", user), ("database", database),
                       ("application_name", application_name), ("name", name),
                       ("columns", columns_json(columns)), ("param_types", list(param_types) if param_types else None),
                       ("state", dict(state) if state else None)):
            if v is not None:
                spec[key] = v
        spec["source"] = _caller_source()
        return RemoteRuleBuilder(self, spec)

    def handler(self, query: str | None = None, *, regex: str | None = None, columns=None, **kw) -> Callable:
        return self.on(query, regex=regex, columns=columns, **kw).handle

    def _add_rule_spec(self, spec: dict, handler=None, copy_both: bool = False) -> RemoteRule:
        rule = RemoteRule(self, spec)
        if self._api is None:
            self._pending.append((spec, rule, handler, copy_both))
        else:
            self._post_rule(spec, rule, handler, copy_both)
        return rule

    def _post_rule(self, spec, rule, handler, copy_both) -> None:
        out = self._api.post("/rules", spec)["rules"][0]
        rule.id = out["id"]
        rule._info = out
        if handler is not None:
            with self._lock:
                self._handlers[rule.id] = (handler, spec.get("columns") is not None, copy_both)
            self._ensure_poller()

    def remove_rule(self, rule) -> bool:
        rid = rule.id if isinstance(rule, RemoteRule) else rule["id"] if isinstance(rule, dict) else rule
        try:
            self._api.delete(f"/rules/{rid}")
        except AdminRequestError as e:
            if e.status == 404:
                return False
            raise
        return True

    def table(self, name: str, columns, *, key=(), rows=(), replica_identity: str = "d"):
        spec = {"columns": columns_json(columns), "key": list(key), "rows": _rows_json(rows),
                "replica_identity": replica_identity}
        return self._request("POST", "/tables", {name: spec})

    def load(self, path):
        path = os.path.abspath(os.fspath(path))
        if self._api is None:
            self._scenarios.append(path)
            return None
        try:
            return self._api.post("/load", {"path": path})
        except AdminRequestError as e:
            raise ValueError(str(e)) from None

    # ------------------------------------------------------------------ journal & verification
    def _entries(self, which: str) -> list:
        from .session.hub import JournalEntry

        self._require_started()
        data = self._api.get(f"/queries?unmatched={'1' if which == 'unmatched' else '0'}")
        out = []
        for d in data[which]:
            e = JournalEntry(sql=d["sql"], params=from_json(d["params"]), protocol=d["protocol"],
                             connection=d["connection"], pid=d["pid"], user=d["user"], database=d["database"],
                             rule=d["rule"], matched=d["matched"], error=d["error"], tag=d["tag"],
                             statement=d["statement"], time=d["time"], sql_size=d.get("sql_size"))
            out.append(e)
        return out

    @property
    def queries(self) -> list:
        return self._entries("queries")

    @property
    def unmatched(self) -> list:
        return self._entries("unmatched")

    @property
    def events(self) -> list:
        self._require_started()
        return [from_json(e) for e in self._api.get("/events")["events"]]

    @property
    def copies(self) -> list:
        self._require_started()
        out = []
        for c in self._api.get("/copies")["copies"]:
            c = from_json(c)
            if "rows" in c:
                c["rows"] = [tuple(r) if isinstance(r, list) else r for r in c["rows"]]
            for key in ("first_row", "last_row"):
                if isinstance(c.get(key), list):
                    c[key] = tuple(c[key])
            out.append(RemoteCopy(**c))
        return out

    def problems(self) -> list[str]:
        self._require_started()
        status, body = self._api.request("POST", "/verify", expect=(200, 409))
        return [] if status == 200 else list(body.get("problems") or [body.get("report", "")])

    def verify(self) -> None:
        __tracebackhide__ = True
        problems = self.problems()
        if problems:
            raise AssertionError("fakepm verification failed:\n- " + "\n- ".join(problems))

    def reset(self, *, keep_scenarios: bool = False) -> None:
        self._request("POST", "/reset", {"scenarios": keep_scenarios})

    @property
    def state(self) -> str:
        return self._api.get("/state")["state"]

    def set_state(self, state: str, connection: int | None = None) -> None:
        body = {"state": state}
        if connection is not None:
            body["connection"] = connection
        self._request("PUT", "/state", body)

    # ------------------------------------------------------------------ faults & connections
    def fault(self, plan=None, **keys) -> RemoteFault:
        out = self._api.post("/faults", _fault_json(plan if plan is not None else keys))["faults"][0]
        return RemoteFault(**out)

    def remove_fault(self, plan: RemoteFault) -> None:
        try:
            self._api.delete(f"/faults/{plan.id}")
        except AdminRequestError as e:
            if e.status != 404:
                raise

    def clear_faults(self) -> None:
        self._request("DELETE", "/faults")

    def refuse_new_connections(self, refuse: bool = True) -> None:
        self._request("POST", "/connections/refuse" if refuse else "/connections/accept", {})

    def disconnect_all(self) -> None:
        self._api.post("/connections/disconnect", {})

    @property
    def connections(self) -> list:
        out = []
        for c in self._api.get("/connections")["connections"]:
            c = from_json(c)
            out.append(ConnectionInfo(**{k: c.get(k) for k in ("id", "pid", "user", "database", "application_name",
                                                               "parameters", "peer", "tls", "replication")}))
        return out

    def transcripts(self) -> dict:
        return {int(k): [tuple(x) for x in v] for k, v in self._api.get("/transcripts")["transcripts"].items()}

    def notify(self, channel: str, payload: str = "") -> int:
        return self._api.post("/notify", {"channel": channel, "payload": payload})["delivered"]

    # ------------------------------------------------------------------ callbacks (handlers run here)
    def _ensure_poller(self) -> None:
        with self._lock:
            if self._poller is not None:
                return
            self._poller = threading.Thread(target=self._poll, name="fakepm-callbacks", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        api = self._api
        while not self._stopping.is_set():
            try:
                calls = api.get("/callbacks?wait=1", timeout=15)["calls"]
            except Exception:  # noqa: BLE001 - the child went away: nothing left to answer
                if self._stopping.wait(0.2) or not self.running:
                    return
                continue
            for call in calls:
                self._workers().submit(self._run_call, api, call)

    def _workers(self) -> "_Pool":
        """Handler threads, reused (each keeps its keep-alive connection to the child): handlers may block
        (on a test's Event), so they never run on the polling thread."""
        with self._lock:
            if self._pool is None:
                self._pool = _Pool()
            return self._pool

    def _run_call(self, api: AdminClient, call: dict) -> None:
        if call["kind"] == "copy_both":
            self._run_copy(api, call)
            return
        rid = call["rule"]["id"]
        with self._lock:
            fn, has_columns, _ = self._handlers.get(rid, (None, False, False))
        if fn is None:
            body = {"error": {"code": "XX000", "message": f"fakepm: no handler for rule {rid} in the test process"}}
        else:
            try:
                body = answer_json(fn(query_of(call["query"])), has_columns=has_columns)
            except PgError as e:
                body = {"error": error_json(e)}
            except Exception as e:  # noqa: BLE001 - user code: reported as XX000 and by verify()
                body = {"error": {"code": "XX000", "message": f"fakepm handler raised {type(e).__name__}: {e}"},
                        "failure": traceback.format_exc()}
        try:
            api.post(f"/callbacks/{call['id']}", body)
        except Exception:  # noqa: BLE001 - the call timed out or the child stopped
            pass

    def _run_copy(self, api: AdminClient, call: dict) -> None:
        with self._lock:
            fn = self._handlers.get(call["rule"]["id"], (None,))[0]
        channel = RemoteChannel(api, call["channel"])
        body: dict = {"done": True}
        try:
            if fn is None:
                raise PgError("XX000", f"fakepm: no COPY both handler for rule {call['rule']['id']} in the test process")
            fn(channel)
        except PgError as e:
            body = {"error": error_json(e)}
        except Exception as e:  # noqa: BLE001 - user code: the client gets XX000
            body = {"error": {"code": "XX000", "message": f"fakepm COPY both handler raised {type(e).__name__}: {e}",
                              "detail": traceback.format_exc()[-2000:]}}
        try:
            api.post(f"/callbacks/{call['id']}", body)
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port} pid={self.pid}" if self._proc is not None else "stopped"
        return f"<FakePostgres(subprocess=True) {state}>"


class _Pool:
    """Up to `size` daemon threads running submitted calls (a handler blocked forever never keeps the
    test process from exiting, as ThreadPoolExecutor's threads would)."""

    def __init__(self, size: int = 16):
        import queue

        self._q: "queue.SimpleQueue" = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._size = size
        self._lock = threading.Lock()

    def submit(self, fn, *args) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                t = threading.Thread(target=self._run, name=f"fakepm-handler-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        self._q.put((fn, args))

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._q.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - _run_call reports its own errors
                pass

    def stop(self) -> None:
        for _ in self._threads:
            self._q.put(None)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the child's stdout within `timeout` (or '' if it exited first)."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not box:
        raise TimeoutError(f"the fakepm child process printed nothing within {timeout:g} s")
    return box[0]


def _start_error(info: dict) -> Exception:
    if info.get("kind") == "ScenarioError":
        from .scenario.context import Problem, ScenarioError

        return ScenarioError([Problem(*p) for p in info.get("problems") or []])
    kind = info.get("kind")
    exc = {"ValueError": ValueError, "OSError": OSError, "TypeError": TypeError}.get(kind, RuntimeError)
    return exc(info.get("error"))


__all__ = ["ChildPostgres", "RemoteRule", "RemoteChannel"]
