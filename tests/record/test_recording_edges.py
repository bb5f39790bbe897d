"""What the old recorder wrote and its loader refused, or replayed wrong (issue 13, items 1, 4 and 7),
recorded through `fakepm record` against PostgreSQL 15 and replayed by `fakepm serve`: the
client sees the same bytes, and the recorder never waits on a lock the client holds."""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from record_roles import upstream_url
from served import FAKEPM, Served

TEXT, BINARY = 0, 1


def _result(r) -> tuple:
    """Everything a client sees of a result: status, SQLSTATE, columns (name, type, format), values."""
    cols = tuple((r.fname(i), r.ftype(i), r.fformat(i)) for i in range(r.nfields))
    rows = tuple(tuple(r.get_value(t, i) for i in range(r.nfields)) for t in range(r.ntuples))
    return r.status, r.error_field(ord("C")), cols, rows, r.command_status


def _copy_out(conn, sql: str) -> bytes:
    with conn.cursor().copy(sql) as cp:
        return b"".join(bytes(chunk) for chunk in cp)


def session(dsn: str) -> list:
    seen = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:
        pq = c.pgconn
        q = lambda sql, params=None, types=None, fmt=TEXT: seen.append(  # noqa: E731
            _result(pq.exec_params(sql.encode(), params or [], types, result_format=fmt)))
        q("select 1, 2")  # duplicate column names
        q("select $1::text, $2::text", [b"a", b"b"])
        q("select '2000-01-02'::date, '4713-01-01 BC'::date, '10000-01-01'::timestamp, '24:00'::time")
        q("select 1::int8, '\\x00ff'::bytea, now() - now(), '{1,2,3}'::int[]", fmt=BINARY)
        q("select $1::int2", [b"0"])  # answered as int2, never as the int4 of the next one
        q("select $1::int", [b"0"])
        c.execute("SET DateStyle = 'German'")
        c.execute("SET IntervalStyle = 'sql_standard'")
        q("select '2000-01-02'::date, '1 day 02:03:04'::interval")
        c.execute("RESET ALL")
        seen.append(_copy_out(c, "COPY (select '\\x00ab00'::bytea, 'a\\b'::text) TO STDOUT (FORMAT binary)"))
        seen.append(_copy_out(c, "COPY (select 'aYb', 'Y', NULL::text) TO STDOUT (FORMAT csv, QUOTE 'Y')"))
        # equal consecutive answers stay in order: 0, 0, 1, 2, 3
        c.execute("DROP TABLE IF EXISTS rec_counts")
        c.execute("CREATE TABLE rec_counts (n int)")
        for i in range(5):
            seen.append(c.execute("select count(*) from rec_counts").fetchone())
            if i:
                c.execute("insert into rec_counts values (1)")
        # a COMMIT that failed once stays one-time
        c.execute("DROP TABLE IF EXISTS rec_deferred")
        c.execute("CREATE TABLE rec_deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
        for value in (1, 1, 2):
            c.execute("BEGIN")
            c.execute("insert into rec_deferred values (%s)", [value])
            try:
                c.execute("COMMIT")
                seen.append("committed")
            except psycopg.Error as e:
                seen.append(e.sqlstate)
    return seen


def locked_copy(dsn: str) -> tuple[list, float]:
    """COPY in both directions inside the client's own transaction holding an exclusive lock."""
    t0 = time.monotonic()
    with psycopg.connect(dsn, connect_timeout=10) as c:
        c.execute("DROP TABLE IF EXISTS rec_locked")
        c.execute("CREATE TABLE rec_locked (id int, name text, at timestamptz)")
        c.execute("LOCK TABLE rec_locked IN ACCESS EXCLUSIVE MODE")
        with c.cursor().copy("COPY rec_locked FROM STDIN") as cp:
            cp.write_row((1, "a\tb", "2020-01-01 00:00:00+00"))
        out = _copy_out(c, "COPY rec_locked TO STDOUT")
        c.rollback()
    return [out], time.monotonic() - t0


@pytest.fixture(scope="module")
def recorded(upstream_pg, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("edges") / "edges.yaml")
    rec = Served("record", "--upstream", upstream_url(upstream_pg), "--out", out, "--mode", "all")
    try:
        real = session(rec.dsn)
        real_locked, seconds = locked_copy(rec.dsn)
    finally:
        log = rec.stop()
    assert rec.proc.returncode == 0, log
    return out, real, real_locked, seconds


def test_the_recording_loads(recorded):
    path = recorded[0]
    r = subprocess.run([*FAKEPM, "check", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_recorder_never_waits_on_the_clients_own_lock(recorded):
    _path, _real, real_locked, seconds = recorded
    assert real_locked == [b"1\ta\\tb\t2020-01-01 00:00:00+00\n"]
    assert seconds < 5, f"COPY under the client's own lock took {seconds:.1f} s through the recorder"


def test_replay_gives_the_same_bytes(recorded):
    path, real, real_locked, _ = recorded
    # what the recording must hold to be faithful
    assert real[0][2] == ((b"?column?", 23, 0), (b"?column?", 23, 0))
    assert real[4][2] == ((b"int2", 21, 0),) and real[5][2] == ((b"int4", 23, 0),)
    assert real[6][3] == ((b"02.01.2000", b"1 2:03:04"),)
    assert b"\x00\xab\x00" in real[7] and real[8] == b"YaYYbY,YYYY,\n"
    assert real[9:14] == [(0,), (0,), (1,), (2,), (3,)]
    assert real[14:] == ["committed", "23505", "committed"]
    srv = Served("serve", path)
    try:
        assert session(srv.dsn) == real
        assert locked_copy(srv.dsn)[0] == real_locked
    finally:
        srv.stop()


def terminate_another(dsn: str) -> list:
    """One connection ends another's backend by the pid it reported (pg8000's test_broken_pipe_read)."""
    seen = []
    victim = psycopg.connect(dsn, user="rec_scram", autocommit=True, connect_timeout=10)
    try:
        pid = victim.info.backend_pid
        with psycopg.connect(dsn, user="rec_scram", autocommit=True, connect_timeout=10) as killer:
            seen.append(killer.execute("select pg_terminate_backend(%s)", [pid]).fetchone())
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                victim.execute("select 1")
                time.sleep(0.05)
            seen.append("still alive")
        except psycopg.OperationalError as e:
            seen.append("terminating connection due to administrator command" in str(e))
    finally:
        victim.close()
    return seen


def test_pg_terminate_backend_ends_the_replayed_session_it_names(upstream_pg, tmp_path):
    out = str(tmp_path / "terminate.yaml")
    rec = Served("record", "--upstream", upstream_url(upstream_pg), "--out", out, "--mode", "all")
    try:
        real = terminate_another(rec.dsn)
    finally:
        rec.stop()
    assert real == [(True,), True]
    srv = Served("serve", out)
    try:
        assert terminate_another(srv.dsn) == real
    finally:
        srv.stop()
