"""`fakepm check`: exact file:line:col messages for broken files; the bundled examples are valid."""

import glob
import json
import os

import jsonschema
import pytest
import yaml

from fakepm.scenario import ScenarioError, check_paths, load_scenario
from serve import HERE, REPO, SCENARIOS, run_check

BROKEN = sorted(glob.glob(os.path.join(REPO, "tests", "data", "broken", "*.yaml")))
GOOD = sorted(glob.glob(os.path.join(SCENARIOS, "*.yaml"))) + sorted(glob.glob(os.path.join(HERE, "*.yaml")))
SCHEMA = os.path.join(REPO, "src", "fakepm", "scenario", "schema.json")


def _rel(path):
    return os.path.relpath(path, REPO)


def _expected(path):
    with open(path[: -len(".yaml")] + ".expected") as fh:
        return fh.read().splitlines()


@pytest.mark.parametrize("path", BROKEN, ids=os.path.basename)
def test_broken_file_gives_the_exact_messages(path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert check_paths([_rel(path)]) == _expected(path)


def test_cli_check_on_the_broken_folder_prints_every_message_and_exits_1():
    r = run_check("tests/data/broken")
    assert r.returncode == 1
    expected = [line for p in BROKEN for line in _expected(p)]
    assert r.stdout.splitlines() == expected
    assert len(expected) > 60


def test_cli_check_exits_0_on_the_examples():
    r = run_check("scenarios", *[_rel(p) for p in GOOD])
    assert (r.returncode, r.stdout) == (0, ""), r.stdout
    assert "ok:" in r.stderr


def test_missing_path_is_a_problem(monkeypatch):
    monkeypatch.chdir(REPO)
    assert check_paths(["tests/data/no_such_file.yaml"]) == ["tests/data/no_such_file.yaml:1:1: file not found"]


def test_loading_a_broken_file_raises_with_the_same_messages(monkeypatch):
    monkeypatch.chdir(REPO)
    path = "tests/data/broken/rows.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert [str(p) for p in info.value.problems] == _expected(os.path.join(REPO, path))
    assert isinstance(info.value, ValueError) and "rows.yaml:7:9:" in str(info.value)


def test_schema_is_valid_and_every_bundled_example_validates():
    with open(SCHEMA) as fh:
        schema = json.load(fh)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    assert len(GOOD) >= 5
    for path in GOOD:
        with open(path) as fh:
            data = yaml.safe_load(fh)
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]
        assert errors == [], path


def test_schema_rejects_what_check_rejects():
    with open(SCHEMA) as fh:
        validator = jsonschema.Draft7Validator(json.load(fh))
    for name in ("unknown_keys.yaml", "wrong_types.yaml", "errors.yaml", "rules_misc.yaml"):
        with open(os.path.join(REPO, "tests", "data", "broken", name)) as fh:
            assert list(validator.iter_errors(yaml.safe_load(fh))), name


def test_the_issue_example_loads(monkeypatch):
    monkeypatch.chdir(HERE)
    sc = load_scenario("issue_example.yaml")
    assert sc.server["version"] == "16.4"
    assert len(sc.rules) == 9  # 8 own + 1 included
    assert "public.products" in sc.tables


def test_serve_refuses_a_broken_file_with_the_same_messages():
    import subprocess

    from serve import fakepm_command

    r = subprocess.run(fakepm_command() + ["serve", "tests/data/broken/rows.yaml"], capture_output=True, text=True,
                       cwd=REPO, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert "tests/data/broken/rows.yaml:7:9: rows item 2 has 1 value(s) but there are 2 column(s) (id, name)" in r.stderr
