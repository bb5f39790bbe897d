"""`fakepm drift FILE --upstream URL`: replay a recording's queries against the real server, report differences.

Each recorded statement (a `recording:`'s distinct simple queries and Binds, as first answered;
or each rule's query, in a hand-written file) runs once with its recorded parameters inside
BEGIN ... ROLLBACK (so writes leave no trace), through fakepm's own upstream connection and the
extended protocol. Transaction control, SET and the like are not run.
The answer is compared with the rule's (its first answer for a `sequence:`): error code and
message, column names and types, row values (compared as natural values), command tag; and
the file's server version with the server's. COPY statements and `regex:` rules are not run.
"""

from __future__ import annotations

from typing import Any

from ..protocol import messages as m
from ..protocol.types import REGISTRY
from .tracker import decode_value, type_name
from .upstream import Upstream, UpstreamURL


def _norm_type(spec: str) -> str:
    try:
        t, typmod = REGISTRY.parse_type_spec(str(spec))
    except Exception:  # noqa: BLE001
        return str(spec)
    return type_name(t.oid, typmod)


def _columns(spec) -> list[tuple[str, str]]:
    if spec is None:
        return []
    if isinstance(spec, dict):
        return [(str(n), _norm_type(t if not isinstance(t, dict) else t.get("type", "text"))) for n, t in spec.items()]
    return [(str(c["name"]), _norm_type(c.get("type", "text"))) for c in spec]


def _coerce(type_spec: str, v: Any) -> Any:
    if v is None:
        return None
    try:
        t, _ = REGISTRY.parse_type_spec(type_spec)
        return t.coerce(v)
    except Exception:  # noqa: BLE001
        return v


def _bind_value(type_spec: str | None, v: Any) -> bytes | None:
    if v is None:
        return None
    if type_spec:
        try:
            t, _ = REGISTRY.parse_type_spec(type_spec)
            return t.encode_text(t.coerce(v))
        except Exception:  # noqa: BLE001
            pass
    return str(v).encode()


def _run(up: Upstream, sql: str, params: list, types: list, raw: tuple | None = None, oids: tuple = ()) -> dict:
    if raw is None:
        oids = []
        for t in types:
            try:
                oids.append(REGISTRY.parse_type_spec(t)[0].oid)
            except Exception:  # noqa: BLE001
                oids.append(0)
        bound = tuple(_bind_value(types[i] if i < len(types) else None, v) for i, v in enumerate(params))
    else:  # a recording's Bind: the values as they were sent (text format)
        bound = raw
    up.send(m.Query("BEGIN"))
    _drain(up)
    up.send(m.Parse("", sql, tuple(oids)), m.Bind("", "", (), tuple(bound), ()), m.Describe("P", ""),
            m.Execute("", 0), m.Sync())
    out: dict = {"fields": None, "rows": [], "tag": None, "error": None}
    while True:
        msg = up.read_message()
        if isinstance(msg, m.RowDescription):
            out["fields"] = msg.fields
        elif isinstance(msg, m.DataRow):
            out["rows"].append([decode_value(f.type_oid, f.format, v) for f, v in zip(out["fields"], msg.values)])
        elif isinstance(msg, m.CommandComplete):
            out["tag"] = msg.tag
        elif isinstance(msg, m.ErrorResponse):
            out["error"] = msg.error
        elif isinstance(msg, (m.CopyInResponse, m.CopyOutResponse)):
            up.send(m.CopyFail("fakepm drift does not run COPY"))
        elif isinstance(msg, m.ReadyForQuery):
            break
    up.send(m.Query("ROLLBACK"))
    _drain(up)
    return out


def _drain(up: Upstream) -> None:
    while not isinstance(up.read_message(), m.ReadyForQuery):
        pass


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


def compare(rule: dict, got: dict) -> list[str]:
    """Differences between a recorded answer and what the server said now."""
    exp = rule
    if "sequence" in rule and rule["sequence"]:
        exp = rule["sequence"][0]
    diffs = []
    err = exp.get("error")
    now_err = got["error"]
    if err or now_err:
        if not err:
            return [f"error: recorded success, now ERROR {now_err.code} {now_err.message!r}"]
        if not now_err:
            return [f"error: recorded ERROR {err.get('code')} {err.get('message')!r}, now success ({got['tag']})"]
        if str(err.get("code")) != now_err.code:
            diffs.append(f"error code: recorded {err.get('code')}, now {now_err.code}")
        if err.get("message") != now_err.message:
            diffs.append(f"error message: recorded {err.get('message')!r}, now {now_err.message!r}")
        return diffs
    cols = _columns(exp.get("columns"))
    now_cols = [(f.name, type_name(f.type_oid, f.type_modifier)) for f in (got["fields"] or ())]
    if [c[0] for c in cols] != [c[0] for c in now_cols]:
        diffs.append(f"columns: recorded {[c[0] for c in cols]}, now {[c[0] for c in now_cols]}")
    else:
        for (name, t), (_, nt) in zip(cols, now_cols):
            if t != nt:
                diffs.append(f"column {name!r} type: recorded {t}, now {nt}")
    rows = exp.get("rows")
    if rows is not None and cols:
        want = [[_coerce(t, v) for (_, t), v in zip(cols, row if isinstance(row, list) else
                                                    [row.get(c) for c, _ in cols] if isinstance(row, dict) else [row])]
                for row in rows]
        if len(want) != len(got["rows"]):
            diffs.append(f"rows: recorded {len(want)}, now {len(got['rows'])}")
        for i, (a, b) in enumerate(zip(want, got["rows"])):
            for (name, _), x, y in zip(cols, a, b):
                if x != y:
                    diffs.append(f"row {i + 1} column {name!r}: recorded {_show(x)}, now {_show(y)}")
    if exp.get("tag") is not None and exp.get("tag") != got["tag"]:
        diffs.append(f"tag: recorded {exp.get('tag')!r}, now {got['tag']!r}")
    return diffs


