"""YAML -> located nodes: every value keeps the file, line and column it came from.

PyYAML's `compose` gives nodes with marks; scalars are then resolved with the safe
constructor (so `1` is an int, `true` a bool, `null` None) while `raw` keeps the text as
written (a version like `16.10` or a parameter like `on` must not become a float/bool).
"""

from __future__ import annotations

from typing import Any, Iterator

import yaml


class Node:
    """A located YAML value. kind: "map" (value: dict key -> Node), "seq" (list of Node), "scalar"."""

    __slots__ = ("kind", "value", "raw", "file", "line", "col", "keys", "quoted")

    def __init__(self, kind: str, value: Any, file: str, line: int, col: int, raw: str | None = None,
                 keys: dict | None = None, quoted: bool = False):
        self.kind = kind
        self.value = value
        self.raw = raw
        self.file = file
        self.line = line  # 1-based
        self.col = col  # 1-based
        self.keys = keys or {}  # map only: key -> the Node of the key itself (for "unknown key" positions)
        self.quoted = quoted

    # -- convenience for section parsers ------------------------------------------------
    @property
    def is_map(self) -> bool:
        return self.kind == "map"

    @property
    def is_seq(self) -> bool:
        return self.kind == "seq"

    @property
    def is_scalar(self) -> bool:
        return self.kind == "scalar"

    def get(self, key: str, default=None) -> "Node | None":
        return self.value.get(key, default) if self.kind == "map" else default

    def __contains__(self, key: str) -> bool:
        return self.kind == "map" and key in self.value

    def items(self) -> Iterator[tuple[str, "Node"]]:
        return iter(self.value.items()) if self.kind == "map" else iter(())

    def __iter__(self):
        return iter(self.value) if self.kind == "seq" else iter(())

    def plain(self) -> Any:
        """The plain Python value (dicts, lists, scalars) without locations."""
        if self.kind == "map":
            return {k: v.plain() for k, v in self.value.items()}
        if self.kind == "seq":
            return [v.plain() for v in self.value]
        return self.value

    def text(self) -> str:
        """A scalar as written in the file (`16.10` stays "16.10", `on` stays "on")."""
        if self.kind == "scalar" and self.value is not None and self.raw is not None:
            return self.raw
        return "" if self.value is None else str(self.value)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def describe(self) -> str:
        """Short description of the value for messages: `a string "abc"`, `a list`, ..."""
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        v = self.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return f"a boolean ({str(v).lower()})"
        if isinstance(v, int):
            return f"an integer ({v})"
        if isinstance(v, float):
            return f"a number ({v})"
        if isinstance(v, str):
            return f'a string "{v}"' if len(v) < 60 else f'a string "{v[:57]}..."'
        return f"a {type(v).__name__} ({self.raw})"

    def __repr__(self) -> str:
        return f"<Node {self.kind} {self.where}>"


class DuplicateKey(Exception):
    def __init__(self, key: str, first: Node, again: Node):
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


# Aliases and merge keys (`*a`, `<<: *a`) reuse a node: each use becomes located nodes of its
# own here, so a few lines of nested aliases can stand for billions of values (an "alias
# bomb": PyYAML itself builds them lazily, fakepm and most loaders expand them). A scenario
# that expands beyond this many values through aliases is refused at once; real scenarios
# reuse a block of rows or settings a few times.
MAX_ALIAS_EXPANSION = 100_000


class AliasBomb(Exception):
    def __init__(self, line: int, col: int):
        super().__init__("alias bomb")
        self.line, self.col = line, col


class _Budget:
    __slots__ = ("expanded", "seen")

    def __init__(self):
        self.seen: set[int] = set()  # ids of composed nodes already converted once
        self.expanded = 0  # values converted again through an alias


def parse(text: str, file: str) -> tuple[Node | None, list[tuple[int, int, str]]]:
    """Parse YAML text into a Node tree. Returns (node, problems as (line, col, message)).

    A syntax error stops parsing (node None); duplicate keys are reported and the later
    value is kept, as most YAML loaders do. Aliases expanding beyond MAX_ALIAS_EXPANSION
    values stop it too.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as e:  # a NUL or other unprintable character, found before parsing
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        return None, [(line, col, f"YAML error: unacceptable character #x{e.character:04x} (special characters "
                                  f"are not allowed; write it as an escape in a double-quoted string)")]
    problems: list[tuple[int, int, str]] = []
    try:
        root = loader.get_single_node()
        if root is None:
            return None, problems
        return _convert(loader, root, file, problems, 0, _Budget()), problems
    except AliasBomb as e:
        return None, [(e.line, e.col, f"aliases expand this file beyond {MAX_ALIAS_EXPANSION} values (an alias "
                                      f"bomb?): fakepm does not read it")]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = e.problem or "invalid YAML"
        if e.context:
            what = f"{e.context}: {what}" if "found" in what else f"{what} ({e.context})"
        return None, [(line, col, f"YAML syntax error: {what}")]
    except yaml.YAMLError as e:
        return None, [(1, 1, f"YAML error: {e}")]
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _flatten(loader, node, budget: _Budget, flat: set) -> None:
    """PyYAML's flatten_mapping (merge keys), bottom-up with a bound: merging a map that merges
    maps multiplies its pairs, so the pairs a merge would make are counted before it happens."""
    if id(node) in flat:
        return
    flat.add(id(node))
    merged = 0
    for knode, vnode in node.value:
        if knode.tag == _MERGE_TAG:
            subs = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for sub in subs:
                if isinstance(sub, yaml.MappingNode):
                    _flatten(loader, sub, budget, flat)
                    merged += len(sub.value)
    if merged:
        budget.expanded += merged
        if budget.expanded > MAX_ALIAS_EXPANSION:
            raise AliasBomb(node.start_mark.line + 1, node.start_mark.column + 1)
        loader.flatten_mapping(node)


def _convert(loader, node, file: str, problems: list, depth: int = 0, budget: _Budget | None = None) -> Node:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if budget is None:
        budget = _Budget()
    if id(node) in budget.seen:  # an alias: this value is being expanded again
        budget.expanded += 1
        if budget.expanded > MAX_ALIAS_EXPANSION:
            raise AliasBomb(line, col)
    else:
        budget.seen.add(id(node))
    if depth > 100:
        problems.append((line, col, "nesting too deep (more than 100 levels)"))
        return Node("scalar", None, file, line, col)
    if isinstance(node, yaml.MappingNode):
        _flatten(loader, node, budget, set())  # YAML merge keys (<<: *anchor)
        values: dict[str, Node] = {}
        keys: dict[str, Node] = {}
        for knode, vnode in node.value:
            k = _convert(loader, knode, file, problems, depth + 1, budget)
            key = k.text() if k.kind == "scalar" else str(k.plain())
            if key in keys:
                first = keys[key]
                problems.append((k.line, k.col, f'duplicate key "{key}" (first given at line {first.line})'))
            keys[key] = k
            values[key] = _convert(loader, vnode, file, problems, depth + 1, budget)
        return Node("map", values, file, line, col, keys=keys)
    if isinstance(node, yaml.SequenceNode):
        return Node("seq", [_convert(loader, v, file, problems, depth + 1, budget) for v in node.value], file,
                    line, col)
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as e:
        problems.append((line, col, f"cannot read value: {e.problem}"))
        value = node.value
    return Node("scalar", value, file, line, col, raw=node.value, quoted=node.style in ("'", '"'))
