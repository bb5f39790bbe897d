"""Backend mode from a scenario file, the command line and the pytest marker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

psycopg = pytest.importorskip("psycopg")

from fakepm import FakePostgres  # noqa: E402
from fakepm.scenario import check_paths  # noqa: E402

SCENARIO = """\
server:
  backend: postgres
schema:
  - CREATE TABLE notes (id serial PRIMARY KEY, body text)
  - extra.sql
tables:
  shop.products:
    columns: {id: int4, name: text, price: "numeric(10,2)", tags: "text[]"}
    key: [id]
    rows: [[1, "Widget's", "9.99", [a, "b c"]], [2, null, "0.50", []]]
rules:
  - query: SELECT name FROM shop.products WHERE id = $1
    params: [2]
    columns: {name: text}
    rows: [[scripted]]
"""


@pytest.fixture
def scenario(tmp_path):
    (tmp_path / "extra.sql").write_text("INSERT INTO notes (body) VALUES ('from extra.sql');\n")
    path = tmp_path / "backend.yaml"
    path.write_text(SCENARIO)
    return path


def test_scenario_builds_the_database_and_rules_go_first(engine, scenario):
    with FakePostgres(scenario=scenario) as pg:
        assert pg.backend is not None
        with psycopg.connect(pg.dsn) as c:
            assert c.execute("SELECT body FROM notes").fetchall() == [("from extra.sql",)]
            rows = c.execute("SELECT id, name, price::text, tags FROM shop.products ORDER BY id").fetchall()
            assert rows == [(1, "Widget's", "9.99", ["a", "b c"]), (2, None, "0.50", [])]
            q = "SELECT name FROM shop.products WHERE id = %s"
            assert c.execute(q, [2]).fetchone() == ("scripted",)
            assert c.execute(q, [1]).fetchone() == ("Widget's",)


def test_schema_given_in_python_as_text_or_path(engine, tmp_path):
    f = tmp_path / "s.sql"
    f.write_text("CREATE TABLE b (x int); INSERT INTO b VALUES (2);")
    with FakePostgres(backend=engine, schema=["CREATE TABLE a (x int)", f]) as pg:
        with psycopg.connect(pg.dsn) as c:
            assert c.execute("SELECT (SELECT count(*) FROM a), (SELECT x FROM b)").fetchone() == (0, 2)


def test_check_names_bad_backend_and_missing_schema_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  backend: postgress\nschema: [missing.sql]\n")
    problems = check_paths([bad])
    assert problems == [
        f'{bad}:2:12: server backend must be none, postgres, postgres:<major version> (e.g. postgres:15) or a '
        f'postgresql:// URL of an existing server, got "postgress"',
        f'{bad}:3:10: schema file "missing.sql" not found ({tmp_path}/missing.sql)',
    ]


def test_serve_backend_from_the_command_line(engine, scenario, tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("rules:\n  - query: SELECT 'rule'\n    columns: {x: text}\n    rows: [[r]]\n")
    proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve", str(plain), "--backend", "postgres"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        dsn = proc.stdout.readline().strip()
        assert dsn.startswith("postgresql://"), proc.stderr.read() if proc.poll() is not None else dsn
        with psycopg.connect(dsn) as c:
            assert c.execute("SELECT 'rule'").fetchone() == ("r",)
            assert c.execute("SELECT 1 + 1").fetchone() == (2,)  # the engine
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0


def test_serve_refuses_an_unknown_backend(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fakepm.cli", "serve", "--backend", "mysql"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--backend: it must be none, postgres" in out.stderr


def test_pytest_marker_backend(engine, tmp_path):
    test = tmp_path / "test_marker.py"
    test.write_text(textwrap.dedent("""
        import psycopg, pytest

        @pytest.mark.fakepm(backend="postgres")
        def test_real(fakepm):
            fakepm.on("SELECT 'hello'").reply(columns={"x": "text"}, rows=[["scripted"]])
            with psycopg.connect(fakepm.dsn) as c:
                assert c.execute("SELECT 'hello'").fetchone() == ("scripted",)
                assert c.execute("SELECT upper('hello')").fetchone() == ("HELLO",)
            assert [q.rule for q in fakepm.queries][-1] == "engine"
    """))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
