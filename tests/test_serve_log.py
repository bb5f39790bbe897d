"""`fakepm serve`'s log on stderr: a line per statement saying who answered (a rule with its
file:line, a built-in, NO RULE with the nearest rules), connections; text and JSON; -q."""

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest

SHOP = os.path.join(os.path.dirname(__file__), "..", "scenarios", "shop.yaml")


def serve(*args):
    proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve", SHOP, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    dsn = proc.stdout.readline().strip()
    assert dsn.startswith("postgresql://"), dsn
    return proc, dsn


def run_three_statements(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT id, name, price FROM products ORDER BY id").fetchall()
        conn.execute("SELECT version()").fetchone()
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM products")


def stop(proc) -> list[str]:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    return err.splitlines()


def test_text_lines_for_a_matched_a_built_in_and_an_unmatched_statement():
    proc, dsn = serve()
    run_three_statements(dsn)
    time.sleep(0.2)
    lines = stop(proc)
    text = "\n".join(lines)
    matched = next(x for x in lines if "SELECT id, name, price FROM products ORDER BY id" in x)
    assert matched.endswith('-> rule shop.yaml:26 "list products"')
    assert next(x for x in lines if "SELECT version()" in x).endswith("-> built-in (select version())")
    unmatched = next(x for x in lines if "SELECT * FROM products" in x)
    assert "-> NO RULE (FP000); nearest: stock check" in unmatched
    assert "rule has 'SELECT stock FROM products ...' where the query has 'SELECT * FROM products'" in unmatched
    assert "connected: user=postgres database=shop" in text and "disconnected: client sent Terminate" in text


def test_json_lines_say_the_same_for_machines():
    proc, dsn = serve("--log-format", "json")
    run_three_statements(dsn)
    time.sleep(0.2)
    records = [json.loads(x) for x in stop(proc) if x.startswith("{")]
    stmts = {r["sql"]: r for r in records if r["event"] == "statement"}
    listed = stmts["SELECT id, name, price FROM products ORDER BY id"]
    assert listed["answered_by"] == "rule" and listed["rule"]["source"] == "shop.yaml:26"
    assert listed["rule"]["name"] == "list products" and listed["connection"] == 1
    assert stmts["SELECT version()"]["answered_by"] == "builtin"
    miss = stmts["SELECT * FROM products"]
    assert miss["answered_by"] == "none" and miss["nearest"][0].startswith("stock check")
    assert {"connect", "disconnect"} <= {r["event"] for r in records}
    assert all(r["time"].endswith("+00:00") for r in records)


def test_quiet_keeps_only_the_unmatched_statements():
    proc, dsn = serve("-q")
    run_three_statements(dsn)
    time.sleep(0.2)
    lines = [x for x in stop(proc) if not x.startswith("#")]
    assert len(lines) == 1 and "SELECT * FROM products -> NO RULE (FP000)" in lines[0]


def test_the_admin_url_is_the_second_line_of_stdout_and_a_fault_shows_in_the_log():
    proc, dsn = serve("--admin", ":0")
    admin = proc.stdout.readline().strip()
    assert admin.startswith("http://127.0.0.1:") and admin.endswith("/__admin")
    import urllib.request

    req = urllib.request.Request(admin + "/faults", data=b'{"error": "40001", "query": "COMMIT"}', method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(psycopg.errors.SerializationFailure):
            conn.commit()
    time.sleep(0.2)
    lines = stop(proc)
    assert any("fault error@before_reply(admin API) fired at before_reply" in x for x in lines)


def test_stop_sends_fatal_57p01_to_connected_clients():
    proc, dsn = serve("-q")
    conn = psycopg.connect(dsn, autocommit=True)
    stop(proc)
    with pytest.raises(psycopg.errors.AdminShutdown, match="terminating connection due to administrator command"):
        conn.execute("SELECT 1")
    conn.close()


def test_a_stderr_nobody_reads_never_stalls_the_server():
    """Lines beyond the log's queue are dropped (and counted), the server goes on answering."""
    proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve", SHOP], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        dsn = proc.stdout.readline().strip()
        t = time.monotonic()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(3000):  # ~400 KB of log lines into a 64 KB pipe nobody reads
                conn.execute("SELECT version()")
        assert time.monotonic() - t < 30
    finally:
        proc.kill()
        proc.communicate(timeout=15)


def test_the_shared_fixture_serves_the_bundled_shop(fakepm_serve, scenarios_dir):
    served = fakepm_serve(os.path.join(scenarios_dir, "shop.yaml"), "--admin", ":0", "-q")
    with psycopg.connect(served.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT stock FROM products WHERE id = %s", [3]).fetchone() == (0,)
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(served.admin + "/verify", method="POST"), timeout=5) as r:
        assert r.status == 200
