"""`rules:` entries -> Rule keyword arguments and Result answers, with located problems.

A rule is `query:` or `regex:`, matching filters (params, user, database,
application_name, state, priority, times), and an answer: `columns:` + `rows:`/`generate:`,
`tag:`, `error:`, `notices:`, `notify:`, `delay:` -- or a `sequence:` of such answers.
"""

from __future__ import annotations

import re
from dataclasses import fields as dc_fields

from ..answers.result import Column, Result
from ..protocol.errors import PgError, resolve_sqlstate
from ..protocol.types import REGISTRY
from . import generate, registry
from .context import Ctx, did_you_mean
from .nodes import Node

ANSWER_KEYS = ("columns", "rows", "generate", "tag", "error", "notices", "notify", "delay")
MATCH_KEYS = ("query", "regex", "params", "param_types", "times", "expect", "priority", "user", "database",
              "application_name", "state", "name")
RULE_KEYS = MATCH_KEYS + ANSWER_KEYS + ("sequence",)
ERROR_KEYS = tuple(f.name for f in dc_fields(PgError) if f.name not in ("extra", "file", "line", "routine"))
NOTICE_SEVERITIES = ("WARNING", "NOTICE", "DEBUG", "INFO", "LOG")
ERROR_SEVERITIES = ("ERROR", "FATAL", "PANIC")


def parse_rule(ctx: Ctx, node: Node, index: int) -> dict | None:
    """Rule(**kwargs) arguments for one `rules:` item, or None if it has problems."""
    where = f"rule {index + 1}"
    if not ctx.want_map(node, where):
        return None
    before = len(ctx.problems)
    ctx.keys(node, list(RULE_KEYS) + registry.rule_key_names(), where)
    kw: dict = {"source": f"{_short(node.file)}:{node.line}"}

    q, rx = node.get("query"), node.get("regex")
    misspelt = any(k not in RULE_KEYS and did_you_mean(k, ("query", "regex")) for k in node.value)
    if q is None and rx is None:
        if not misspelt:  # "unknown key qurey; did you mean query?" already says it
            ctx.error(node, f"{where} needs \"query\" or \"regex\"")
    elif q is not None and rx is not None:
        ctx.error(node.keys["regex"], f"{where} has both \"query\" and \"regex\"; give one")
    elif q is not None:
        if ctx.want_str(q, "query") and not q.value.strip():
            ctx.error(q, "query must not be empty")
        kw["query"] = q.value
    else:
        if ctx.want_str(rx, "regex"):
            try:
                kw["regex"] = re.compile(rx.value, re.IGNORECASE | re.DOTALL)
            except re.error as e:
                ctx.error(rx, f"regex does not compile: {e}")

    if (n := node.get("params")) is not None and ctx.want_seq(n, "params"):
        kw["params"] = n.plain()
    if (n := node.get("param_types")) is not None and ctx.want_seq(n, "param_types"):
        kw["param_types"] = tuple(_type_name(ctx, item, "param_types item") for item in n)
    if (n := node.get("times")) is not None and ctx.want_int(n, "times", minimum=0):
        kw["times"] = n.value
    if (n := node.get("expect")) is not None:
        v = n.value
        if n.kind == "scalar" and (isinstance(v, bool) or (isinstance(v, int) and v >= 0)):
            kw["expect"] = v
        else:
            ctx.error(n, f"expect must be a call count (0, 1, 2, ...) or true (at least once), got {n.describe()}")
    if (n := node.get("priority")) is not None and ctx.want_int(n, "priority"):
        kw["priority"] = n.value
    for key in ("user", "database", "application_name", "name"):
        if (n := node.get(key)) is not None and ctx.want_str(n, key, allow_numbers=True):
            kw[key] = n.text()
    if (n := node.get("state")) is not None:
        kw["state"] = _state(ctx, n)

    seq = node.get("sequence")
    answer_keys = [k for k in node.value if k in ANSWER_KEYS or k in registry.rule_key_names()]
    if seq is not None:
        if answer_keys:
            ctx.error(node.keys[answer_keys[0]], f'"{answer_keys[0]}" cannot be used together with "sequence" '
                                                 f"(put it in each sequence item)")
        if ctx.want_seq(seq, "sequence"):
            if not seq.value:
                ctx.error(seq, "sequence must have at least one answer")
            answers = []
            for i, item in enumerate(seq):
                if ctx.want_map(item, f"sequence item {i + 1}"):
                    ctx.keys(item, list(ANSWER_KEYS) + registry.rule_key_names(), f"sequence item {i + 1}")
                    answers.append(parse_answer(ctx, item))
            kw["answers"] = answers
    else:
        kw["answers"] = [parse_answer(ctx, node)]
    if len(ctx.problems) > before:
        return None
    return kw


