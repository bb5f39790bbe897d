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
