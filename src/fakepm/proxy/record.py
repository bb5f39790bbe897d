"""Record a real PostgreSQL conversation as a scenario file fakepm replays byte for byte.

The Recorder is a proxy hook that reads raw frames (it never asks the relay to decode a
message for it): per connection a `Tap` attributes each backend message to the frontend
message it answers (PostgreSQL answers in order; after an error in the extended protocol it
skips to Sync) and keeps the frames. They become readable entries (proxy/recording.py) only
when the file is written. Every statement is kept, in recorded order -- the same statement
answered again is written again (counts 0, 0, 1 stay 0, 0, 1 on replay; a COMMIT that failed
once fails once) -- and `fakepm serve FILE` replays it (proxy/replay.py).

What is never written: passwords, SCRAM messages (the recorder only sees traffic after
authentication, and the upstream URL is not stored), the string constant after PASSWORD in
SQL (every spelling). `redact=[regex, ...]` replaces matches in SQL string constants, bound
values, row values, error texts and COPY data with "[REDACTED]" (redacted values replay as
"[REDACTED]").

Modes (like vcrpy's record modes): `once` (refuse when the file exists), `new` (keep the
file's entries, append what this run recorded), `all` (write everything afresh), `none`
(never record: replay the file with `fakepm serve`).
"""

from __future__ import annotations

import os
import re
import struct
import threading
from typing import Any, Iterable

import yaml

from ..protocol import messages as m
from ..sql import redact_passwords, replace_literals
from .hooks import ConnInfo, ProxyHooks
from .recording import FlowList, FlowMap, flatten, frames_to_parts, value_out
from .upstream import UpstreamURL

MODES = ("once", "new", "all", "none")
REDACTED = "[REDACTED]"
_I16 = struct.Struct("!h")
_U16 = struct.Struct("!H")  # counts: PostgreSQL takes up to 65535 parameters
_I32 = struct.Struct("!i")


class RecordError(Exception):
    """Recording cannot proceed (mode once and the file exists, bad regex, ...)."""


def _cstr(body: bytes, pos: int) -> tuple[str, int]:
    end = body.index(b"\0", pos)
    return body[pos:end].decode("utf-8", "replace"), end + 1


class _Rec:
    """One entry being recorded: its frontend key fields and the reply frames."""

    __slots__ = ("kind", "sql", "types", "params", "pformats", "rformats", "frames", "steps", "bind_error",
                 "described", "tx", "conn", "copy_at", "copy_bytes", "ok", "call")

    def __init__(self, kind: str, sql: str = "", types: tuple = (), conn: int = 0):
        self.kind = kind
        self.sql = sql
        self.types = types
        self.params: tuple = ()
        self.pformats: tuple = ()
        self.rformats: tuple = ()
        self.frames: list = []
        self.steps: list | None = None  # bind entries: [(op, frames)]
        self.bind_error = None
        self.described = False
        self.tx: str | None = None
        self.conn = conn
        self.copy_at = -1  # index in frames of a CopyInResponse
        self.copy_bytes = 0
        self.ok = True
        self.call = b""