def _short(path: str) -> str:
    import os

    return os.path.basename(path)


def _state(ctx: Ctx, n: Node):
    from ..answers.rules import RuleState

    if not ctx.want_map(n, "state"):
        return None
    ctx.keys(n, ("when", "set", "scope"), "state")
    when, set_, scope = n.get("when"), n.get("set"), n.get("scope")
    if when is None and set_ is None:
        ctx.error(n, 'state needs "when" and/or "set"')
    out = {}
    for key, sub in (("when", when), ("set", set_)):
        if sub is not None and ctx.want_str(sub, f"state {key}", allow_numbers=True):
            out[key] = sub.text()
    if scope is not None and ctx.want_str(scope, "state scope"):
        if scope.value not in ("global", "connection"):
            ctx.error(scope, f'state scope must be "global" or "connection", got "{scope.value}"'
                             + did_you_mean(scope.value, ("global", "connection")))
        else:
            out["scope"] = scope.value
    return RuleState(**out)


def _type_name(ctx: Ctx, n: Node, what: str):
    if not ctx.want_str(n, what):
        return None
    try:
        REGISTRY.parse_type_spec(n.value)
    except Exception as e:  # noqa: BLE001 - the registry's message names the type
        ctx.error(n, f"{what}: {e}")
        return None
    return n.value


# ---------------------------------------------------------------------------------- answers
def parse_answer(ctx: Ctx, node: Node) -> Result | None:
    """A Result from the answer keys of a rule or a sequence item."""
    before = len(ctx.problems)
    err_node = node.get("error")
    if err_node is not None:
        for k in ("columns", "rows", "generate", "tag"):
            if k in node.value:
                ctx.error(node.keys[k], f'"{k}" cannot be used together with "error"')
    columns, fakers = None, None
    if (n := node.get("columns")) is not None:
        n_before = len(ctx.problems)
        columns, fakers = parse_columns(ctx, n)
        if len(ctx.problems) > n_before:
            columns = None  # rows cannot be checked against broken columns: one message is enough
    rows_node, gen_node = node.get("rows"), node.get("generate")
    rows: object = []
    if rows_node is not None and gen_node is not None:
        ctx.error(node.keys["generate"], 'give "rows" or "generate", not both')
    elif rows_node is not None:
        if columns is None and "columns" not in node.value:
            ctx.error(node.keys["rows"], '"rows" needs "columns" (the names and types of the values)')
        elif columns is not None:
            rows = parse_rows(ctx, rows_node, columns, "rows")
    elif gen_node is not None:
        if columns is None and "columns" not in node.value:
            ctx.error(node.keys["generate"], '"generate" needs "columns"')
        elif columns is not None:
            rows = _generate(ctx, gen_node, columns, fakers)
    if fakers and gen_node is None and any(fakers):
        fk = next(n for n in _column_nodes(node.get("columns")) if n is not None)
        ctx.error(fk, '"faker" is only used with "generate: {rows: N, seed: S}"')
    kw: dict = {"columns": columns, "rows": rows if rows is not None else [], "static": not callable(rows)}
    if (n := node.get("tag")) is not None and ctx.want_str(n, "tag"):
        if not n.value.strip():
            ctx.error(n, "tag must not be empty")
        kw["tag"] = n.value.strip()
    if err_node is not None:
        kw["error"] = _error(ctx, err_node, "error", ERROR_SEVERITIES, "ERROR")
    if (n := node.get("notices")) is not None:
        kw["notices"] = _notices(ctx, n)
    if (n := node.get("notify")) is not None:
        kw["notify"] = _notify(ctx, n)
    if (n := node.get("delay")) is not None and ctx.want_number(n, "delay (seconds)", minimum=0):
        kw["delay"] = float(n.value)
    for key, sub in node.items():
        if key in ANSWER_KEYS or key in RULE_KEYS:
            continue
        parser = registry.rule_key_parser(key)
        if parser is None:
            if key in registry.RESERVED_RULE_KEYS:
                ctx.error(node.keys[key], f'"{key}:" in a rule is not supported yet (reserved for the {key} feature)')
            continue
        try:
            more = parser(ctx, sub)
        except Exception as e:  # noqa: BLE001 - a plug-in's bug must still name the place
            ctx.error(sub, f"{key}: {type(e).__name__}: {e}")
            continue
        if more:
            kw.update(more)
    if len(ctx.problems) > before:
        return None
    return Result(**kw)


