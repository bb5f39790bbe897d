"""More of the engine's own programs through fakepm in backend mode, zero rules: pgbench
(initialisation by COPY, then the TPC-B-like script in each query mode), psql's cancel (Ctrl-C
sends a CancelRequest to fakepm, which forwards it with the engine's key), and a dump restored
by psql through fakepm into another FakePostgres, dumped again: the same dump; the same with
parallel pg_dump / pg_restore."""

from __future__ import annotations

import signal
import subprocess
import time

import psycopg
import pytest
from backend_helpers import backend_server, client_env, direct_dsn, engine_program, run, wait_until


@pytest.fixture(scope="module")
def pg():
    with backend_server(scenario=None) as pg:
        yield pg


def test_pgbench_initialises_and_runs_in_every_query_mode(pg):
    pgbench = engine_program(pg, "pgbench")
    r = run([pgbench, "-i", "-s", "1", "-q", pg.dsn])
    assert r.returncode == 0, r.stderr
    assert "done in" in r.stderr
    for mode in ("simple", "extended", "prepared"):
        r = run([pgbench, "-M", mode, "-c", "2", "-t", "25", pg.dsn])
        assert r.returncode == 0, r.stderr
        assert "number of transactions actually processed: 50/50" in r.stdout
        assert "number of failed transactions: 0 (0.000%)" in r.stdout
    assert {q.rule for q in pg.queries} == {"engine"}
    assert {q.protocol for q in pg.queries} >= {"simple", "extended"}


def test_psql_ctrl_c_cancels_the_engines_query(pg):
    proc = subprocess.Popen([engine_program(pg, "psql"), "-X", pg.dsn, "-c", "SELECT pg_sleep(60)"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=client_env())
    try:
        with psycopg.connect(direct_dsn(pg), autocommit=True) as c:  # running on the engine
            assert wait_until(lambda: c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'"
            ).fetchone()[0] == 1, 20)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert err == "Cancel request sent\nERROR:  canceling statement due to user request\n"
    assert took < 10


def test_a_dump_restored_through_fakepm_dumps_the_same(pg):
    pg_dump, psql = engine_program(pg, "pg_dump"), engine_program(pg, "psql")
    run([engine_program(pg, "pgbench"), "-i", "-s", "1", "-q", pg.dsn])  # something to dump (again: idempotent)
    dump = run([pg_dump, "--restrict-key=fakepmtest", pg.dsn])
    assert dump.returncode == 0, dump.stderr
    assert "COPY public.pgbench_accounts" in dump.stdout
    with backend_server(scenario=None) as other:
        r = run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", other.dsn, "-f", "-"], input=dump.stdout)
        assert r.returncode == 0, r.stderr
        again = run([pg_dump, "--restrict-key=fakepmtest", other.dsn])
    assert again.returncode == 0, again.stderr
    assert again.stdout == dump.stdout


def test_parallel_dump_and_restore_through_fakepm(pg, tmp_path):
    """pg_dump -j 3 (three sessions sharing one exported snapshot) and pg_restore -j 3 (three
    sessions restoring at once), each session through fakepm: the restored database dumps the same."""
    pg_dump, pg_restore = engine_program(pg, "pg_dump"), engine_program(pg, "pg_restore")
    run([engine_program(pg, "pgbench"), "-i", "-s", "1", "-q", pg.dsn])
    out = tmp_path / "dump"
    r = run([pg_dump, "-Fd", "-j", "3", "-f", str(out), pg.dsn])
    assert r.returncode == 0, r.stderr
    assert sum("SET TRANSACTION SNAPSHOT" in q.sql for q in pg.queries) == 3  # the workers joined the snapshot
    with backend_server(scenario=None) as other:
        r = run([pg_restore, "-j", "3", "-d", other.dsn, str(out)])
        assert r.returncode == 0, r.stderr
        restored = run([pg_dump, "--restrict-key=fakepmtest", other.dsn])
    original = run([pg_dump, "--restrict-key=fakepmtest", pg.dsn])
    assert restored.returncode == original.returncode == 0
    assert restored.stdout == original.stdout