class Tap:
    """One connection's frames -> entries (sans-I/O; the relay's thread calls it)."""

    def __init__(self, recorder: "Recorder", conn: int):
        self.rec = recorder
        self.conn = conn
        self.statements: dict[str, tuple] = {}
        self.portals: dict[str, _Rec] = {}
        self.pending: list = []  # FIFO of [op, _Rec | None]
        self.head = 0
        self.group: list[_Rec] = []  # entries finished since the last ReadyForQuery
        self.copy: _Rec | None = None
        self.orphans: list = []  # frames before any pending op (async notices, notifications)
        self._rows_to: list | None = None  # where the next DataRow goes (the current reply)

    # ------------------------------------------------------------------ client
    def client(self, t: bytes, body: bytes) -> None:
        k = t[0]
        if k == 81:  # Query
            r = _Rec("query", body[:-1].decode("utf-8", "replace"), conn=self.conn)
            self.pending.append(("Q", r))
        elif k == 80:  # Parse
            p = m.Parse.decode(bytes(body))
            self.statements[p.name] = (p.sql, p.param_oids)
            self.pending.append(("P", _Rec("parse", p.sql, p.param_oids, self.conn)))
        elif k == 66:  # Bind
            b = m.Bind.decode(bytes(body))
            sql, oids = self.statements.get(b.statement, ("", ()))
            r = _Rec("bind", sql, oids, self.conn)
            r.pformats, r.params, r.rformats = tuple(b.param_formats), tuple(b.params), tuple(b.result_formats)
            r.steps = []
            self.portals[b.portal] = r
            self.pending.append(("B", r))
        elif k == 68:  # Describe
            name, _ = _cstr(body, 1)
            if body[:1] == b"S":
                sql, oids = self.statements.get(name, ("", ()))
                self.pending.append(("DS", _Rec("describe", sql, oids, self.conn)))
            else:
                self.pending.append(("DP", self.portals.get(name)))
        elif k == 69:  # Execute
            name, _ = _cstr(body, 0)
            self.pending.append(("E", self.portals.get(name)))
        elif k == 83:  # Sync
            if self.copy is None:  # PostgreSQL ignores Sync (and Flush) during COPY FROM STDIN
                self.pending.append(("S", None))
        elif k == 67:  # Close
            self.pending.append(("C", None))
        elif k == 70:  # FunctionCall
            r = _Rec("call", conn=self.conn)
            r.call = bytes(body)
            self.pending.append(("F", r))
        elif k == 100 and self.copy is not None:  # CopyData
            self.copy.copy_bytes += len(body)

    # ------------------------------------------------------------------ server
    def _front(self):
        return self.pending[self.head] if self.head < len(self.pending) else None

    def _pop(self) -> None:
        self.head += 1
        if self.head > 256:
            del self.pending[:self.head]
            self.head = 0

    def _finish(self, r: _Rec | None) -> None:
        if r is not None and r.kind != "bind":  # bind entries are kept from their BindComplete on
            self.rec.add(r)
        if r is not None:
            self.group.append(r)

    def _skip_to_sync(self) -> None:
        while True:
            f = self._front()
            if f is None or f[0] in ("S", "Q"):
                return
            self._pop()

    def server(self, kind: int, body: bytes) -> None:
        if kind == 68:  # DataRow: the common case goes where the statement's last message went
            to = self._rows_to
            if to is not None:
                to.append((kind, body))
                return
        self._rows_to = None
        front = self._front()
        op = front[0] if front is not None else None
        r = front[1] if front is not None else None
        if kind == 90:  # ReadyForQuery
            tx = chr(body[0]) if body else "I"
            if op in ("Q", "F") and r is not None:
                r.frames[:0] = self.orphans
                self.orphans = []
                r.tx = tx
                self._finish(r)
                self._pop()
            elif op == "S":
                self._pop()
            for g in self.group:
                g.tx = tx
            self.group = []
            self.copy = None
            return
        if front is None:
            self.orphans.append((kind, body))
            return
        if self.orphans and op in ("Q", "E", "F"):
            target = r.frames if op != "E" or r is None else None
            if target is not None:
                target.extend(self.orphans)
                self.orphans = []
        if op == "P":
            if kind == 49:  # ParseComplete
                self._finish(r)
                self._pop()
                return
            if kind == 69:  # ErrorResponse
                r.ok = False
                r.frames.append((kind, body))
                self._finish(r)
                self._pop()
                self._skip_to_sync()
                return
            r.frames.append((kind, body))
            return
        if op == "B":
            if kind == 50:  # BindComplete
                self.rec.add(r)
                self.group.append(r)
                self._pop()
                return
            if kind == 69:
                r.bind_error = body
                self.rec.add(r)
                self.group.append(r)
                self._pop()
                self._skip_to_sync()
                return
            r.frames.append((kind, body))  # a notice before BindComplete
            return
        if op == "DS":
            r.frames.append((kind, body))
            if kind in (84, 110, 69):  # RowDescription, NoData, ErrorResponse
                self._finish(r)
                self._pop()
                if kind == 69:
                    self._skip_to_sync()
            return
        if op == "DP":
            if r is not None:
                r.steps.append([(kind, body)])
                if not r.rformats and kind == 84:
                    pass
            if kind in (84, 110, 69):
                self._pop()
                if kind == 69:
                    self._skip_to_sync()
            return
        if op == "E":
            if r is None:  # an Execute of a portal we never saw bound: nothing to keep
                if kind in (67, 73, 115, 69):
                    self._pop()
                    if kind == 69:
                        self._skip_to_sync()
                return
            step = self._step(r)
            step.append((kind, body))
            self._rows_to = step
            if kind == 71:  # CopyInResponse: Syncs the client sent before it are ignored by the server
                self.copy = r
                rest = [x for x in self.pending[self.head + 1:] if x[0] != "S"]
                del self.pending[self.head + 1:]
                self.pending.extend(rest)
            if kind in (67, 73, 115, 69):  # CommandComplete, EmptyQuery, PortalSuspended, Error
                r.steps.append(None)  # the step is complete
                self.copy = None
                self._pop()
                if kind == 69:
                    self._skip_to_sync()
            return
        if op in ("Q", "F"):
            r.frames.append((kind, body))
            self._rows_to = r.frames
            if kind == 71:
                r.copy_at = len(r.frames) - 1
                self.copy = r
            elif kind in (67, 69) and self.copy is r:
                self.copy = None
            return
        if op == "C":
            if kind == 51:  # CloseComplete
                self._pop()
            return
        if op == "S":  # a notice, notification or ParameterStatus before ReadyForQuery: the last answer's
            last = self.group[-1] if self.group else None
            if last is not None and kind in (78, 65, 83):
                if last.kind == "bind":
                    steps = [x for x in last.steps if x]
                    if steps:
                        steps[-1].append((kind, body))
                    else:
                        last.frames.append((kind, body))
                else:
                    last.frames.append((kind, body))
            return

    @staticmethod
    def _step(r: _Rec) -> list:
        steps = r.steps
        if not steps or steps[-1] is None or (len(steps[-1]) == 1 and steps[-1][0][0] in (84, 110)):
            if steps and steps[-1] is None:
                steps.pop()
            steps.append([])
        return steps[-1]


