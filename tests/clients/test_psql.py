"""psql (libpq 15) against fakepm: -c, -f scripts with an error mid-way, \\gset, multi-statement,
an unmatched query, over TCP and over the Unix socket. psql sends only simple Queries."""

import os
import shutil
import subprocess

import pytest

from fakepm import FakePostgres
from realpg import needs_install

pytestmark = needs_install(shutil.which("psql") is None, reason="psql is not installed")


def psql(*args, dsn=None, input=None, env=None, timeout=20):
    """Run psql without ~/.psqlrc, errors in VERBOSE form (SQLSTATE shown); returns CompletedProcess."""
    cmd = ["psql", "-X", "-q", "-v", "VERBOSITY=verbose", "--no-align", "--tuples-only"]
    if dsn is not None:
        cmd.append(dsn)
    full_env = {**os.environ, "PGCONNECT_TIMEOUT": "5", **(env or {})}
    full_env.pop("PGSERVICE", None)
    return subprocess.run(cmd + list(args), input=input, capture_output=True, text=True, timeout=timeout,
                          env=full_env)


@pytest.fixture
def pg():
    with FakePostgres() as server:
        server.on("SELECT id, name FROM users ORDER BY id").reply(
            columns={"id": "int4", "name": "text"}, rows=[[1, "ada"], [2, "grace"]]
        )
        yield server


def test_c_single_query(pg):
    r = psql("-c", "SELECT id, name FROM users ORDER BY id", dsn=pg.dsn)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1|ada", "2|grace"]
    assert [q.sql for q in pg.queries] == ["SELECT id, name FROM users ORDER BY id"]
    assert pg.queries[0].protocol == "simple"
    pg.verify()


def test_multi_statement_query_in_one_c(pg):
    r = psql("-c", "SELECT 1 AS one; SELECT id, name FROM users ORDER BY id; SELECT 'x' AS x", dsn=pg.dsn)
    assert r.returncode == 0, r.stderr
    # psql -c shows only the last result of a multi-statement string, but all three ran on one Query
    assert r.stdout.splitlines()[-1] == "x"
    assert [q.sql.strip() for q in pg.queries] == ["SELECT 1 AS one", "SELECT id, name FROM users ORDER BY id",
                                                   "SELECT 'x' AS x"]
    pg.verify()


def test_script_with_error_mid_way_then_rollback(pg, tmp_path):
    pg.on("INSERT INTO items VALUES (70, 'psql')").reply(tag="INSERT 0 1")
    pg.on("SELECT 1/0").error("22012", "division by zero")
    script = tmp_path / "script.sql"
    script.write_text(
        "SELECT 1 AS one;\n"
        "BEGIN;\n"
        "INSERT INTO items VALUES (70, 'psql');\n"
        "SELECT 1/0;\n"
        "SELECT id, name FROM users ORDER BY id;\n"  # in the failed transaction: 25P02
        "ROLLBACK;\n"
        "SELECT $$dollar$$ AS d; SELECT 2 AS two;\n"
    )
    r = psql("-f", str(script), dsn=pg.dsn)
    assert r.returncode == 0, r.stderr  # errors do not stop a script without ON_ERROR_STOP
    assert r.stdout.splitlines() == ["1", "dollar", "2"]
    assert "ERROR:  22012: division by zero" in r.stderr
    assert "ERROR:  25P02: current transaction is aborted" in r.stderr
    sent = [q.sql.strip().rstrip(";") for q in pg.queries]
    assert sent == ["SELECT 1 AS one", "BEGIN", "INSERT INTO items VALUES (70, 'psql')", "SELECT 1/0",
                    "SELECT id, name FROM users ORDER BY id", "ROLLBACK", "SELECT $$dollar$$ AS d", "SELECT 2 AS two"]
    pg.verify()


def test_script_on_error_stop(pg, tmp_path):
    pg.on("SELECT 1/0").error("22012", "division by zero")
    script = tmp_path / "stop.sql"
    script.write_text("SELECT 1/0;\nSELECT id, name FROM users ORDER BY id;\n")
    r = psql("-v", "ON_ERROR_STOP=1", "-f", str(script), dsn=pg.dsn)
    assert r.returncode == 3
    assert [q.sql.strip().rstrip(";") for q in pg.queries] == ["SELECT 1/0"]


