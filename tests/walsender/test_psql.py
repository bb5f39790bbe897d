"""psql on replication connections: replication commands, SHOW, and physical-mode SQL refusal."""

from fakepm import FakePostgres

from .helpers import need, run


def test_psql_replication_database_commands():
    need("psql")
    with FakePostgres(version="15.4") as pg:
        r = run(["psql", "-XAt", pg.conninfo(replication="database"), "-c", "IDENTIFY_SYSTEM",
                 "-c", "SHOW wal_segment_size", "-c", "SHOW data_directory_mode"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [f"{pg.wal.systemid}|1|0/1000000|postgres", "16MB", "0700"]
        # replication commands also work inside a transaction (tablesync relies on it)
        r = run(["psql", "-XAt", pg.conninfo(replication="database"), "-c", "BEGIN", "-c", "IDENTIFY_SYSTEM",
                 "-c", "SELECT 1", "-c", "COMMIT"])
        assert r.returncode == 0, r.stderr
        assert "1" in r.stdout.splitlines()
        pg.verify()


def test_psql_physical_replication_connection():
    need("psql")
    with FakePostgres(version="15.4") as pg:
        r = run(["psql", "-XAt", pg.conninfo(replication="true"), "-c", "IDENTIFY_SYSTEM"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"{pg.wal.systemid}|1|0/1000000|"  # dbname is NULL
        r = run(["psql", "-XAt", pg.conninfo(replication="true"), "-c", "select 1"])
        assert r.returncode != 0
        assert "cannot execute SQL commands in WAL sender for physical replication" in r.stderr
        r = run(["psql", "-XAt", pg.conninfo(replication="true"), "-c", "CREATE_REPLICATION_SLOT x LOGICAL pgoutput"])
        assert "logical decoding requires a database connection" in r.stderr
        r = run(["psql", "-XAt", pg.conninfo(replication="true"), "-c", "CREATE_REPLICATION_SLOT p PHYSICAL"])
        assert r.returncode == 0 and r.stdout.strip() == "p|0/0||"
        assert pg.wal.slots["p"].kind == "physical"


def test_pg_receivewal_slot_commands_and_stream_shape(tmp_path):
    import subprocess
    import time

    from .helpers import standby_updates, stop

    need("pg_receivewal")
    with FakePostgres(version="15.4") as pg:
        base = ["pg_receivewal", "-d", pg.conninfo(), "--slot", "recvslot", "-D", str(tmp_path)]
        r = run(base + ["--create-slot"])
        assert r.returncode == 0, r.stderr
        assert pg.wal.slots["recvslot"].kind == "physical"
        proc = subprocess.Popen(base + ["-s", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not standby_updates(pg, "recvslot"):
                time.sleep(0.05)
        finally:
            stop(proc)
        assert standby_updates(pg, "recvslot"), "pg_receivewal never sent a status update"
        sqls = [q.sql for q in pg.queries]
        assert "READ_REPLICATION_SLOT recvslot" in sqls
        assert 'START_REPLICATION SLOT "recvslot" 0/1000000 TIMELINE 1' in sqls
        r = run(base + ["--drop-slot"])
        assert r.returncode == 0, r.stderr
        assert "recvslot" not in pg.wal.slots
        pg.verify()
