"""FakePostgres(subprocess=True): the same server and API in a child process.

Clients that block inside C code holding the GIL (libpq's blocking calls as psycopg exposes them,
psycopg2's conn.cancel()) deadlock an in-process server; against the child they work."""

import os
import select
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from fakepm import FakePostgres, PgError
from fakepm.child import ChildPostgres


def test_the_tour_runs_the_same_in_a_child_process():
    with FakePostgres(subprocess=True) as pg:
        assert isinstance(pg, ChildPostgres) and pg.pid != os.getpid()
        pg.on("SELECT name FROM users WHERE id = $1").reply(columns={"name": "text"}, rows=[["ada"]])
        pg.on(regex=r"^DELETE").error("42501", "permission denied for table users")

        @pg.handler("SELECT balance FROM accounts WHERE id = $1", columns={"balance": "numeric"})
        def balance(query):  # runs here, in the test's process
            assert query.connection.user == "postgres"
            return [[100 * query.params[0]]]

        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT name FROM users WHERE id = %s", [7]).fetchone() == ("ada",)
            assert conn.execute("select name from users where id = 7").fetchone() == ("ada",)
            assert conn.execute("SELECT balance FROM accounts WHERE id = %s", [3]).fetchone() == (300,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM users")
        assert [q.params for q in pg.queries if "users" in q.sql and not q.sql.startswith("DELETE")] == [[7], [7]]
        pg.verify()
    assert not pg.running


def test_copy_both_driven_with_libpqs_blocking_calls():
    """The README's COPY both example: the script runs in the child, the client's blocking calls
    (which keep the GIL) wait on another process."""
    with FakePostgres(subprocess=True) as pg:
        pg.on("START_CHAT").copy_both(script=[{"send": "welcome"}, {"recv": "ping", "send": "pong"}])
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            pgc = conn.pgconn
            pgc.send_query(b"START_CHAT")
            assert pgc.get_result().status == psycopg.pq.ExecStatus.COPY_BOTH
            assert pgc.get_copy_data(0) == (7, b"welcome")
            pgc.put_copy_data(b"ping")
            pgc.flush()
            assert pgc.get_copy_data(0) == (4, b"pong")
            assert pgc.get_copy_data(0)[0] == -1  # the server's CopyDone
            pgc.put_copy_end()
            pgc.flush()
            assert pgc.get_result().status == psycopg.pq.ExecStatus.COMMAND_OK
            while pgc.get_result() is not None:
                pass
        assert pg.copies[-1].rows == [b"ping"]
        pg.verify()


def test_psycopg2_cancel_from_another_thread():
    psycopg2 = pytest.importorskip("psycopg2")
    with FakePostgres(subprocess=True) as pg:
        conn = psycopg2.connect(pg.dsn)
        timer = threading.Timer(0.3, conn.cancel)  # holds the GIL until the server answers the cancel
        timer.start()
        t = time.monotonic()
        with pytest.raises(psycopg2.errors.QueryCanceled):
            conn.cursor().execute("SELECT pg_sleep(10)")
        assert time.monotonic() - t < 5
        timer.join()
        conn.close()
        assert any(e["kind"] == "cancel" for e in pg.events)


def test_a_copy_both_handler_runs_in_the_test_process():
    with FakePostgres(subprocess=True) as pg:
        seen = []

        @pg.on("COPY chat FROM STDIN").copy_both
        def chat(channel):
            channel.send(b"hello")
            for msg in channel:
                seen.append(msg)
                channel.send(msg.upper())

        with psycopg.connect(pg.dsn, autocommit=True) as conn:  # non-blocking libpq: lets the handler run
            pgc = conn.pgconn

            def copy_data():
                for _ in range(200):
                    n, data = pgc.get_copy_data(1)
                    if n:
                        return n, data
                    select.select([pgc.socket], [], [], 0.1)
                    pgc.consume_input()
                raise TimeoutError

            pgc.send_query(b"COPY chat FROM STDIN")
            while pgc.is_busy():
                select.select([pgc.socket], [], [], 0.1)
                pgc.consume_input()
            assert pgc.get_result().status == psycopg.pq.ExecStatus.COPY_BOTH
            assert copy_data() == (5, b"hello")
            pgc.put_copy_data(b"abc")
            pgc.flush()
            assert copy_data() == (3, b"ABC")
            pgc.put_copy_end()
            pgc.flush()
            assert copy_data()[0] == -1
            for _ in range(100):
                while pgc.is_busy():
                    select.select([pgc.socket], [], [], 0.1)
                    pgc.consume_input()
                if pgc.get_result() is None:
                    break
        assert seen == [b"abc"]


def test_handler_failures_and_pg_errors_cross_back():
    with FakePostgres(subprocess=True) as pg:
        @pg.handler("SELECT boom()", columns={"x": "int4"})
        def boom(q):
            raise ZeroDivisionError("no")

        @pg.handler("SELECT refuse()")
        def refuse(q):
            raise PgError("42501", "not you")

        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InternalError_, match="ZeroDivisionError"):
                conn.execute("SELECT boom()")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not you"):
                conn.execute("SELECT refuse()")
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            pg.verify()