def test_gset_and_echo(pg):
    pg.on("SELECT name FROM users WHERE id = $1").reply(columns={"name": "text"}, rows=[["ada"]])
    r = psql(dsn=pg.dsn, input="SELECT name FROM users WHERE id = 1 \\gset\n\\echo got :name\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "got ada"
    # \gset is a psql command: the server sees the query without it, with the literal unified to $1
    assert [q.params for q in pg.queries] == [[1]]
    pg.verify()


def test_unmatched_query_reports_fp000(pg):
    r = psql("-c", "SELECT total FROM invoices", dsn=pg.dsn)
    assert r.returncode == 1
    assert "ERROR:  FP000: fakepm: no rule matches this query: SELECT total FROM invoices" in r.stderr
    assert "nearest rules" in r.stderr  # the HINT names the rule that came closest
    with pytest.raises(AssertionError, match="no rule matched 'SELECT total FROM invoices'"):
        pg.verify()


def test_builtins_need_no_rules(pg):
    r = psql("-c", "SHOW server_version", "-c", "SELECT current_user", "-c", "SET application_name = 'x'",
             "-c", "SELECT pg_catalog.version()", dsn=pg.dsn)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "17.4"
    assert lines[1] == "postgres"
    assert lines[-1].startswith("PostgreSQL 17.4 on ")
    pg.verify()


def test_unix_socket():
    with FakePostgres(unix_socket_dir=True) as pg:
        pg.on("SELECT id, name FROM users ORDER BY id").reply(
            columns={"id": "int4", "name": "text"}, rows=[[1, "ada"]]
        )
        assert os.path.exists(os.path.join(pg.unix_socket_dir, f".s.PGSQL.{pg.port}"))
        r = psql("-h", pg.unix_socket_dir, "-p", str(pg.port), "-U", "postgres", "-d", "postgres",
                 "-c", "SELECT id, name FROM users ORDER BY id", "-c", "SELECT inet_client_addr() IS NULL")
        assert r.returncode in (0, 1), r.stderr
        assert r.stdout.splitlines()[0] == "1|ada"
        assert pg.queries[0].sql == "SELECT id, name FROM users ORDER BY id"
        conns = {e["connection"] for e in pg.events if e["kind"] == "connect"}
        assert len(conns) == 1


def test_unix_socket_via_pghost_env():
    """libpq's default socket lookup: PGHOST=<dir> PGPORT=<port>, nothing on the command line."""
    with FakePostgres(unix_socket_dir=True) as pg:
        r = psql("-c", "SELECT 1", env={"PGHOST": pg.unix_socket_dir, "PGPORT": str(pg.port), "PGUSER": "postgres",
                                        "PGDATABASE": "postgres"})
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "1"
    assert not os.path.exists(pg.unix_socket_dir)  # the temporary directory is removed at stop


def test_listen_receives_a_notification_from_another_connection(pg):
    """psql prints notifications that arrived while a command ran, after that command."""

    @pg.handler("SELECT notify_me()", columns={"notify_me": "int4"})
    def notify_me(query):
        # a NOTIFY from "another connection" (the test) while this statement runs
        assert pg.notify("chan", "hello") == 1
        return [[1]]

    r = psql("-c", "LISTEN chan", "-c", "SELECT notify_me()", dsn=pg.dsn)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "1"
    assert 'Asynchronous notification "chan" with payload "hello" received from server process' in r.stdout
    pg.verify()


def test_sigint_cancels_a_running_query(pg):
    """psql answers SIGINT with a CancelRequest on a new connection: 57014, and psql goes on."""
    import signal
    import threading

    entered, release = threading.Event(), threading.Event()

    @pg.handler("SELECT slow()", columns={"slow": "int4"})
    def slow(query):
        entered.set()
        release.wait(20)
        return [[1]]

    proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "VERBOSITY=verbose", pg.dsn, "-c", "SELECT slow()"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert entered.wait(10), "the query never reached the handler"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 1
    assert "ERROR:  57014: canceling statement due to user request" in err
    assert any(e["kind"] == "cancel" for e in pg.events)
    r = psql("-c", "SELECT 42", dsn=pg.dsn)  # the server goes on
    assert r.stdout.strip() == "42"
