"""The control API's operations: JSON in, JSON out, each one FakePostgres's own Python API.

`Control(pg)` is what the HTTP server (http.py) routes requests to; every method takes and
returns plain JSON-able values and raises AdminError (an HTTP status and a message, plus the
problems of a document) when a request cannot be done. Rules, answers, tables and replication
changes are read by the scenario parsers, so they take the keys of a YAML scenario.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from typing import Any

from .jsonspec import SpecError, parse_rules, parse_tables
from .values import from_json, to_json


class AdminError(Exception):
    """A request the control API refuses: `status` (400, 404, 409 ...), a message, problems."""

    def __init__(self, status: int, message: str, problems: list | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []
        self.extra = extra

    def body(self) -> dict:
        out = {"error": self.message}
        if self.problems:
            out["problems"] = self.problems
        out.update(self.extra)
        return out


def who_answered(label: str | None) -> str:
    """How a journal entry's answer came: rule, builtin, engine, hook or none."""
    if label is None:
        return "none"
    if label == "engine":
        return "engine"
    if label.startswith(("builtin:", "session:", "walsender:")):
        return "builtin"
    if label == "proxy hook":
        return "hook"
    return "rule"


class RuleIndex:
    """Rules by the label a journal entry names (cached per rules tuple)."""

    def __init__(self, pg):
        self.pg = pg
        self._for: tuple = ()
        self._by_label: dict = {}

    def find(self, label: str | None):
        rules = self.pg.rules.rules
        if rules is not self._for:
            self._by_label = {}
            for r in rules:
                self._by_label.setdefault(r.label, r)
            self._for = rules
        return self._by_label.get(label) if label else None


def rule_json(rule) -> dict:
    out: dict[str, Any] = {"id": rule.seq, "label": rule.label, "source": rule.source or None, "name": rule.name}
    if rule.query is not None:
        out["query"] = rule.query
    else:
        out["regex"] = rule.regex.pattern
    for key in ("params", "times", "expect", "priority", "user", "database", "application_name"):
        v = getattr(rule, key)
        if v is not None and not (key == "priority" and v == 0):
            out[key] = to_json(v)
    if rule.state is not None:
        out["state"] = {k: v for k, v in dataclasses.asdict(rule.state).items() if v is not None}
    out["calls"] = rule.calls
    out["exhausted"] = rule.exhausted()
    out["answer"] = "callback" if getattr(rule.handler, "callback", False) else (
        "handler" if rule.handler is not None else ("sequence" if len(rule.answers) > 1 else "static"))
    return out


def entry_json(e, index: int, rules: RuleIndex | None = None) -> dict:
    out = {"index": index, "sql": e.sql, "params": to_json(list(e.params)), "protocol": e.protocol,
           "connection": e.connection, "pid": e.pid, "user": e.user, "database": e.database,
           "answered_by": who_answered(e.rule), "rule": e.rule, "matched": e.matched, "error": e.error,
           "tag": e.tag, "statement": e.statement, "time": e.time}
    if e.sql_size is not None:
        out["sql_size"] = e.sql_size
    if rules is not None and out["answered_by"] == "rule":
        r = rules.find(e.rule)
        if r is not None:
            out["rule_id"] = r.seq
            out["rule_source"] = r.source or None
    return out


def copy_json(rec, rows: bool = True) -> dict:
    out = {}
    for key in ("direction", "table", "columns", "format", "options", "count", "error", "sql", "bytes", "checksum",
                "dropped", "complete", "note", "connection"):
        if hasattr(rec, key):
            try:
                out[key] = to_json(getattr(rec, key))
            except Exception:  # noqa: BLE001 - a property that cannot be read is left out
                continue
    for key in ("first_row", "last_row"):
        if hasattr(rec, key):
            v = getattr(rec, key)
            out[key] = to_json(list(v)) if v is not None else None
    if rows:
        out["rows"] = to_json([list(r) if isinstance(r, (tuple, list)) else r for r in rec.rows])
    return out


