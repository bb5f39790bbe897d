"""Scenario files: YAML -> validated rules, server settings and declared tables.

    sc = load_scenario("scenarios/shop.yaml")   # raises ScenarioError (file:line:col: ...)
    sc.apply(pg)                                # what FakePostgres.load() does
    check_paths(["scenarios"])                  # `fakepm check`: list of "file:line:col: message"

Other rooms plug their own keys in with `register_section` / `register_rule_key`
(see registry.py).
"""

from .context import Ctx, Problem, ScenarioError
from .loader import Scenario, check_file, check_paths, load_scenario
from .nodes import Node
from .registry import register_rule_key, register_section

__all__ = [
    "Ctx",
    "Node",
    "Problem",
    "Scenario",
    "ScenarioError",
    "check_file",
    "check_paths",
    "load_scenario",
    "register_rule_key",
    "register_section",
]