def _column_nodes(n: Node | None):
    """The `faker` nodes of a columns spec (for locating messages)."""
    if n is None:
        return []
    items = n.value.values() if n.kind == "map" else list(n) if n.kind == "seq" else []
    return [it.get("faker") for it in items if it.kind == "map"]


def parse_columns(ctx: Ctx, n: Node):
    """(Column tuple, faker specs) from a mapping {name: type | {type, faker, args}} or a list of {name, type}."""
    specs: list[tuple[str, Node, Node]] = []  # (name, spec node, name node)
    if n.kind == "map":
        if not n.value:
            ctx.error(n, "columns must name at least one column")
        for name, sub in n.items():
            specs.append((name, sub, n.keys[name]))
    elif n.kind == "seq":
        if not n.value:
            ctx.error(n, "columns must name at least one column")
        for i, item in enumerate(n):
            if not ctx.want_map(item, f"columns item {i + 1}"):
                continue
            ctx.keys(item, ("name", "type", "faker", "args"), f"columns item {i + 1}", required=("name",))
            name = item.get("name")
            if name is not None and ctx.want_str(name, "column name", allow_numbers=True):
                specs.append((name.text(), item, name))
    else:
        ctx.error(n, f"columns must be a mapping {{name: type}} or a list of {{name, type}}, got {n.describe()}")
        return None, None
    columns, fakers, seen = [], [], {}
    for name, spec, name_node in specs:
        if name in seen:
            ctx.error(name_node, f'duplicate column "{name}"')
        seen[name] = True
        type_node, faker = spec, None
        if spec.kind == "map":
            if n.kind == "map":
                ctx.keys(spec, ("type", "faker", "args"), f'column "{name}"')
            type_node = spec.get("type")
            faker = _faker(ctx, spec, name)
        if type_node is None:
            type_str = "text"
        elif ctx.want_str(type_node, f'type of column "{name}"'):
            type_str = type_node.value
        else:
            continue
        try:
            t, typmod = REGISTRY.parse_type_spec(type_str)
        except Exception as e:  # noqa: BLE001 - the registry's message names the type
            ctx.error(type_node, f'column "{name}": {e}')
            continue
        columns.append(Column(str(name), t, typmod))
        fakers.append(faker)
    return tuple(columns), fakers


def _faker(ctx: Ctx, spec: Node, col: str):
    f, args = spec.get("faker"), spec.get("args")
    if f is None:
        if args is not None:
            ctx.error(spec.keys["args"], f'column "{col}": "args" needs "faker"')
        return None
    if not ctx.want_str(f, f'faker provider of column "{col}"'):
        return None
    if not generate.has_provider(f.value):
        ctx.error(f, f'column "{col}": unknown faker provider "{f.value}"'
                     + did_you_mean(f.value, generate.provider_names()))
        return None
    kwargs = {}
    if args is not None and ctx.want_map(args, f'args of column "{col}"'):
        kwargs = args.plain()
    return (f.value, kwargs, f)


def parse_rows(ctx: Ctx, n: Node, columns, what: str) -> list:
    """Rows as lists or mappings keyed by column; each value checked against its column type."""
    if not ctx.want_seq(n, what):
        return []
    names = [c.name for c in columns]
    out = []
    for i, row in enumerate(n):
        if row.kind == "map":
            for key in row.value:
                if key not in names:
                    ctx.error(row.keys[key], f'{what} item {i + 1}: unknown column "{key}" (columns: {", ".join(names)})'
                                             + did_you_mean(key, names))
            cells = [row.value.get(name) for name in names]
        elif row.kind == "seq":
            if len(row.value) != len(columns):
                ctx.error(row, f"{what} item {i + 1} has {len(row.value)} value(s) but there are "
                               f"{len(columns)} column(s) ({', '.join(names)})")
                continue
            cells = list(row.value)
        elif len(columns) == 1:
            cells = [row]
        else:
            ctx.error(row, f"{what} item {i + 1} must be a list of {len(columns)} values or a mapping, "
                           f"got {row.describe()}")
            continue
        values = []
        for col, cell in zip(columns, cells):
            if cell is None or cell.plain() is None:
                values.append(None)
                continue
            raw = cell.plain()
            if cell.kind == "scalar" and not isinstance(raw, str) and col.type.name in ("text", "varchar", "name",
                                                                                         "bpchar", "numeric"):
                raw = cell.text()  # `9.90` as written, not the float 9.9
            try:
                values.append(col.type.coerce(raw))
            except Exception as e:  # noqa: BLE001 - the type's message says what is wrong
                ctx.error(cell, f'{what} item {i + 1}, column "{col.name}": {e}')
        out.append(tuple(values))
    return out


