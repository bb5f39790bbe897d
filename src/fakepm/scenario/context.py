"""Problem collection for scenario validation: every message names file:line:col.

Validation never stops at the first problem: `fakepm check` prints them all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .nodes import Node


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file has problems; `problems` lists them (each prints as file:line:col: message)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("invalid scenario:\n" + "\n".join(str(p) for p in self.problems))


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


class Ctx:
    """Where a section parser reports problems. `error(node, message)` records one at the node."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def error(self, node: Node | None, message: str) -> None:
        if node is None:
            self.problems.append(Problem(self.file, 1, 1, message))
        else:
            self.problems.append(Problem(node.file, node.line, node.col, message))

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    # -- shape checks: return True when fine (the problem is recorded otherwise) -------------
    def keys(self, node: Node, allowed, where: str, required=()) -> bool:
        """Unknown keys get a "did you mean"; missing required keys are named."""
        ok = True
        allowed = list(allowed)
        for key, knode in node.keys.items():
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                if not hint:
                    hint = f" (known keys: {', '.join(sorted(allowed))})"
                self.error(knode, f'unknown key "{key}" in {where}{hint}')
                ok = False
        for key in required:
            if key not in node.value:
                self.error(node, f'{where} needs "{key}"')
                ok = False
        return ok

    def want_map(self, node: Node, what: str) -> bool:
        if node.kind != "map":
            self.error(node, f"{what} must be a mapping, got {node.describe()}")
            return False
        return True

    def want_seq(self, node: Node, what: str) -> bool:
        if node.kind != "seq":
            self.error(node, f"{what} must be a list, got {node.describe()}")
            return False
        return True

    def want_str(self, node: Node, what: str, *, allow_numbers: bool = False) -> bool:
        v = node.value
        if node.kind == "scalar" and isinstance(v, str):
            return True
        if allow_numbers and node.kind == "scalar" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return True
        self.error(node, f"{what} must be a string, got {node.describe()}")
        return False

    def want_int(self, node: Node, what: str, *, minimum: int | None = None) -> bool:
        v = node.value
        if node.kind != "scalar" or not isinstance(v, int) or isinstance(v, bool):
            self.error(node, f"{what} must be an integer, got {node.describe()}")
            return False
        if minimum is not None and v < minimum:
            self.error(node, f"{what} must be >= {minimum}, got {v}")
            return False
        return True

    def want_number(self, node: Node, what: str, *, minimum: float | None = None) -> bool:
        v = node.value
        if node.kind != "scalar" or not isinstance(v, (int, float)) or isinstance(v, bool):
            self.error(node, f"{what} must be a number, got {node.describe()}")
            return False
        if minimum is not None and v < minimum:
            self.error(node, f"{what} must be >= {minimum}, got {v}")
            return False
        return True

    def want_bool(self, node: Node, what: str) -> bool:
        if node.kind != "scalar" or not isinstance(node.value, bool):
            self.error(node, f"{what} must be true or false, got {node.describe()}")
            return False
        return True