def test_rules_faults_state_reset_and_the_journal():
    with FakePostgres(subprocess=True, version="15.4", database="shop") as pg:
        rule = pg.on("SELECT status FROM orders WHERE id = $1", state={"when": "paid"}).reply(
            columns={"status": "text"}, rows=[["paid"]])
        plan = pg.fault(error="40001", query="COMMIT", first=1)
        pg.table("items", {"id": "int8", "name": "text"})
        with psycopg.connect(pg.dsn) as conn:
            assert conn.info.parameter_status("server_version") == "15.4"
            with pytest.raises(psycopg.Error):
                conn.execute("SELECT status FROM orders WHERE id = %s", [1])
            conn.rollback()
            pg.set_state("paid")
            assert pg.state == "paid"
            assert conn.execute("SELECT status FROM orders WHERE id = %s", [1]).fetchone() == ("paid",)
            with pytest.raises(psycopg.errors.SerializationFailure):
                conn.commit()
            with conn.cursor().copy("COPY items (id, name) FROM STDIN") as cp:
                cp.write_row([1, "a"])
        assert rule.calls == 1
        assert pg.copies[-1].rows == [(1, "a")] and pg.copies[-1].table == "items"
        deadline = time.monotonic() + 10  # the child sees the client's Terminate a moment after close()
        while pg.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [c.database for c in pg.connections] == []
        assert len(pg.unmatched) == 1
        pg.remove_fault(plan)
        assert pg.remove_rule(rule) and not pg.remove_rule(rule)
        pg.reset()
        assert pg.queries == [] and len(pg.rules) == 0
        pg.verify()


def test_a_scenario_with_problems_fails_start_with_the_same_error(tmp_path):
    from fakepm.scenario.context import ScenarioError

    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - qurey: SELECT 1\n")
    with pytest.raises(ScenarioError, match='did you mean "query"'):
        FakePostgres(bad, subprocess=True).start()


def test_the_child_ends_when_the_test_process_dies():
    code = ("import sys, time; from fakepm import FakePostgres; pg = FakePostgres(subprocess=True).start(); "
            "print(pg.pid, flush=True); import os; os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    pytest.fail("the child outlived its parent")


def test_the_marker_switch(pytester):
    pytester.makepyfile(test_it="""
        import os
        import pytest

        @pytest.mark.fakepm(subprocess=True)
        def test_child(fakepm):
            assert fakepm.pid != os.getpid()

        def test_default(fakepm):
            assert not hasattr(fakepm, "pid")
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    pytester.makepyfile(test_it="""
        import os

        def test_child(fakepm):
            assert fakepm.pid != os.getpid()
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fakepm-subprocess").assert_outcomes(passed=1)


pytest_plugins = ["pytester"]
