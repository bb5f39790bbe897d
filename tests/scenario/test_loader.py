"""The scenario loader as a library: registry plug-ins, reserved keys, includes, lazy generated rows."""

import os
import subprocess
import sys
import textwrap

import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.answers.result import make_columns
from fakepm.scenario import ScenarioError, check_file, load_scenario, register_rule_key, register_section, registry
from fakepm.scenario.generate import make_rows
from serve import serve


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_sections", dict(registry._sections))
    monkeypatch.setattr(registry, "_rule_keys", dict(registry._rule_keys))
    monkeypatch.setattr(registry, "RESERVED_SECTIONS", dict(registry.RESERVED_SECTIONS))
    monkeypatch.setattr(registry, "RESERVED_RULE_KEYS", dict(registry.RESERVED_RULE_KEYS))


def test_registered_section_and_rule_key_plug_in(tmp_path, clean_registry):
    applied = []

    def parse_greeting(ctx, node):
        if not ctx.want_map(node, "greeting"):
            return None
        ctx.keys(node, ("text",), "greeting", required=("text",))
        return lambda pg: applied.append((pg, node.plain()))

    def parse_shout(ctx, node):
        if not ctx.want_str(node, "shout"):
            return None
        return {"tag": node.value.upper()}

    register_section("greeting", parse_greeting)
    register_rule_key("shout", parse_shout)
    path = write(tmp_path, "s.yaml", """
        greeting: {text: hello}
        rules:
          - query: LOCK TABLE t
            shout: lock table
    """)
    with FakePostgres(scenario=path) as pg, psycopg.connect(pg.dsn, autocommit=True) as c:
        assert c.execute("LOCK TABLE t").statusmessage == "LOCK TABLE"
        assert applied == [(pg, {"text": "hello"})]
    bad = write(tmp_path, "bad.yaml", """
        greeting: {txt: hello}
    """)
    assert [str(p) for p in check_file(bad)] == [
        f'{bad}:2:11: greeting needs "text"', f'{bad}:2:12: unknown key "txt" in greeting; did you mean "text"?']


def test_reserved_key_without_its_module_is_not_supported_yet(tmp_path, clean_registry):
    registry.RESERVED_SECTIONS["future"] = ("fakepm_no_such_room.scenario",)
    registry.RESERVED_RULE_KEYS["later"] = ("fakepm_no_such_room.scenario",)
    path = write(tmp_path, "s.yaml", """
        future: {x: 1}
        rules:
          - query: SELECT 1
            later: true
    """)
    assert [str(p) for p in check_file(path)] == [
        f'{path}:2:1: "future:" is not supported yet (reserved for the future feature)',
        f'{path}:5:5: "later:" in a rule is not supported yet (reserved for the later feature)']


