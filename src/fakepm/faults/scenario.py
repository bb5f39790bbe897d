"""YAML: `fault:` on a rule (or a sequence item) and the server-level `faults:` list.

    rules:
      - query: COMMIT
        tag: COMMIT
        fault: {error: "40001", first: 2}      # the first 2 COMMITs fail, the 3rd succeeds
    faults:
      - {delay: 0.2, every: 10}                # every 10th statement waits 200 ms
      - {reset: true, connection: 3, at: startup}
"""

from __future__ import annotations

import dataclasses
import os

from ..scenario.registry import register_rule_key, register_section
from .plan import FaultSpecError, parse_fault


def _one(ctx, node, where):
    try:
        plan = parse_fault(node.plain(), where)
        return dataclasses.replace(plan, source=f"{os.path.basename(node.file)}:{node.line}")
    except FaultSpecError as e:
        ctx.error(node, str(e))
        return None


def parse_rule_fault(ctx, node):
    items = list(node) if node.is_seq else [node]
    plans = [p for i, n in enumerate(items) if (p := _one(ctx, n, "fault")) is not None]
    if not plans:
        return None
    return {"fault": plans[0] if len(plans) == 1 and not node.is_seq else tuple(plans)}


def parse_server_faults(ctx, node):
    items = list(node) if node.is_seq else [node]
    plans = [p for i, n in enumerate(items) if (p := _one(ctx, n, f"faults item {i + 1}")) is not None]
    if not plans:
        return None

    def apply(pg):
        for p in plans:
            pg.fault(p)

    return apply


register_rule_key("fault", parse_rule_fault)
register_section("faults", parse_server_faults)
register_section("fault", parse_server_faults)
