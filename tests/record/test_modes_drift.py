"""Record modes, the pytest marker, and `fakepm drift`, against a real PostgreSQL."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
import yaml

from record_roles import upstream_url
from fakepm.proxy.record import RecordError, Recording
from served import FAKEPM

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def items(upstream_pg):
    upstream_pg.psql("DROP TABLE IF EXISTS drift_items; "
                     "CREATE TABLE drift_items (id int PRIMARY KEY, name text, price numeric(8,2)); "
                     "INSERT INTO drift_items VALUES (1, 'pen', 1.50), (2, 'ink', 7.25)")
    return upstream_pg


def _record(url: str, path, mode: str, queries: list) -> None:
    with Recording(url, path, mode=mode) as rec:
        with psycopg.connect(rec.dsn, autocommit=True, connect_timeout=10) as conn:
            for sql, params in queries:
                conn.execute(sql, params).fetchall()


def test_modes_once_new_all(items, tmp_path):
    url, path = upstream_url(items), tmp_path / "items.yaml"
    q1 = ("SELECT name, price FROM drift_items WHERE id = %s", [1])
    q2 = ("SELECT name, price FROM drift_items WHERE id = %s", [2])
    _record(url, path, "once", [q1])
    with pytest.raises(RecordError, match="exists and the record mode is 'once'"):
        Recording(url, path, mode="once")
    r = subprocess.run([*FAKEPM, "record", "--upstream", url, "--out", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "exists and the record mode is 'once'" in r.stderr
    _record(url, path, "new", [q1, q2])
    binds = [e for e in yaml.safe_load(path.read_text())["recording"]["statements"] if "bind" in e]
    # psycopg sends 1 and 2 as binary int2: the values are kept as sent
    assert [(e["params"], e["rows"]) for e in binds] == [([b"\x00\x01"], [["pen", "1.50"]]),
                                                         ([b"\x00\x01"], [["pen", "1.50"]]),
                                                         ([b"\x00\x02"], [["ink", "7.25"]])]
    _record(url, path, "all", [q2])
    binds = [e for e in yaml.safe_load(path.read_text())["recording"]["statements"] if "bind" in e]
    assert [e["params"] for e in binds] == [[b"\x00\x02"]]


def test_drift_reports_every_difference(items, tmp_path):
    url, path = upstream_url(items), tmp_path / "drift.yaml"
    _record(url, path, "all", [("SELECT id, name, price FROM drift_items ORDER BY id", []),
                               ("SELECT price FROM drift_items WHERE id = %s::text::int", ["2"])])
    ok = subprocess.run([*FAKEPM, "drift", str(path), "--upstream", url], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    items.psql("UPDATE drift_items SET price = 8.00 WHERE id = 2; "
               "ALTER TABLE drift_items ALTER COLUMN name TYPE varchar(20)")
    try:
        bad = subprocess.run([*FAKEPM, "drift", str(path), "--upstream", url], capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 1
        lines = bad.stdout.splitlines()
        first = [x for x in lines if "ORDER BY id" in x]
        second = [x for x in lines if "WHERE id = $1" in x]
        assert any(x.endswith("column 'name' type: recorded text, now varchar(20)") for x in first), lines
        assert any(x.endswith("row 2 column 'price': recorded Decimal('7.25'), now Decimal('8.00')") for x in first)
        assert any(x.endswith("row 1 column 'price': recorded Decimal('7.25'), now Decimal('8.00')")
                   for x in second), lines
        assert len(lines) == 3, lines
    finally:
        items.psql("UPDATE drift_items SET price = 7.25 WHERE id = 2; "
                   "ALTER TABLE drift_items ALTER COLUMN name TYPE text")


def test_pytest_marker_records_then_replays(items, pytester, monkeypatch):
    pytester.makepyfile(test_app="""
        import psycopg, pytest

        @pytest.mark.fakepm(scenario="app.yaml", record="new")
        def test_price(fakepm):
            with psycopg.connect(fakepm.dsn, connect_timeout=10) as conn:
                row = conn.execute("SELECT name, price FROM drift_items WHERE id = %s", [1]).fetchone()
            assert row[0] == "pen" and str(row[1]) == "1.50"
    """)
    monkeypatch.setenv("FAKEPM_UPSTREAM", upstream_url(items))
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    recorded = yaml.safe_load((pytester.path / "app.yaml").read_text())
    assert [e["bind"] for e in recorded["recording"]["statements"] if "bind" in e] == \
        ["SELECT name, price FROM drift_items WHERE id = $1"]
    monkeypatch.delenv("FAKEPM_UPSTREAM")  # no database: the same test replays the file
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_cli_record_with_local_user_and_redaction(items, tmp_path):
    from served import Served

    out = tmp_path / "cli.yaml"
    rec = Served("record", "--upstream", upstream_url(items), "--out", str(out), "--user", "app:local-pw:md5",
                 "--redact", r"pen|ink")
    try:
        dsn = rec.dsn.replace("rec_scram@", "app:local-pw@")
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            assert conn.execute("SELECT name FROM drift_items WHERE name = 'pen'").fetchone() == ("pen",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn.replace("local-pw", "wrong"), connect_timeout=10)
    finally:
        log = rec.stop()
    assert rec.proc.returncode == 0, log
    doc = yaml.safe_load(out.read_text())
    stmts = [e for e in doc["recording"]["statements"] if e.get("query", "").startswith("SELECT name")]
    assert [(e["query"], e["rows"], e["tag"]) for e in stmts] == [
        ("SELECT name FROM drift_items WHERE name = '[REDACTED]'", [["[REDACTED]"]], "SELECT 1")]
    assert "local-pw" not in out.read_text()
