"""JSON documents of the control API, read by the scenario parser.

A rule, an answer, a table or a fault arriving as JSON is turned into the located nodes the
YAML loader builds (scenario/nodes.py), then read by the same parsers: a JSON rule takes
exactly the keys of a YAML rule and gets the same checks and messages. Where YAML messages
name `file:line:col`, these name the field: `rules[0].error.code: ...`.
"""

from __future__ import annotations

import json
from typing import Any

from ..scenario.context import Ctx, Problem
from ..scenario.nodes import Node
from .values import TAGS, from_json


class SpecError(ValueError):
    """A JSON document with problems; `problems` is [{"field", "message"}]."""

    def __init__(self, problems: list[dict], what: str = "invalid request"):
        self.problems = problems
        super().__init__(what + ": " + "; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"]
                                                  for p in problems))


def to_node(value: Any, path: str) -> Node:
    """A Node tree for a JSON value; every node's `file` is its field path (line and col 0)."""
    if isinstance(value, dict):
        if value and (set(value) <= set(TAGS) | {"$type"}) and any(k in TAGS for k in value):
            v = from_json(value)  # a tagged value: {"$bytes": ...}
            return Node("scalar", v, path, 0, 0)
        values, keys = {}, {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            keys[str(k)] = Node("scalar", str(k), sub, 0, 0, raw=str(k))
            values[str(k)] = to_node(v, sub)
        return Node("map", values, path, 0, 0, keys=keys)
    if isinstance(value, list):
        return Node("seq", [to_node(v, f"{path}[{i}]") for i, v in enumerate(value)], path, 0, 0)
    raw = None
    if isinstance(value, str):
        raw = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        raw = json.dumps(value)
    return Node("scalar", value, path, 0, 0, raw=raw, quoted=isinstance(value, str))


def problems_of(problems: list[Problem]) -> list[dict]:
    return [{"field": p.file, "message": p.message} for p in problems]


def parse_rules(items: list, path: str = "rules") -> list[dict]:
    """Rule(**kwargs) arguments for JSON rules (YAML's keys); SpecError naming every problem."""
    from ..scenario import registry
    from ..scenario.rulespec import parse_rule

    registry.load_plugins()
    ctx = Ctx(path)
    out = []
    for i, item in enumerate(items):
        node = to_node(item, f"{path}[{i}]")
        kw = parse_rule(ctx, node, i)
        if kw is not None:
            out.append(kw)
    if ctx.problems:
        raise SpecError(problems_of(ctx.problems), "invalid rule")
    return out


def parse_answer(item: Any, path: str = "answer"):
    """A Result from a JSON answer (columns + rows, tag, error, notices, ... as in YAML)."""
    from ..scenario import registry
    from ..scenario.rulespec import ANSWER_KEYS, parse_answer as _parse

    registry.load_plugins()
    ctx = Ctx(path)
    node = to_node(item, path)
    if not ctx.want_map(node, path):
        raise SpecError(problems_of(ctx.problems), "invalid answer")
    ctx.keys(node, list(ANSWER_KEYS) + registry.rule_key_names(), path)
    result = _parse(ctx, node)
    if ctx.problems or result is None:
        raise SpecError(problems_of(ctx.problems) or [{"field": path, "message": "not an answer"}], "invalid answer")
    return result


def parse_tables(item: Any, path: str = "tables") -> dict:
    """{qualified name: TableSpec} from a JSON `tables:` mapping."""
    from ..scenario.loader import _tables

    ctx = Ctx(path)
    out = _tables(ctx, to_node(item, path))
    if ctx.problems:
        raise SpecError(problems_of(ctx.problems), "invalid tables")
    return out


def parse_columns(item: Any, path: str = "columns"):
    from ..scenario.rulespec import parse_columns as _parse

    ctx = Ctx(path)
    columns, _ = _parse(ctx, to_node(item, path))
    if ctx.problems:
        raise SpecError(problems_of(ctx.problems), "invalid columns")
    return columns
