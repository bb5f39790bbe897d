"""Record a real PostgreSQL conversation as a readable scenario YAML (issue 3's format).

The Recorder is a proxy hook: it sees every finished statement (tracker.Exchange) and keeps
one rule per distinct exchange -- query text + bound parameters. The same exchange answered
differently later becomes a `sequence:` in recorded order. Columns get type names from the
OIDs (protocol/types.py REGISTRY), rows are natural values, the tag is the server's, errors
and notices keep their SQLSTATE and text. The first connection's ParameterStatus values
become `server:`.

What is never written: passwords, SCRAM messages (the recorder only sees traffic after
authentication, and the upstream URL is not stored), string literals after PASSWORD in
SQL. `redact=[regex, ...]` replaces matches in SQL literals, parameters, values, errors and
COPY data with "[REDACTED]".

Modes (like vcrpy's record modes): `once` (refuse when the file exists), `new` (keep the
file's rules, append exchanges it does not have), `all` (write everything afresh), `none`
(never record: replay the file with `fakepm serve`).

Statements PostgreSQL-compatible builtins answer in replay anyway (BEGIN/COMMIT/ROLLBACK,
SET/RESET, LISTEN/UNLISTEN/NOTIFY, DISCARD, DEALLOCATE, savepoints) are not written.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Iterable

import yaml

from ..protocol import messages as m
from ..protocol.errors import PgError
from ..protocol.types import REGISTRY
from ..sql import classify, redact_passwords, replace_literals
from .copyfmt import parse_copy_data, parse_copy_options
from .hooks import ConnInfo, ProxyHooks
from .tracker import Exchange, type_name
from .upstream import Upstream, UpstreamError, UpstreamURL

MODES = ("once", "new", "all", "none")
REDACTED = "[REDACTED]"

# answered by fakepm's builtins in replay (and recording them would pin session state)
_SKIP_KINDS = frozenset({
    "BEGIN", "START", "COMMIT", "ROLLBACK", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "SET", "RESET",
    "LISTEN", "UNLISTEN", "NOTIFY", "DISCARD", "DEALLOCATE", "CLOSE",
})
_ERROR_FIELDS = ("detail", "hint", "position", "where", "schema_name", "table_name", "column_name",
                 "data_type_name", "constraint_name")


class RecordError(Exception):
    """Recording cannot proceed (mode once and the file exists, bad regex, ...)."""


def _scalar_to_yaml(t, v: Any) -> Any:
    """A natural value as YAML can hold it and the scenario loader coerces back to the same value."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, list):
        elem = t.elem if t is not None and t.elem is not None else None
        return [_scalar_to_yaml(elem, x) for x in v]
    if t is not None and t.name in ("json", "jsonb") and isinstance(v, (dict, list)):
        return v
    if t is not None:
        try:
            return t.encode_text(v).decode("utf-8")
        except Exception:  # noqa: BLE001
            pass
    if isinstance(v, (Decimal, date, datetime, time, timedelta)):
        return str(v)
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    return str(v)


def to_yaml_value(oid: int, v: Any) -> Any:
    """Like _scalar_to_yaml, checked: if the loader would not get `v` back, write its text form."""
    t = REGISTRY.get_oid(oid)
    y = _scalar_to_yaml(t, v)
    if t is None or y is None:
        return y
    try:
        back = t.coerce(y)
        if back == v or (isinstance(v, float) and isinstance(back, float) and math.isnan(v) and math.isnan(back)):
            return y
    except Exception:  # noqa: BLE001
        pass
    try:
        return t.encode_text(v).decode("utf-8")
    except Exception:  # noqa: BLE001
        return y