_SKIP = frozenset({"BEGIN", "START", "COMMIT", "ROLLBACK", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "SET", "RESET",
                   "LISTEN", "UNLISTEN", "NOTIFY", "DISCARD", "DEALLOCATE", "CLOSE", "COPY", "PREPARE TRANSACTION",
                   "COMMIT PREPARED", "ROLLBACK PREPARED"})


def _recorded_statements(doc: dict) -> list[tuple]:
    """(number, sql, raw params, declared oids, expected answer in the rules' format) of each distinct
    statement of a `recording:` (the first time it was answered)."""
    from ..sql import classify, split_statements
    from .recording import unflatten, value_in

    stmts = (doc.get("recording") or {}).get("statements") or []
    described = {}
    for e in stmts:
        if "describe" in e:
            described.setdefault((e["describe"], tuple(e.get("types") or ())), e)
    out, seen = [], set()
    for i, e in enumerate(stmts):
        if "query" in e:
            sql, params, oids, cols = e["query"], (), (), None
        elif "bind" in e and not any(e.get("param_formats") or ()):  # binary values: not run
            sql, oids = e["bind"], tuple(e.get("types") or ())
            params = tuple(value_in(p) for p in e.get("params") or ())
            d = described.get((sql, oids))
            cols = d.get("columns") if d is not None else None
        else:
            continue
        if len(split_statements(sql)) != 1 or classify(sql) in _SKIP or (sql, params) in seen:
            continue
        seen.add((sql, params))
        parts = {k: v for p in unflatten(e) for k, v in p.items()}
        if "steps" in e and e["steps"]:
            parts = {k: v for p in unflatten(e["steps"][-1]) for k, v in p.items()}
        cols = parts.get("columns", cols)
        exp: dict = {"tag": parts.get("tag"), "error": parts.get("error")}
        if cols:
            fields = []
            for c in cols:
                ty = c.get("type", "text")
                oid = ty if isinstance(ty, int) else REGISTRY.by_name(ty).oid
                fields.append((c.get("name"), oid, c.get("typmod", -1)))
            exp["columns"] = [{"name": n, "type": type_name(o, tm)} for n, o, tm in fields]
            exp["rows"] = [[decode_value(o, 0, value_in(v)) for (_, o, _), v in zip(fields, row)]
                           for row in parts.get("rows") or []]
        out.append((i + 1, sql, params, oids, exp))
    return out


def drift(path: str, upstream: str) -> list[str]:
    """Every difference as one line "FILE: rule N (query): what differs"; [] when none."""
    from ..scenario.loader import read_plain

    doc = read_plain(path) or {}
    up = Upstream(UpstreamURL.parse(upstream), {"application_name": "fakepm-drift"}).connect()
    report = []
    try:
        recorded = str((doc.get("server") or {}).get("version", ""))
        now = up.parameters.get("server_version", "")
        if recorded and recorded != now:
            report.append(f"{path}: server_version: recorded {recorded!r}, now {now!r}")
        for n, sql, raw, oids, exp in _recorded_statements(doc):
            got = _run(up, sql, [], [], raw=raw, oids=oids)
            short = " ".join(sql.split())
            short = short if len(short) <= 60 else short[:57] + "..."
            report += [f"{path}: statement {n} ({short}): {d}" for d in compare(exp, got)]
        for i, rule in enumerate(doc.get("rules") or []):
            sql = rule.get("query")
            if not sql or sql.lstrip()[:4].upper() == "COPY":
                continue
            got = _run(up, sql, list(rule.get("params") or []), list(rule.get("param_types") or []))
            short = " ".join(sql.split())
            short = short if len(short) <= 60 else short[:57] + "..."
            report += [f"{path}: rule {i + 1} ({short}): {d}" for d in compare(rule, got)]
    finally:
        up.close()
    return report