class Recorder(ProxyHooks):
    """A proxy hook that records the conversation; `save()` writes the file."""

    raw_frames = True  # proxy/hooked.py: give this hook raw frames, decode nothing for it

    def __init__(self, path: str | os.PathLike, *, mode: str = "all", redact: Iterable[str] = (),
                 upstream: str | UpstreamURL | None = None, match: str = "shape"):
        if mode not in MODES:
            raise RecordError(f"record mode {mode!r}: expected one of {', '.join(MODES)}")
        self.path = os.fspath(path)
        self.mode = mode
        if mode == "once" and os.path.exists(self.path):
            raise RecordError(f"{self.path} exists and the record mode is 'once' (use 'new' to append, "
                              "'all' to re-record)")
        if mode == "none":
            raise RecordError("record mode 'none' records nothing: replay the file with `fakepm serve`")
        try:
            self.redact = [re.compile(r) for r in redact]
        except re.error as e:
            raise RecordError(f"--redact: bad regular expression: {e}") from None
        self.upstream = upstream if isinstance(upstream, UpstreamURL) or upstream is None else UpstreamURL.parse(upstream)
        self.match = match
        self.server: dict = {}
        self.entries: list[_Rec] = []
        self.connections: list[dict] = []
        self._conn_index: dict[int, int] = {}
        self._lock = threading.Lock()
        self._existing: dict | None = None
        self._shared: dict = {}
        self._decoded: dict = {}
        if mode == "new" and os.path.exists(self.path):
            from ..scenario.loader import read_plain

            self._existing = read_plain(self.path) or {}

    # ------------------------------------------------------------------ hook side
    def open_tap(self, conn: ConnInfo) -> Tap | None:
        if conn.replication:
            return None
        with self._lock:
            if not self.server:
                params = dict(conn.upstream_parameters)
                params.pop("session_authorization", None)  # follows the connecting user
                params.pop("application_name", None)  # the client's own setting
                server = {"version": params.pop("server_version", "")}
                client_db = conn.parameters.get("database") or conn.parameters.get("user") or conn.database
                if client_db:
                    server["database"] = client_db  # the name clients asked for (replay's DSN names it)
                server["parameters"] = params
                self.server = server
            self._conn_index[conn.id] = len(self.connections)
            user = conn.parameters.get("user") or conn.user  # what the client asked for (replay matches it)
            c: dict = {"user": user, "database": conn.parameters.get("database") or user}
            base = self.server.get("parameters") or {}
            changed = {k: v for k, v in conn.upstream_parameters.items()
                       if k not in ("server_version", "session_authorization") and base.get(k) != v}
            if changed:
                c["parameters"] = changed
            if conn.pid:
                c["pid"], c["key"] = conn.pid, conn.secret
            self.connections.append(c)
            return Tap(self, len(self.connections))

    def on_refused(self, conn: ConnInfo, error) -> None:
        """The upstream refused a client's session (no such database or role ...): replay refuses it too."""
        if conn.replication:
            return
        fields = {"severity": error.severity, "code": error.code, "message": error.message}
        if error.detail:
            fields["detail"] = error.detail
        if error.hint:
            fields["hint"] = error.hint
        user = conn.parameters.get("user") or conn.user
        with self._lock:
            self.connections.append({"user": user, "database": conn.parameters.get("database") or user,
                                     "error": fields})

    def add(self, r: _Rec) -> None:
        with self._lock:
            self.entries.append(r)

    # ------------------------------------------------------------------ output
    def _scrub(self, v: Any) -> Any:
        if not self.redact:
            return v
        if isinstance(v, str):
            for r in self.redact:
                v = r.sub(REDACTED, v)
            return v
        if isinstance(v, bytes):
            return v
        if isinstance(v, dict):
            return type(v)({k: self._scrub(x) for k, x in v.items()})
        if isinstance(v, list):
            return type(v)(self._scrub(x) for x in v)
        return v

    def _scrub_sql(self, sql: str) -> str:
        sql = redact_passwords(sql, "'" + REDACTED + "'")  # every spelling: '', E'', U&'', $$, $tag$
        if self.redact:
            sql = replace_literals(sql, lambda _tok, text: self._scrub(text))
        return sql

    def _parts(self, frames, formats=()) -> list:
        big = len(frames) >= 8
        if big:  # a large result seen again is decoded once (pg8000's benchmarks repeat 10,000 rows)
            sig = _frames_signature(frames, formats)
            cached = self._decoded.get(sig)
            if cached is not None:
                return list(cached)
        parts = self._decode_parts(frames, formats)
        if big:
            self._decoded[sig] = parts
        return list(parts)

    def _decode_parts(self, frames, formats) -> list:
        parts = frames_to_parts(frames, formats)
        if self.redact:
            parts = self._scrub(parts)
        # a large result or COPY seen again is written once and referred to (a YAML alias), and so is
        # a row repeated within a large result
        for p in parts:
            for key in ("rows", "copy_data"):
                v = p.get(key)
                if v is not None and len(v) >= 8:
                    sig = (key, _signature(v))
                    shared = self._shared.get(sig)
                    if shared is None:
                        if key == "rows":
                            seen: dict = {}
                            v[:] = [seen.setdefault(tuple(map(_hashable, row)), row) for row in v]
                        shared = self._shared[sig] = v
                    p[key] = shared
        return parts

    def _entry(self, r: _Rec) -> dict | None:
        e: dict = {r.kind: self._scrub_sql(r.sql)} if r.kind != "call" else {"call": r.call}
        if r.types and any(r.types):
            e["types"] = FlowList(r.types)
        elif r.types:
            e["types"] = FlowList(r.types)
        if r.kind == "bind":
            if r.params:
                e["params"] = FlowList(self._scrub(value_out(p, bool(_fmt(r.pformats, i))))
                                       for i, p in enumerate(r.params))
            if r.pformats:
                e["param_formats"] = FlowList(r.pformats)
            if r.rformats:
                e["result_formats"] = FlowList(r.rformats)
            if r.bind_error is not None:
                e["bind_error"] = self._parts([(69, r.bind_error)])[0]["error"]
            steps = [s for s in (r.steps or ()) if s]
            replies = []
            for s in steps:
                replies.append(self._parts(s, r.rformats))
            if r.frames:  # notices before BindComplete: shown with the first reply
                head = self._parts(r.frames)
                replies = [head + (replies[0] if replies else [])] + replies[1:]
            described = bool(steps) and len(steps[0]) == 1 and steps[0][0][0] in (84, 110)
            if len(replies) == 1 or (len(replies) == 2 and described):
                flat = [p for rep in replies for p in rep]
                before = dict(e)
                flatten(e, flat)
                if "reply" in e:  # not in the usual order: keep the steps apart
                    e = before
                    e["steps"] = [flatten({}, rep) for rep in replies]
                elif described:
                    e["described"] = True
            elif replies:
                e["steps"] = [flatten({}, rep) for rep in replies]
        elif r.kind in ("query", "call"):
            if r.copy_at >= 0:
                head = self._parts(r.frames[:r.copy_at + 1])
                after = self._parts(r.frames[r.copy_at + 1:])
                flatten(e, head)
                e["after"] = after
                e["copy_received"] = r.copy_bytes
            else:
                flatten(e, self._parts(r.frames))
        else:
            flatten(e, self._parts(r.frames))
        if r.tx is not None and (r.tx != "I" or r.kind in ("parse", "describe")):
            e["tx"] = r.tx
        e["c"] = r.conn
        return e

    def document(self) -> dict:
        """The scenario as plain data (mode 'new': the existing file's entries first)."""
        with self._lock:
            recs = list(self.entries)
            conns = list(self.connections)
        # a Parse that never failed is implied (ParseComplete): only statements that failed keep theirs
        failed = {(r.sql, r.types) for r in recs if r.kind == "parse" and not r.ok}
        entries: list[dict] = []
        self._shared = {}
        self._decoded = {}
        for r in recs:
            if r.kind == "parse" and (r.sql, r.types) not in failed:
                continue
            e = self._entry(r)
            if e is None:
                continue
            prev = entries[-1] if entries else None
            if prev is not None and {k: v for k, v in prev.items() if k != "repeat"} == e:
                prev["repeat"] = prev.get("repeat", 1) + 1  # the same answer again: counted, not written again
                continue
            entries.append(e)
        doc: dict = {"description": "recorded by fakepm from a real PostgreSQL; `fakepm serve FILE` replays it"}
        old = self._existing or {}
        server = dict(old.get("server") or {}) or self.server
        if server:
            doc["server"] = server
        for k, v in old.items():
            if k not in ("description", "server", "recording"):
                doc[k] = v
        old_rec = old.get("recording") or {}
        doc["recording"] = {
            "match": old_rec.get("match", self.match),
            "connections": [FlowMap(c) for c in list(old_rec.get("connections") or []) + conns],
            "statements": list(old_rec.get("statements") or []) + entries,
        }
        return doc

    def dumps(self) -> str:
        doc = self.document()
        rec = doc.pop("recording")
        text = _dump(doc) if doc else ""
        # `recording:` last, its statements last: the loader reads this tail with the C YAML parser
        text += "recording:\n"
        text += f"  match: {rec['match']}\n"
        text += "  connections:\n" + "".join("  " + line + "\n" for line in _dump(rec["connections"]).splitlines()) \
            if rec["connections"] else "  connections: []\n"
        text += "  statements:\n" if rec["statements"] else "  statements: []\n"
        if rec["statements"]:  # one dump: shared results become aliases
            text += "".join("  " + line + "\n" for line in _dump(rec["statements"]).splitlines())
        return text

    def save(self) -> str:
        text = self.dumps()
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)
        return self.path

    def close(self) -> None:
        pass


