"""Scenario files that are not scenarios: problems name the file, never quote what is in it, and
an alias bomb is refused at once (a bound on how far aliases expand)."""

import subprocess
import sys
import time

import pytest

from fakepm.scenario import check_paths, load_scenario
from fakepm.scenario.context import ScenarioError

SECRET = "hunter2-s3cr3t-token"


def _problems(path) -> str:
    return "\n".join(check_paths([str(path)]))


def test_include_of_a_file_that_is_not_a_scenario_names_it_without_quoting_it(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/false\n")
    env = tmp_path / "secrets.yaml"
    env.write_text(f"DB_PASSWORD: {SECRET}\nAPI_TOKEN: {SECRET}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"token: *{SECRET}\nkey: '{SECRET}\n")
    for target, expect in [(passwd, "a scenario file must be a mapping"), (env, "is not a scenario file"),
                           (broken, "YAML syntax error")]:
        main = tmp_path / "main.yaml"
        main.write_text(f"include: [{target.name}]\nrules: []\n")
        text = _problems(main)
        assert expect in text and str(target.name) in text, text
        assert SECRET not in text and "root:x" not in text and "DB_PASSWORD" not in text, text
        with pytest.raises(ScenarioError) as e:
            load_scenario(main)
        assert SECRET not in str(e.value)


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nrules: []\n")  # 9**9 = 387 million strings if expanded
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "fakepm.cli", "check", str(bomb)], capture_output=True, text=True,
                         timeout=60)
    elapsed = time.monotonic() - t0
    assert out.returncode == 1 and "alias bomb" in out.stdout, out.stdout + out.stderr
    assert elapsed < 5, f"fakepm check took {elapsed:.1f} s on an alias bomb"


def test_merge_key_bomb_and_honest_aliases(tmp_path):
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    for i in range(1, 10):
        lines.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]}")
    bomb = tmp_path / "merge.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    _problems(bomb)
    assert time.monotonic() - t0 < 5
    ok = tmp_path / "ok.yaml"  # aliases as scenarios use them: reused rows and settings
    ok.write_text("tables:\n  t:\n    columns: {a: int4, b: text}\n    rows: &rows [[1, x], [2, y]]\n"
                  "rules:\n  - query: SELECT a, b FROM t\n    columns: &cols {a: int4, b: text}\n    rows: *rows\n"
                  "  - query: SELECT a, b FROM t ORDER BY a\n    columns: *cols\n    rows: *rows\n")
    assert _problems(ok) == ""


def test_a_huge_file_is_not_read(tmp_path):
    from fakepm.scenario import loader

    big = tmp_path / "big.yaml"
    with open(big, "w") as f:
        f.write("rules: []\n# " + "x" * (loader.MAX_SCENARIO_BYTES + 10) + "\n")
    assert "larger than 64 MiB" in _problems(big)


def test_alias_bomb_in_a_recording_tail_is_refused_quickly(tmp_path):
    """A recording's `recording:` tail is read with the C parser, which shares aliased values:
    a value used twice is refused there, and the located parser then names the bomb."""
    lines = ["rules: []", "# " + "x" * 5000, "recording:", "  match: shape", "  connections: []", "  statements:",
             '  - {query: "SELECT 1", rows: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]}']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f'  - {{query: "SELECT 1", rows: &{name} [' + ",".join([f"*{prev}"] * 9) + "]}")
    bomb = tmp_path / "recording.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    text = _problems(bomb)
    assert "alias bomb" in text and time.monotonic() - t0 < 5, text