def test_reserved_key_whose_module_exists_is_imported_and_used(tmp_path, clean_registry, monkeypatch):
    (tmp_path / "fakepm_test_future_room.py").write_text(textwrap.dedent("""
        from fakepm.scenario import register_section
        def parse(ctx, node):
            return lambda pg: pg.config.parameters.update(node.plain())
        register_section("future", parse)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.RESERVED_SECTIONS["future"] = ("fakepm_test_future_room",)
    path = write(tmp_path, "s.yaml", "future: {lock_timeout: 7s}\n")
    with FakePostgres(scenario=path) as pg, psycopg.connect(pg.dsn) as c:
        assert c.execute("SHOW lock_timeout").fetchone() == ("7s",)
    sys.modules.pop("fakepm_test_future_room", None)


def test_own_rules_come_before_included_ones_and_settings_override(tmp_path):
    write(tmp_path, "base.yaml", """
        server: {version: "12.1", parameters: {TimeZone: Asia/Tokyo, lock_timeout: 1s}}
        tables:
          t: {columns: {a: int4}}
        rules:
          - query: SELECT who()
            columns: {who: text}
            rows: [[base]]
    """)
    top = write(tmp_path, "top.yaml", """
        include: base.yaml
        server: {parameters: {TimeZone: UTC}}
        tables:
          t: {columns: {a: text}}
        rules:
          - query: SELECT who()
            columns: {who: text}
            rows: [[top]]
    """)
    sc = load_scenario(top)
    assert sc.server == {"version": "12.1", "parameters": {"TimeZone": "UTC", "lock_timeout": "1s"}}
    assert sc.tables["public.t"].columns[0].type.name == "text"
    assert [r["source"] for r in sc.rules] == ["top.yaml:7", "base.yaml:6"]
    with FakePostgres(scenario=top) as pg, psycopg.connect(pg.dsn) as c:
        assert c.execute("SELECT who()").fetchone() == ("top",)


def test_a_scenario_applied_twice_counts_calls_per_server(tmp_path):
    path = write(tmp_path, "s.yaml", """
        rules:
          - query: SELECT 7 AS n
            times: 1
            columns: {n: int4}
            rows: [[7]]
    """)
    sc = load_scenario(path)
    for _ in range(2):
        with FakePostgres() as pg:
            sc.apply(pg)
            with psycopg.connect(pg.dsn) as c:
                assert c.execute("SELECT 7 AS n").fetchone() == (7,)
            assert pg.rules.rules[0].calls == 1


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        FakePostgres(scenario=str(tmp_path / "missing.yaml"))
    path = write(tmp_path, "s.yaml", "rules: {query: SELECT 1}\n")
    with pytest.raises(ValueError, match=r"s\.yaml:1:8: rules must be a list, got a mapping"):
        FakePostgres(scenario=path)
    empty = write(tmp_path, "empty.yaml", "# nothing yet\n")
    assert check_file(empty) == []


def test_loading_into_a_running_server_adds_rules_live(tmp_path):
    path = write(tmp_path, "s.yaml", """
        rules:
          - query: SELECT late()
            columns: {late: text}
            rows: [[loaded]]
    """)
    with FakePostgres() as pg, psycopg.connect(pg.dsn) as c:
        pg.load(path)
        assert c.execute("SELECT late()").fetchone() == ("loaded",)


def test_generated_rows_are_deterministic_per_seed_and_lazy():
    cols = make_columns({"id": "int8", "email": "text", "n": "int4"})
    fakers = [None, ("email", {}), ("random_int", {"min": 0, "max": 9})]
    a = make_rows(cols, fakers, 20, seed=1)
    assert callable(a) and not isinstance(a(), list)
    assert list(a()) == list(a()) == list(make_rows(cols, fakers, 20, seed=1)())
    assert list(make_rows(cols, fakers, 20, seed=2)()) != list(a())


def test_many_generated_rows_keep_memory_flat():
    # in a fresh interpreter, so the peak RSS (a high-water mark) belongs to this generation alone
    code = textwrap.dedent("""
        import resource
        from fakepm.answers.result import make_columns
        from fakepm.scenario.generate import make_rows
        rows = make_rows(make_columns({"id": "int8", "label": "text", "at": "timestamptz"}), [None] * 3,
                         300_000, 0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count = sum(1 for _ in rows())
        print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    # (300,000 rows: a million took over a minute on a loaded 2-CPU machine and timed out once)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    count, growth_kb = map(int, out.stdout.split())
    assert count == 300_000
    assert growth_kb < 20_000  # a list of 300,000 (int8, text, timestamptz) tuples would need about 60 MB


def _vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read the server's peak memory")
def test_generated_rows_stream_through_the_server(tmp_path):
    path = write(tmp_path, "big.yaml", """
        rules:
          - query: SELECT id, label FROM big
            columns: {id: int8, label: text}
            generate: {rows: 300000}
    """)
    with serve(path) as dsn:
        pid = dsn.pid
        with psycopg.connect(dsn) as c:
            before = _vm_hwm_kb(pid)
            n = sum(1 for _ in c.cursor().stream("SELECT id, label FROM big"))
            after = _vm_hwm_kb(pid)
    assert n == 300000
    assert after - before < 60_000  # kB; buffering 300k rows as Python tuples would take > 100 MB


@pytest.mark.fakepm(scenario="tls.yaml")
def test_server_tls_from_the_scenario(fakepm):
    assert "sslmode=require" in fakepm.dsn
    with psycopg.connect(fakepm.dsn) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT secret FROM vault").fetchone() == ("hush",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(fakepm.dsn.replace("sslmode=require", "sslmode=disable"))


def test_serve_version_flag_wins_over_the_file():
    with serve("scenarios/shop.yaml", "--version", "13.2") as dsn, psycopg.connect(dsn) as c:
        assert c.info.parameter_status("server_version") == "13.2"
        assert c.execute("SELECT id, name, price FROM products WHERE id = %s", [2]).fetchone()[1] == "Gadget"