def _frames_signature(frames, formats) -> tuple:
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for kind, body in frames:
        h.update(bytes((kind,)))
        h.update(len(body).to_bytes(4, "big"))
        h.update(body)
    return len(frames), tuple(formats), h.digest()


def _hashable(v):
    return v if not isinstance(v, list) else tuple(v)


def _signature(values: list):
    """A hashable digest of rows or COPY chunks (equal content, equal digest)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for v in values:
        h.update(repr(v).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return len(values), h.digest()


def _fmt(formats: tuple, i: int) -> int:
    if not formats:
        return 0
    return formats[0] if len(formats) == 1 else (formats[i] if i < len(formats) else 0)


try:
    _BaseDumper = yaml.CSafeDumper
except AttributeError:  # PyYAML without libyaml
    _BaseDumper = yaml.SafeDumper


class _Dumper(_BaseDumper):
    pass


def _str_presenter(dumper, data):
    # block style only for plain multi-line text that reads back the same ("|" keeps \n only)
    style = "|" if ("\n" in data and data.isprintable() is False and _block_safe(data)) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _block_safe(data: str) -> bool:
    return all(c == "\n" or (c.isprintable() and c not in "\x85\u2028\u2029\ufeff") for c in data) \
        and not data.startswith((" ", "\n")) and not data.endswith((" ", "\n\n")) and "\r" not in data \
        and " \n" not in data and "\t" not in data


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data,
                                                                       flow_style=True))
_Dumper.add_representer(FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(),
                                                                     flow_style=True))


def _dump(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=None,
                     width=1 << 30)


class Recording:
    """Record while clients talk to the returned proxy; the file is written on exit.

    Clients authenticate locally: with `users` ({name: password | {password, auth}}), else
    with the `server.users` of the file being extended (mode 'new'), else trust.

        with Recording("postgresql://app:pw@db/shop", "shop.yaml", mode="new") as rec:
            run_app(rec.dsn)
    """

    def __init__(self, upstream: str, out: str | os.PathLike, *, mode: str = "all", redact: Iterable[str] = (),
                 host: str = "127.0.0.1", port: int = 0, hooks: Iterable[ProxyHooks] = (), users: dict | None = None):
        from .relay import Proxy

        self.recorder = Recorder(out, mode=mode, redact=redact, upstream=upstream)
        if users is None and self.recorder._existing:
            # clients authenticate as the scenario says (its server.users), as they will in replay
            users = (self.recorder._existing.get("server") or {}).get("users")
        self.proxy = Proxy(upstream, hooks=[*hooks, self.recorder], host=host, port=port, users=users)

    @property
    def dsn(self) -> str:
        return self.proxy.dsn

    def start(self) -> "Recording":
        self.proxy.start()
        return self

    def stop(self) -> str:
        self.proxy.stop()
        try:
            return self.recorder.save()
        finally:
            self.recorder.close()

    def __enter__(self) -> "Recording":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