class Recorder(ProxyHooks):
    """A proxy hook that turns the conversation into scenario rules; `save()` writes the file."""

    def __init__(self, path: str | os.PathLike, *, mode: str = "all", redact: Iterable[str] = (),
                 upstream: str | UpstreamURL | None = None):
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
        self.server: dict = {}
        self.rules: dict[tuple, list] = {}  # key -> [answers in recorded order]
        self.queries: dict[tuple, str] = {}
        self.param_types: dict[tuple, list] = {}
        self.comments: dict[tuple, list] = {}
        self.tables: dict[str, dict] = {}
        self._replication_conns: set[int] = set()
        self._lock = threading.Lock()
        self._side: Upstream | None = None
        self._side_lock = threading.Lock()
        self._existing: dict | None = None
        if mode == "new" and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self._existing = yaml.safe_load(f) or {}

    # ------------------------------------------------------------------ hook side
    def on_connect(self, conn: ConnInfo) -> None:
        if conn.replication:
            self._replication_conns.add(conn.id)
            return
        with self._lock:
            if not self.server:
                params = dict(conn.upstream_parameters)
                params.pop("session_authorization", None)  # follows the connecting user
                params.pop("application_name", None)  # the client's own setting
                server = {"version": params.pop("server_version", "")}
                if conn.database:
                    server["database"] = conn.database
                server["parameters"] = params
                self.server = server

    def on_exchange(self, ex: Exchange, conn: ConnInfo) -> None:
        if conn.id in self._replication_conns or ex.empty or not ex.sql.strip():
            return
        if classify(ex.sql) in _SKIP_KINDS and ex.error is None:
            return
        sql = self._scrub_sql(ex.sql)
        params = [self._scrub(to_yaml_value(o, v)) for o, v in zip(
            list(ex.param_oids) + [0] * len(ex.raw_params), ex.params())]
        answer, comment = self._answer(ex)
        key = (sql, json.dumps(params, sort_keys=True, default=str))
        with self._lock:
            answers = self.rules.setdefault(key, [])
            self.queries[key] = sql
            if ex.raw_params:
                self.param_types[key] = ex.param_type_names()
            if not answers or answers[-1] != answer:
                answers.append(answer)
            if comment:
                self.comments.setdefault(key, []).append(comment)

    # ------------------------------------------------------------------ answers
    def _answer(self, ex: Exchange) -> tuple[dict, str | None]:
        out: dict = {}
        comment = None
        if ex.copy == "out" and ex.error is None:
            cols = self._copy_columns(ex)
            rows = parse_copy_data(b"".join(ex.copy_data), ex.sql, cols)
            out["columns"] = _columns_yaml([(n, type_name(o, tm)) for n, o, tm in cols])
            out["rows"] = [_Flow(self._scrub(to_yaml_value(o, v)) for (_, o, _), v in zip(cols, row)) for row in rows]
        elif ex.copy == "in":
            raw = b"".join(ex.copy_data)
            if ex.copy_format == 1 or raw.startswith(b"PGCOPY"):
                comment = f"COPY data received: {len(raw)} bytes in binary format"
            else:
                data = self._scrub(raw.decode("utf-8", "replace"))
                data = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in data)
                comment = f"COPY data received ({len(raw)} bytes):\n" + data
            self._declare_copy_table(ex)
        elif ex.has_rows:
            cols = [(f.name, type_name(f.type_oid, f.type_modifier)) for f in ex.fields]
            out["columns"] = _columns_yaml(cols)
            out["rows"] = [_Flow(self._scrub(to_yaml_value(f.type_oid, v)) for f, v in zip(ex.fields, row))
                           for row in ex.natural_rows()]
        if ex.tag is not None and ex.error is None:
            out["tag"] = ex.tag
        if ex.error is not None:
            # the format has no "rows, then an error": rows sent before a failure are dropped
            out.pop("columns", None)
            out.pop("rows", None)
            out["error"] = _error_yaml(ex.error, self._scrub)
        if ex.notices:
            out["notices"] = [_error_yaml(n, self._scrub, notice=True) for n in ex.notices]
        return out, comment

    def _scrub(self, v: Any) -> Any:
        if not self.redact:
            return v
        if isinstance(v, str):
            for r in self.redact:
                v = r.sub(REDACTED, v)
            return v
        if isinstance(v, list):
            return [self._scrub(x) for x in v]
        if isinstance(v, dict):
            return {k: self._scrub(x) for k, x in v.items()}
        return v

    def _scrub_sql(self, sql: str) -> str:
        sql = redact_passwords(sql, "'" + REDACTED + "'")  # every spelling: '', E'', U&'', $$, $tag$
        if self.redact:
            sql = replace_literals(sql, lambda _tok, text: self._scrub(text))
        return sql

    # ------------------------------------------------------------------ COPY column types
    def _describe(self, select_sql: str) -> list[tuple[str, int, int]] | None:
        """(name, type OID, typmod) of a SELECT, asked from the upstream without running it."""
        if self.upstream is None:
            return None
        with self._side_lock:  # one side connection, shared by every relay thread
            return self._describe_locked(select_sql)

    def _describe_locked(self, select_sql: str) -> list[tuple[str, int, int]] | None:
        try:
            if self._side is None:
                self._side = Upstream(self.upstream, {"application_name": "fakepm-recorder"}).connect()
            up = self._side
            up.send(m.Parse("", select_sql), m.Describe("S", ""), m.Sync())
            fields = None
            while True:
                msg = up.read_message()
                if isinstance(msg, m.RowDescription):
                    fields = [(f.name, f.type_oid, f.type_modifier) for f in msg.fields]
                elif isinstance(msg, m.ReadyForQuery):
                    return fields
        except (UpstreamError, OSError):
            self._side = None
            return None

    def _copy_columns(self, ex: Exchange) -> list[tuple[str, int, int]]:
        opts = parse_copy_options(ex.sql)
        cols = self._describe(opts.source_select) if opts.source_select else None
        if cols is None:  # unknown types: every field is text, which reproduces text COPY exactly
            n = _count_fields(b"".join(ex.copy_data), opts)
            cols = [(f"column{i + 1}", 25, -1) for i in range(n)]
        return cols

    def _declare_copy_table(self, ex: Exchange) -> None:
        opts = parse_copy_options(ex.sql)
        if not opts.table:
            return
        cols = self._describe(opts.source_select) if opts.source_select else None
        if not cols:
            return
        name = opts.table.replace('"', "")
        name = name if "." in name else "public." + name
        with self._lock:
            if name not in self.tables:
                self.tables[name] = {"columns": _columns_yaml([(n, type_name(o, tm)) for n, o, tm in cols])}

    # ------------------------------------------------------------------ output
    def document(self) -> dict:
        """The scenario as plain data (merged with the existing file in mode 'new')."""
        rules = []
        for key, answers in self.rules.items():
            rule: dict = {"query": self.queries[key]}
            params = json.loads(key[1])
            if params:
                rule["params"] = params
                types = self.param_types.get(key)
                if types and any(t != "text" for t in types):
                    rule["param_types"] = types
            if len(answers) == 1:
                rule.update(answers[0])
            else:
                rule["sequence"] = answers
            rules.append(rule)
        doc: dict = {"description": "recorded by fakepm from a real PostgreSQL"}
        if self.server:
            doc["server"] = self.server
        if self.tables:
            doc["tables"] = dict(self.tables)
        doc["rules"] = rules
        if self._existing:
            old = self._existing
            seen = {(r.get("query"), json.dumps(r.get("params") or [], sort_keys=True, default=str))
                    for r in old.get("rules") or []}
            merged = dict(old)
            merged["rules"] = list(old.get("rules") or []) + [
                r for r in rules if (r["query"], json.dumps(r.get("params") or [], sort_keys=True, default=str))
                not in seen]
            if self.tables:
                merged["tables"] = {**self.tables, **(old.get("tables") or {})}
            merged.setdefault("server", self.server)
            return merged
        return doc

    def dumps(self) -> str:
        doc = self.document()
        comments = {self.queries[k]: c for k, c in self.comments.items()}
        head = {k: v for k, v in doc.items() if k != "rules"}
        text = _dump(head)
        text += "rules:\n"
        for rule in doc.get("rules") or []:
            for c in comments.get(rule.get("query"), []):
                text += "".join(f"  # {line}\n" for line in c.splitlines())
            item = _dump([rule])
            text += "".join("  " + line + "\n" for line in item.splitlines())
        return text

    def save(self) -> str:
        text = self.dumps()
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)
        return self.path

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper, data):
    style = "|" if "\n" in data and not data.endswith(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


class _Flow(list):
    """A row: written on one line."""


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(_Flow, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def _dump(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


def _columns_yaml(cols: list[tuple[str, str]]):
    names = [n for n, _ in cols]
    if len(set(names)) == len(names):
        return {n: t for n, t in cols}
    return [{"name": n, "type": t} for n, t in cols]  # duplicate names need the list form


def _error_yaml(err: PgError, scrub, notice: bool = False) -> dict:
    out: dict = {}
    if notice or err.severity != "ERROR":
        out["severity"] = err.severity
    out["code"] = err.code
    out["message"] = scrub(err.message)
    if not notice:
        for f in _ERROR_FIELDS:
            v = getattr(err, f)
            if v is not None:
                out[f] = scrub(v) if isinstance(v, str) else v
    return out


def _count_fields(data: bytes, opts) -> int:
    rows = parse_copy_data(data, "", None, opts=opts)
    return len(rows[0]) if rows else 1


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