def _generate(ctx: Ctx, n: Node, columns, fakers):
    if not ctx.want_map(n, "generate"):
        return []
    ctx.keys(n, ("rows", "seed", "locale", "now"), "generate", required=("rows",))
    count, seed, locale, now = 0, 0, None, None
    if (t := n.get("now")) is not None:
        now = _timestamp(ctx, t)
    if (c := n.get("rows")) is not None and ctx.want_int(c, "generate rows", minimum=0):
        count = c.value
    if (s := n.get("seed")) is not None and ctx.want_int(s, "generate seed"):
        seed = s.value
    if (loc := n.get("locale")) is not None and ctx.want_str(loc, "generate locale"):
        locale = loc.value
        try:
            from faker import Faker

            Faker(locale)
        except AttributeError:
            ctx.error(loc, f'unknown faker locale "{locale}"')
            return []
    fakers = fakers or [None] * len(columns)
    # try a few values now, so a provider whose values the column type refuses is a load-time problem
    for col, spec in zip(columns, fakers):
        if spec is None:
            continue
        try:
            for _ in zip(range(3), generate.make_rows((col,), [spec], 3, seed, locale, now)()):
                pass
        except Exception as e:  # noqa: BLE001 - a provider/type mismatch, or bad provider args
            ctx.error(spec[2], f'column "{col.name}": faker "{spec[0]}" gives values that do not fit: {e}')
    return generate.make_rows(columns, fakers, count, seed, locale, now)


def _timestamp(ctx: Ctx, n: Node):
    from datetime import date, datetime, timezone

    v = n.value
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            v = None
    elif isinstance(v, date) and not isinstance(v, datetime):
        v = datetime(v.year, v.month, v.day)
    if not isinstance(v, datetime):
        ctx.error(n, f'generate now must be a timestamp such as "2024-06-01T00:00:00Z", got {n.describe()}')
        return None
    return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


def _error(ctx: Ctx, n: Node, what: str, severities, default_severity: str, default_code: str | None = None):
    if n.kind == "scalar" and isinstance(n.value, str) and default_code is not None:
        return PgError(default_code, n.value, severity=default_severity)
    if not ctx.want_map(n, what):
        return None
    required = ("message",) if default_code is not None else ("code", "message")
    ctx.keys(n, ERROR_KEYS, what, required=required)
    fields = {}
    for key, sub in n.items():
        if key not in ERROR_KEYS:
            continue
        if key in ("position", "internal_position"):
            if ctx.want_int(sub, f"{what} {key}", minimum=1):
                fields[key] = sub.value
        elif ctx.want_str(sub, f"{what} {key}", allow_numbers=True):
            fields[key] = sub.text()
    code = n.get("code")
    if code is not None and "code" in fields:
        try:
            fields["code"] = resolve_sqlstate(fields["code"])
        except ValueError as e:
            ctx.error(code, f"{what} code: {e}")
            return None
    sev = n.get("severity")
    if sev is not None and "severity" in fields:
        if fields["severity"].upper() not in severities:
            ctx.error(sev, f'{what} severity must be one of {", ".join(severities)}, got "{fields["severity"]}"')
            return None
    fields.setdefault("severity", default_severity)
    if default_code is not None:
        fields.setdefault("code", default_code)
    if "code" not in fields or "message" not in fields:
        return None
    try:
        return PgError(**fields)
    except ValueError as e:
        ctx.error(n, f"{what}: {e}")
        return None


def _notices(ctx: Ctx, n: Node) -> tuple:
    items = list(n) if n.kind == "seq" else [n]
    out = []
    for i, item in enumerate(items):
        e = _error(ctx, item, f"notices item {i + 1}", NOTICE_SEVERITIES, "NOTICE", default_code="00000")
        if e is not None:
            out.append(e)
    return tuple(out)


def _notify(ctx: Ctx, n: Node) -> tuple:
    items = list(n) if n.kind == "seq" else [n]
    out = []
    for i, item in enumerate(items):
        what = "notify" if n.kind != "seq" else f"notify item {i + 1}"
        if not ctx.want_map(item, what):
            continue
        ctx.keys(item, ("channel", "payload"), what, required=("channel",))
        ch, payload = item.get("channel"), item.get("payload")
        if ch is not None and ctx.want_str(ch, f"{what} channel", allow_numbers=True):
            text = ""
            if payload is not None and ctx.want_str(payload, f"{what} payload", allow_numbers=True):
                text = payload.text()
            out.append((ch.text(), text))
    return tuple(out)
