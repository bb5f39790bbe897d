"""Plug-in points for scenario keys owned by other rooms (COPY, walsender, faults).

    from fakepm.scenario import register_section, register_rule_key

    def parse_replication(ctx, node):        # ctx.error(node, msg) reports file:line:col
        ...                                  # node: a located Node (node.plain() for plain data)
        return lambda pg: ...                # applied to the FakePostgres at load (or None)
    register_section("replication", parse_replication)

    def parse_copy(ctx, node):
        return {"copy": CopyAnswer(...)}     # Result fields for this rule's answer
    register_rule_key("copy", parse_copy)

A reserved key (`fault`, `replication`, `copy`) that nobody registered makes the loader try
to import the module that would (RESERVED below); if that module is absent the file gets
a clear "not supported yet" problem.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .context import Ctx
from .nodes import Node

SectionParser = Callable[[Ctx, Node], "Callable[[Any], None] | None"]
RuleKeyParser = Callable[[Ctx, Node], "dict | None"]

_sections: dict[str, SectionParser] = {}
_rule_keys: dict[str, RuleKeyParser] = {}

# key -> modules that register a parser for it when imported (first that exists wins)
RESERVED_SECTIONS: dict[str, tuple[str, ...]] = {
    "fault": ("fakepm.faults.scenario",),
    "faults": ("fakepm.faults.scenario",),
    "replication": ("fakepm.walsender.scenario",),
    "copy": ("fakepm.answers.copyspec", "fakepm.copy.scenario"),
}
RESERVED_RULE_KEYS: dict[str, tuple[str, ...]] = {
    "fault": ("fakepm.faults.scenario",),
    "copy": ("fakepm.answers.copyspec", "fakepm.copy.scenario"),
}
_plugins_loaded = False


def load_plugins() -> None:
    """Import every known plug-in module once, so the keys they register are known to validation."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for modules in list(RESERVED_SECTIONS.values()) + list(RESERVED_RULE_KEYS.values()):
        _try_import(modules)


def register_section(name: str, parser: SectionParser) -> None:
    """Handle a top-level key `name:`; parser(ctx, node) -> applier(pg) | None."""
    _sections[name] = parser


def register_rule_key(name: str, parser: RuleKeyParser) -> None:
    """Handle `name:` in a rule (and in a `sequence:` item); parser(ctx, node) -> dict of Result fields."""
    _rule_keys[name] = parser


def _try_import(modules: tuple[str, ...]) -> None:
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and (mod == e.name or mod.startswith(e.name + ".")):
                continue  # the module itself is absent: not supported yet
            raise


def section_parser(name: str) -> SectionParser | None:
    if name not in _sections and name in RESERVED_SECTIONS:
        _try_import(RESERVED_SECTIONS[name])
    return _sections.get(name)


def rule_key_parser(name: str) -> RuleKeyParser | None:
    if name not in _rule_keys and name in RESERVED_RULE_KEYS:
        _try_import(RESERVED_RULE_KEYS[name])
    return _rule_keys.get(name)


def section_names() -> list[str]:
    return sorted(set(_sections) | set(RESERVED_SECTIONS))


def rule_key_names() -> list[str]:
    return sorted(set(_rule_keys) | set(RESERVED_RULE_KEYS))
