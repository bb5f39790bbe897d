"""The scenario's `replication:` section -> WalSender configuration, tables, slots, publications, stream.

    replication:
      system: {systemid: "7710764530963304710", timeline: 1, start_lsn: "0/1000000"}
      wal_sender_timeout: 60s          # 0 = never time out
      keepalive_interval: 10s          # idle keepalives; 0 = off
      slot_start: beginning            # new slots see the whole scripted stream ("end": only what follows)
      slots: [{name: sub1}, {name: phys, type: physical}]
      publications: {pub: {tables: [public.orders]}, everything: {all_tables: true}}
      tables:
        public.orders:
          columns: {id: int4, total: numeric, note: text}
          key: [id]
          replica_identity: default    # default | full | nothing | index
          rows: [{id: 1, total: 9.99}]
      stream:
        - insert: {table: public.orders, row: {id: 2, total: 5}}
        - transaction:
            changes:
              - update: {table: public.orders, row: {id: 2, total: 6}, old: {id: 2, total: 5}}
              - delete: {table: public.orders, row: {id: 1}}
        - pause: 1.5
        - message: {prefix: app, content: hello}
        - keepalive: {reply_requested: true}
        - fault: disconnect

Parsing validates everything (errors name the path, e.g. `replication.stream[3].insert`);
`apply(pg)` declares the tables in pg.catalog and writes the stream into the WAL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..protocol.pgoutput import UNCHANGED_TOAST

_IDENTITY = {"d": "d", "default": "d", "f": "f", "full": "f", "n": "n", "nothing": "n", "i": "i", "index": "i"}
_TOP = {"system", "wal_sender_timeout", "keepalive_interval", "slot_start", "slots", "publications", "tables",
        "stream"}
_TXN_KEYS = {"changes", "xid", "commit_time", "origin", "streaming", "prepare", "abort", "segment_size", "lsn",
             "commit_lsn", "end_lsn"}
_CHANGES = ("insert", "update", "delete", "truncate", "message", "subtransaction")


def _fail(where: str, msg: str):
    raise ValueError(f"{where}: {msg}")


def _mapping(v, where: str, allowed: set | None = None) -> dict:
    if not isinstance(v, dict):
        _fail(where, f"expected a mapping, got {type(v).__name__} {v!r}")
    if allowed is not None:
        extra = sorted(set(v) - allowed)
        if extra:
            _fail(where, f"unknown key(s) {extra}; allowed: {sorted(allowed)}")
    return v


def _list(v, where: str) -> list:
    if not isinstance(v, list):
        _fail(where, f"expected a list, got {type(v).__name__} {v!r}")
    return v


@dataclass
class ReplicationSection:
    data: dict
    where: str

    def apply(self, pg) -> None:
        wal = pg.wal
        d = self.data
        system = d.get("system") or {}
        wal.configure(systemid=system.get("systemid"), timeline=system.get("timeline"), dbname=system.get("dbname"),
                      start_lsn=system.get("start_lsn"), first_xid=system.get("first_xid"),
                      wal_sender_timeout=d.get("wal_sender_timeout"), keepalive_interval=d.get("keepalive_interval"),
                      slot_start=d.get("slot_start"))
        for name, spec in (d.get("tables") or {}).items():
            w = f"{self.where}.tables.{name}"
            pg.catalog.add(name, spec["columns"], key=tuple(spec.get("key") or ()), rows=spec.get("rows") or (),
                           replica_identity=_IDENTITY[str(spec.get("replica_identity", "d")).lower()], where=w)
        for name, spec in (d.get("publications") or {}).items():
            spec = spec or {}
            tables = None if spec.get("all_tables") or "tables" not in spec else spec["tables"]
            wal.publication(name, tables, publish=spec.get("publish", ("insert", "update", "delete", "truncate")))
        for i, spec in enumerate(d.get("slots") or []):
            wal.create_slot(spec["name"], kind=spec.get("type", "logical"), plugin=spec.get("plugin", "pgoutput"),
                            two_phase=bool(spec.get("two_phase")), confirmed_flush=spec.get("confirmed_flush"))
        for i, item in enumerate(d.get("stream") or []):
            _emit(wal, item, f"{self.where}.stream[{i}]")


def parse_replication_section(data: Any, where: str = "replication") -> ReplicationSection:
    d = _mapping(data, where, _TOP)
    if "system" in d:
        _mapping(d["system"], f"{where}.system", {"systemid", "timeline", "dbname", "start_lsn", "first_xid"})
    for name, spec in _mapping(d.get("tables") or {}, f"{where}.tables").items():
        w = f"{where}.tables.{name}"
        _mapping(spec, w, {"columns", "key", "replica_identity", "rows"})
        if "columns" not in spec:
            _fail(w, "needs columns: {name: type, ...}")
        ri = str(spec.get("replica_identity", "d")).lower()
        if ri not in _IDENTITY:
            _fail(f"{w}.replica_identity", f"expected default, full, nothing or index, got {ri!r}")
    for name, spec in _mapping(d.get("publications") or {}, f"{where}.publications").items():
        _mapping(spec or {}, f"{where}.publications.{name}", {"tables", "all_tables", "publish"})
    for i, spec in enumerate(_list(d.get("slots") or [], f"{where}.slots")):
        w = f"{where}.slots[{i}]"
        _mapping(spec, w, {"name", "type", "plugin", "two_phase", "confirmed_flush"})
        if "name" not in spec:
            _fail(w, "needs name:")
        if spec.get("type", "logical") not in ("logical", "physical"):
            _fail(f"{w}.type", f"expected logical or physical, got {spec.get('type')!r}")
    for i, item in enumerate(_list(d.get("stream") or [], f"{where}.stream")):
        _check_item(item, f"{where}.stream[{i}]")
    return ReplicationSection(d, where)


def _one_key(item, where: str, allowed) -> tuple[str, Any]:
    if isinstance(item, str) and item in allowed:
        return item, None
    if not isinstance(item, dict) or len(item) != 1:
        _fail(where, f"expected a one-key mapping, one of {list(allowed)}; got {item!r}")
    (k, v), = item.items()
    if k not in allowed:
        _fail(where, f"unknown item {k!r}; expected one of {list(allowed)}")
    return k, v


_STREAM_ITEMS = ("transaction", "insert", "update", "delete", "truncate", "message", "pause", "keepalive", "fault",
                 "commit_prepared", "rollback_prepared")


def _check_item(item, where: str) -> None:
    k, v = _one_key(item, where, _STREAM_ITEMS)
    w = f"{where}.{k}"
    if k == "transaction":
        t = _mapping(v, w, _TXN_KEYS)
        for j, c in enumerate(_list(t.get("changes") or [], f"{w}.changes")):
            _check_change(c, f"{w}.changes[{j}]")
        if "origin" in t:
            _mapping(t["origin"], f"{w}.origin", {"name", "lsn"})
    elif k in ("insert", "update", "delete", "truncate", "message"):
        _check_change(item, where)
    elif k == "pause":
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            _fail(w, f"expected seconds (a number >= 0), got {v!r}")
    elif k == "keepalive":
        _mapping(v or {}, w, {"reply_requested"})
    elif k == "fault":
        if isinstance(v, str):
            if v not in ("disconnect", "error"):
                _fail(w, f"expected disconnect or error, got {v!r}")
        else:
            _mapping(v, w, {"kind", "code", "message", "once"})
    elif k in ("commit_prepared", "rollback_prepared"):
        if not isinstance(v, (str, dict)):
            _fail(w, f"expected a gid string or {{gid: ..., lsn: ...}}, got {v!r}")


def _check_change(item, where: str) -> None:
    k, v = _one_key(item, where, _CHANGES)
    w = f"{where}.{k}"
    if k == "subtransaction":
        s = _mapping(v, w, {"abort", "changes"})
        for j, c in enumerate(_list(s.get("changes") or [], f"{w}.changes")):
            _check_change(c, f"{w}.changes[{j}]")
        return
    if k == "message":
        m = _mapping(v, w, {"prefix", "content", "transactional", "lsn"})
        if "prefix" not in m or "content" not in m:
            _fail(w, "needs prefix: and content:")
        return
    if k == "truncate":
        _mapping(v, w, {"tables", "table", "cascade", "restart_identity", "lsn"})
        return
    c = _mapping(v, w, {"table", "row", "old", "unchanged", "lsn"})
    if "table" not in c or "row" not in c:
        _fail(w, "needs table: and row:")


def _row(spec: dict) -> Any:
    row = spec["row"]
    unchanged = spec.get("unchanged") or []
    if unchanged:
        row = dict(row)
        for name in unchanged:
            row[name] = UNCHANGED_TOAST
    return row


def _add_change(tx, item, where: str) -> None:
    (k, v), = item.items()
    w = f"{where}.{k}"
    tx.where = w
    if k == "insert":
        tx.insert(v["table"], _row(v), lsn=v.get("lsn"))
    elif k == "update":
        tx.update(v["table"], _row(v), old=v.get("old"), lsn=v.get("lsn"))
    elif k == "delete":
        tx.delete(v["table"], v["row"], lsn=v.get("lsn"))
    elif k == "truncate":
        tables = v.get("tables") or [v["table"]]
        tx.truncate(tables, cascade=bool(v.get("cascade")), restart_identity=bool(v.get("restart_identity")),
                    lsn=v.get("lsn"))
    elif k == "message":
        tx.message(v["prefix"], v["content"], transactional=v.get("transactional", True), lsn=v.get("lsn"))
    elif k == "subtransaction":
        with tx.subtransaction(abort=bool(v.get("abort"))):
            for j, c in enumerate(v.get("changes") or []):
                _add_change(tx, c, f"{w}.changes[{j}]")


def _emit(wal, item, where: str) -> None:
    k, v = _one_key(item, where, _STREAM_ITEMS)
    w = f"{where}.{k}"
    try:
        if k == "transaction":
            kw = {key: v[key] for key in ("xid", "commit_time", "origin", "streaming", "prepare", "abort",
                                          "segment_size", "lsn", "commit_lsn", "end_lsn") if key in v}
            tx = wal.transaction(where=w, **kw)
            for j, c in enumerate(v.get("changes") or []):
                _add_change(tx, c, f"{w}.changes[{j}]")
            tx.commit()
        elif k == "message" and not v.get("transactional", False):
            wal.message(v["prefix"], v["content"], transactional=False, lsn=v.get("lsn"))
        elif k in _CHANGES:
            tx = wal.transaction(where=w)
            _add_change(tx, item, where)
            tx.commit()
        elif k == "pause":
            wal.pause(float(v))
        elif k == "keepalive":
            wal.keepalive(bool((v or {}).get("reply_requested")))
        elif k == "fault":
            spec = {"kind": v} if isinstance(v, str) else v
            wal.fault(spec.get("kind", "disconnect"), code=spec.get("code", "XX000"),
                      message=spec.get("message", "fakepm: scripted walsender error"), once=spec.get("once", True))
        elif k in ("commit_prepared", "rollback_prepared"):
            spec = {"gid": v} if isinstance(v, str) else v
            getattr(wal, k)(spec["gid"], lsn=spec.get("lsn"))
    except (ValueError, TypeError, KeyError) as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith(where) else f"{w}: {msg}") from None


# ---------------------------------------------------------------------------- scenario loader plug-in
_PATH = re.compile(r"^(replication(?:\.[^\s:]+?|\[\d+\])*):")


def _locate(node, message: str):
    """The Node a `replication.stream[3].insert: ...` message points at (best effort)."""
    m = _PATH.match(message)
    if m is None:
        return node
    rest = m.group(1)[len("replication"):]
    cur = node
    while rest and cur is not None:
        if rest.startswith("["):
            j = rest.index("]")
            i = int(rest[1:j])
            rest = rest[j + 1:]
            cur = cur.value[i] if cur.kind == "seq" and i < len(cur.value) else cur
            continue
        rest = rest[1:]  # the dot
        if cur.kind != "map":
            break
        key = max((k for k in cur.value if rest == k or rest.startswith(k + ".") or rest.startswith(k + "[")),
                  key=len, default=None)
        if key is None:
            break
        cur = cur.value[key]
        rest = rest[len(key):]
    return cur


def _scenario_section(ctx, node):
    """registry hook: `replication:` in a scenario file -> an applier, or problems at file:line:col."""
    try:
        section = parse_replication_section(node.plain(), "replication")
    except ValueError as e:
        ctx.error(_locate(node, str(e)), str(e))
        return None

    def apply(pg) -> None:
        try:
            section.apply(pg)
        except ValueError as e:
            raise ValueError(f"{_locate(node, str(e)).where}: {e}") from None

    return apply


def _register() -> None:
    try:
        from ..scenario.registry import register_section
    except ImportError:  # pragma: no cover - the scenario room is optional for the walsender
        return
    register_section("replication", _scenario_section)


_register()


# ---------------------------------------------------------------------------- JSON Schema (for editors)
_ROW = {"type": "object", "description": "column name -> natural value"}
_LSN = {"type": "string", "pattern": "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"}
_DURATION = {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}]}
_ROW_CHANGE = {"type": "object", "required": ["table", "row"], "additionalProperties": False,
               "properties": {"table": {"type": "string"}, "row": _ROW, "old": _ROW, "lsn": _LSN,
                              "unchanged": {"type": "array", "items": {"type": "string"}}}}
_CHANGE = {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
    "insert": _ROW_CHANGE, "update": _ROW_CHANGE, "delete": _ROW_CHANGE,
    "truncate": {"type": "object", "additionalProperties": False, "properties": {
        "tables": {"type": "array", "items": {"type": "string"}}, "table": {"type": "string"},
        "cascade": {"type": "boolean"}, "restart_identity": {"type": "boolean"}, "lsn": _LSN}},
    "message": {"type": "object", "required": ["prefix", "content"], "additionalProperties": False, "properties": {
        "prefix": {"type": "string"}, "content": {"type": "string"}, "transactional": {"type": "boolean"},
        "lsn": _LSN}},
    "subtransaction": {"type": "object", "additionalProperties": False, "properties": {
        "abort": {"type": "boolean"}, "changes": {"type": "array", "items": {"$ref": "#/$defs/change"}}}},
}, "additionalProperties": False}

#: JSON Schema of the `replication:` section (the scenario schema can embed it).
JSON_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "$defs": {"change": _CHANGE},
    "properties": {
        "system": {"type": "object", "additionalProperties": False, "properties": {
            "systemid": {"type": ["string", "integer"]}, "timeline": {"type": "integer"},
            "dbname": {"type": "string"}, "start_lsn": _LSN, "first_xid": {"type": "integer"}}},
        "wal_sender_timeout": _DURATION,
        "keepalive_interval": _DURATION,
        "slot_start": {"enum": ["beginning", "end"]},
        "slots": {"type": "array", "items": {"type": "object", "required": ["name"], "additionalProperties": False,
                                              "properties": {"name": {"type": "string"},
                                                             "type": {"enum": ["logical", "physical"]},
                                                             "plugin": {"const": "pgoutput"},
                                                             "two_phase": {"type": "boolean"},
                                                             "confirmed_flush": _LSN}}},
        "publications": {"type": "object", "additionalProperties": {
            "type": ["object", "null"], "additionalProperties": False, "properties": {
                "tables": {"type": "array", "items": {"type": "string"}}, "all_tables": {"type": "boolean"},
                "publish": {"type": "array", "items": {"enum": ["insert", "update", "delete", "truncate"]}}}}},
        "tables": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["columns"], "additionalProperties": False, "properties": {
                "columns": {"type": "object", "additionalProperties": {"type": "string"}},
                "key": {"type": "array", "items": {"type": "string"}},
                "replica_identity": {"enum": sorted(_IDENTITY)},
                "rows": {"type": "array"}}}},
        "stream": {"type": "array", "items": {"type": "object", "minProperties": 1, "maxProperties": 1,
                                              "additionalProperties": False, "properties": {
            "transaction": {"type": "object", "additionalProperties": False, "properties": {
                "changes": {"type": "array", "items": {"$ref": "#/$defs/change"}},
                "xid": {"type": "integer"}, "commit_time": {"type": ["string", "number"]},
                "origin": {"type": "object", "properties": {"name": {"type": "string"}, "lsn": _LSN}},
                "streaming": {"type": "boolean"}, "prepare": {"type": "string"}, "abort": {"type": "boolean"},
                "segment_size": {"type": "integer", "minimum": 1}, "lsn": _LSN, "commit_lsn": _LSN,
                "end_lsn": _LSN}},
            "insert": _ROW_CHANGE, "update": _ROW_CHANGE, "delete": _ROW_CHANGE,
            "truncate": _CHANGE["properties"]["truncate"], "message": _CHANGE["properties"]["message"],
            "pause": {"type": "number", "minimum": 0},
            "keepalive": {"type": ["object", "null"], "properties": {"reply_requested": {"type": "boolean"}}},
            "fault": {"oneOf": [{"enum": ["disconnect", "error"]}, {"type": "object", "properties": {
                "kind": {"enum": ["disconnect", "error"]}, "code": {"type": "string"},
                "message": {"type": "string"}, "once": {"type": "boolean"}}}]},
            "commit_prepared": {"type": ["string", "object"]},
            "rollback_prepared": {"type": ["string", "object"]},
        }}},
    },
}