def fault_json(fid: int, plan, fired: int = 0) -> dict:
    out = {"id": fid, "label": plan.label, "action": plan.action, "at": plan.at, "value": to_json(_plain(plan.value)),
           "source": plan.source or None, "name": plan.name}
    if plan.rows:
        out["after_rows"] = plan.rows
    trig = {k: to_json(v) for k, v in dataclasses.asdict(plan.trigger).items() if v not in (None, ())}
    if trig:
        out["trigger"] = trig
    if plan.then:
        out["then"] = plan.then
    out["matched"] = fired
    return out


def _plain(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        d = dataclasses.asdict(v)
        if "code" in d and "message" in d:  # a PgError: its set fields
            return {k: x for k, x in d.items() if x not in (None, {}, ())}
        return d
    return v


def _as_list(body, key: str) -> list:
    """A body holding one item, a list of items, or {key: [items]}."""
    if isinstance(body, dict) and key in body and isinstance(body[key], list) and len(body) <= 2:
        return body[key]
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return [body]
    raise AdminError(400, f"expected a JSON object or a list of them, got {type(body).__name__}")


class Control:
    """The operations of the control API on one FakePostgres."""

    def __init__(self, pg, *, callbacks=None):
        self.pg = pg
        self.index = RuleIndex(pg)
        self._fault_ids: dict = {}
        self._fault_seq = itertools.count(1)
        self._lock = threading.Lock()
        self.callbacks = callbacks  # callbacks.Callbacks: rules answered by the API's client

    # ------------------------------------------------------------------ server
    def health(self) -> dict:
        from .. import __version__

        return {"status": "ok", "fakepm": __version__, "running": self.pg.running}

    def server(self) -> dict:
        pg = self.pg
        out = {"fakepm": self.health()["fakepm"], "running": pg.running, "host": pg.host, "port": pg.port,
               "user": pg.user, "database": pg.config.database, "version": pg.config.version,
               "tls": pg.config.tls, "ca_file": pg.ca_file, "unix_socket_dir": pg.unix_socket_dir,
               "backend": pg.backend_spec if isinstance(pg.backend_spec, (str, type(None))) else "custom",
               "pid": os.getpid()}
        if pg.running:
            out["dsn"] = pg.dsn
            out["conninfo"] = pg.conninfo()
        return out

    # ------------------------------------------------------------------ rules
    def list_rules(self) -> dict:
        return {"rules": [rule_json(r) for r in self.pg.rules.rules]}

    def _rule(self, rule_id) -> Any:
        try:
            rid = int(rule_id)
        except (TypeError, ValueError):
            raise AdminError(404, f"no rule {rule_id!r}: rule ids are integers") from None
        for r in self.pg.rules.rules:
            if r.seq == rid:
                return r
        raise AdminError(404, f"no rule with id {rid}")

    def get_rule(self, rule_id) -> dict:
        return rule_json(self._rule(rule_id))

    def add_rules(self, body) -> dict:
        """One rule, a list, or {"rules": [...]}: YAML's rule keys, plus `callback: true` (the
        answer comes from the API's client: GET /__admin/callbacks) and `source` (shown in logs)."""
        from ..answers.rules import Rule

        items = _as_list(body, "rules")
        extras = []
        plain = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise AdminError(400, "invalid rule", [{"field": f"rules[{i}]",
                                                        "message": f"a rule must be an object, got {type(item).__name__}"}])
            item = dict(item)
            extra = {"callback": item.pop("callback", None), "source": item.pop("source", None),
                     "columns": item.get("columns")}
            if extra["callback"] not in (None, False, True, "copy_both"):
                raise AdminError(400, "invalid rule", [{"field": f"rules[{i}].callback",
                                                        "message": 'callback is true or "copy_both"'}])
            if extra["callback"]:
                if self.callbacks is None:
                    raise AdminError(400, "this server takes no callback rules")
                # the answer comes later: the declared columns (for Describe) are all it has now
                for key in ("rows", "generate", "tag", "error", "sequence", "notices", "notify", "copy"):
                    if key in item:
                        raise AdminError(400, "invalid rule", [{"field": f"rules[{i}].{key}",
                                                                "message": f'"{key}" cannot be used with "callback"'}])
            extras.append(extra)
            plain.append(item)
        try:
            kws = parse_rules(plain)
        except SpecError as e:
            raise AdminError(400, "invalid rule", e.problems) from None
        added = []
        for kw, extra in zip(kws, extras):
            kw = dict(kw)
            kw["source"] = str(extra["source"]) if extra["source"] else "admin API"
            if extra["callback"]:
                answer = kw.pop("answers")[0]
                if extra["callback"] == "copy_both":
                    from ..answers.copyspec import copy_both

                    holder: dict = {}
                    kw.pop("columns", None)
                    rule = Rule(**kw, answers=[copy_both(self.callbacks.copy_handler(holder))])
                    holder["rule"] = rule
                else:
                    rule = Rule(**kw, handler=None, columns=answer.columns)
                    rule.handler = self.callbacks.handler(rule, extra["columns"])
            else:
                rule = Rule(**kw)
            self.pg._add_rule(rule)
            added.append(rule_json(rule))
        return {"rules": added}

    def remove_rule(self, rule_id) -> dict:
        rule = self._rule(rule_id)
        self.pg.remove_rule(rule)
        return {"removed": rule_json(rule)}

    def remove_all_rules(self) -> dict:
        n = len(self.pg.rules.rules)
        for r in self.pg.rules.rules:
            self.pg.remove_rule(r)
        return {"removed": n}

    def reset_rules(self) -> dict:
        """Rules back to what the server started with (WireMock's mappings/reset); the journal stays."""
        base_rules, _ = self.pg._baseline
        for r in self.pg.rules.rules:
            self.pg.remove_rule(r)
        for r in base_rules:
            r.calls = 0
            self.pg._add_rule(r)
        return self.list_rules()

    # ------------------------------------------------------------------ faults
    def _fid(self, plan) -> int:
        with self._lock:
            fid = self._fault_ids.get(plan)
            if fid is None:
                fid = self._fault_ids[plan] = next(self._fault_seq)
            return fid

    def list_faults(self) -> dict:
        fs = self.pg.faults
        return {"faults": [fault_json(self._fid(p), p, fs.count(p)) for p in fs.plans],
                "refusing_new_connections": bool(self.pg._refuse_new)}

    def add_faults(self, body) -> dict:
        from ..faults import FaultSpecError, parse_fault

        items = _as_list(body, "faults")
        plans, problems = [], []
        for i, item in enumerate(items):
            item = from_json(item) if isinstance(item, (dict, str)) else item
            try:
                plan = parse_fault(item, f"faults[{i}]")
            except FaultSpecError as e:
                msg = str(e)
                prefix = f"faults[{i}]: "
                problems.append({"field": f"faults[{i}]", "message": msg[len(prefix):] if msg.startswith(prefix) else msg})
                continue
            plans.append(dataclasses.replace(plan, source="admin API") if not plan.source.startswith("admin")
                         else plan)
        if problems:
            raise AdminError(400, "invalid fault", problems)
        out = []
        for p in plans:
            p = self.pg.fault(p)
            out.append(fault_json(self._fid(p), p))
        return {"faults": out}

    def _plan(self, fault_id):
        try:
            fid = int(fault_id)
        except (TypeError, ValueError):
            raise AdminError(404, f"no fault {fault_id!r}: fault ids are integers") from None
        for p in self.pg.faults.plans:
            if self._fid(p) == fid:
                return p
        raise AdminError(404, f"no fault with id {fid}")

    def get_fault(self, fault_id) -> dict:
        p = self._plan(fault_id)
        return fault_json(self._fid(p), p, self.pg.faults.count(p))

    def remove_fault(self, fault_id) -> dict:
        p = self._plan(fault_id)
        self.pg.remove_fault(p)
        if p.action == "refuse_new" and not any(q.action == "refuse_new" for q in self.pg.faults.plans):
            self.pg.refuse_new_connections(False)
        return {"removed": fault_json(self._fid(p), p)}

    def clear_faults(self) -> dict:
        n = len(self.pg.faults.plans)
        self.pg.clear_faults()
        return {"removed": n}

    # ------------------------------------------------------------------ scenario state
    def get_state(self) -> dict:
        rs = self.pg.rules
        return {"state": rs.current_state(),
                "connections": {str(c): rs.current_state(c) for c in sorted(rs.connection_state)}}

    def set_state(self, body) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("state"), str) or not body["state"]:
            raise AdminError(400, "invalid state", [{"field": "state", "message": "a non-empty string is required"}])
        extra = set(body) - {"state", "connection"}
        if extra:
            raise AdminError(400, "invalid state", [{"field": k, "message": "unknown key (state, connection)"}
                                                    for k in sorted(extra)])
        conn = body.get("connection")
        if conn is not None and (isinstance(conn, bool) or not isinstance(conn, int)):
            raise AdminError(400, "invalid state", [{"field": "connection", "message": "a connection id (integer)"}])
        self.pg.set_state(body["state"], conn)
        return self.get_state()

    # ------------------------------------------------------------------ journal
    def queries(self, *, since: int = 0, limit: int | None = None, unmatched: bool = False) -> dict:
        j = self.pg.journal
        entries = list(j.unmatched if unmatched else j.queries)
        first = (j.unmatched.dropped if unmatched else j.queries.dropped)
        out = []
        for i, e in enumerate(entries):
            index = first + i
            if index < since:
                continue
            out.append(entry_json(e, index, self.index))
            if limit is not None and len(out) >= limit:
                break
        key = "unmatched" if unmatched else "queries"
        return {key: out, "dropped": first, "next": (out[-1]["index"] + 1) if out else max(since, first + len(entries))}

    def unmatched(self) -> dict:
        from ..answers.result import Query

        out = self.queries(unmatched=True)
        for item, e in zip(out["unmatched"], list(self.pg.journal.unmatched)):
            item["nearest"] = self.pg.rules.nearest(Query(sql=e.sql, params=e.params))
        return out

    def events(self, kind: str | None = None) -> dict:
        evs = [to_json(dict(e)) for e in self.pg.journal.events if kind is None or e.get("kind") == kind]
        return {"events": evs, "dropped": self.pg.journal.events.dropped}

    def copies(self, rows: bool = True) -> dict:
        return {"copies": [copy_json(r, rows) for r in self.pg.journal.copies],
                "dropped": self.pg.journal.copies.dropped}

    def clear_journal(self) -> dict:
        self.pg._call(self.pg.journal.clear)
        return {"cleared": True}

    # ------------------------------------------------------------------ verify / reset
    def verify(self) -> tuple[int, dict]:
        problems = self.pg.problems()
        if not problems:
            return 200, {"ok": True}
        return 409, {"ok": False, "report": "fakepm verification failed:\n- " + "\n- ".join(problems),
                     "problems": problems}

    def reset(self, body=None) -> dict:
        keep = True
        if isinstance(body, dict) and "scenarios" in body:
            if not isinstance(body["scenarios"], bool):
                raise AdminError(400, "invalid reset", [{"field": "scenarios", "message": "true or false"}])
            keep = body["scenarios"]
        self.pg.reset(keep_scenarios=keep)
        if self.callbacks is not None:
            self.callbacks.forget_failures()
        return {"reset": True, "rules": len(self.pg.rules.rules), "faults": len(self.pg.faults.plans)}

    # ------------------------------------------------------------------ connections
    def connections(self) -> dict:
        out = []
        for info in self.pg.connections:
            d = {k: to_json(v) for k, v in dataclasses.asdict(info).items() if k != "peer"}
            d["peer"] = str(info.peer) if info.peer is not None else None
            out.append(d)
        return {"connections": out, "refusing_new_connections": bool(self.pg._refuse_new)}

    def refuse(self, refuse: bool) -> dict:
        self.pg.refuse_new_connections(refuse)
        return {"refusing_new_connections": refuse}

    def disconnect(self) -> dict:
        n = len(self.pg.connections)
        self.pg.disconnect_all()
        return {"disconnected": n}

    def transcripts(self) -> dict:
        return {"transcripts": {str(k): [[d, t] for d, t in v] for k, v in self.pg.transcripts().items()}}

    def notify(self, body) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("channel"), str):
            raise AdminError(400, "invalid notify", [{"field": "channel", "message": "a channel name is required"}])
        return {"delivered": self.pg.notify(body["channel"], str(body.get("payload", "")))}

    # ------------------------------------------------------------------ tables, scenarios
    def add_tables(self, body) -> dict:
        if not isinstance(body, dict):
            raise AdminError(400, "tables: expected an object {name: {columns, key, rows}}")
        try:
            specs = parse_tables(body)
        except SpecError as e:
            raise AdminError(400, "invalid tables", e.problems) from None
        for t in specs.values():
            self.pg.table(t.name, t.columns, key=t.key, rows=t.rows, replica_identity=t.replica_identity)
        return self.tables()

    def tables(self) -> dict:
        out = {}
        for name, t in self.pg.catalog.tables.items():
            out[name] = {"columns": {c.name: c.type.name for c in t.columns}, "key": list(getattr(t, "key", ()) or ()),
                         "rows": len(getattr(t, "rows", ()) or ())}
        return {"tables": out}

    def load(self, body) -> dict:
        """{"path": FILE} (on the server's machine): its rules, tables and faults are added."""
        from ..scenario.context import ScenarioError

        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise AdminError(400, "load: expected {\"path\": \"scenario.yaml\"}")
        try:
            self.pg.load(body["path"])
        except ScenarioError as e:
            raise AdminError(400, "invalid scenario", [{"field": p.file, "message": f"{p.line}:{p.col}: {p.message}"}
                                                       for p in e.problems]) from None
        except ValueError as e:
            raise AdminError(400, str(e)) from None
        return {"loaded": body["path"], "rules": len(self.pg.rules.rules)}

    # ------------------------------------------------------------------ walsender
    def replication(self) -> dict:
        wal = self.pg.wal
        slots = {}
        for name, s in dict(wal.slots).items():
            slots[name] = {"kind": s.kind, "plugin": s.plugin, "two_phase": s.two_phase, "temporary": s.temporary,
                           "confirmed_flush": _lsn_json(s.confirmed_flush), "restart_lsn": _lsn_json(s.restart_lsn),
                           "active_pid": s.active_pid}
        feedback = [{k: (_lsn_json(v) if k in ("write", "flush", "apply") else to_json(v)) for k, v in f.items()}
                    for f in list(wal.feedback)[-100:]]
        return {"lsn": _lsn_json(wal.lsn), "slots": slots, "feedback": feedback}

    def emit(self, body) -> dict:
        """A `replication:` section (stream items, tables, slots, publications, settings), applied now."""
        from ..walsender.scenario import parse_replication_section

        if isinstance(body, list):
            body = {"stream": body}
        data = from_json(body)
        try:
            section = parse_replication_section(data, "replication")
        except ValueError as e:
            raise AdminError(400, "invalid replication", [_field_problem(str(e))]) from None
        wal = self.pg.wal
        before = wal.lsn
        try:
            section.apply(self.pg)
        except ValueError as e:
            raise AdminError(400, "invalid replication", [_field_problem(str(e))]) from None
        return {"lsn": _lsn_json(wal.lsn), "start_lsn": _lsn_json(before)}

    def wait_for(self, what: str, lsn: str, timeout: float) -> dict:
        from ..protocol.replication import parse_lsn

        wal = self.pg.wal
        fn = wal.wait_for_flush if what == "flush" else wal.wait_for_apply
        try:
            fn(parse_lsn(lsn) if isinstance(lsn, str) else int(lsn), timeout=timeout)
        except TimeoutError as e:
            raise AdminError(408, str(e) or f"no standby confirmed {what} of {lsn} in {timeout} s") from None
        return {"confirmed": True, what: lsn}


def _field_problem(message: str) -> dict:
    field, sep, rest = message.partition(": ")
    if sep and " " not in field:
        return {"field": field, "message": rest}
    return {"field": "", "message": message}


def _lsn_json(v):
    if isinstance(v, int) and not isinstance(v, bool):
        from ..protocol.replication import format_lsn

        return format_lsn(v)
    return to_json(v)
