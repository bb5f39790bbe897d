"""pgjdbc (Debian's libpostgresql-jdbc-java) against fakepm.

A small Java program (tests/clients/jdbc/FakepmJdbc.java) is compiled with javac into a temp dir
once per module and run per scenario with `java -cp`; it prints one line per observation.
Everything pgjdbc sends goes through the extended protocol (see driver-wire-behavior.md §7).
"""

import os
import shutil
import subprocess

import pytest

from fakepm import FakePostgres
from realpg import needs_install

JAR = os.environ.get("FAKEPM_JDBC_JAR", "/usr/share/java/postgresql.jar")
SOURCE = os.path.join(os.path.dirname(__file__), "jdbc", "FakepmJdbc.java")

pytestmark = [
    needs_install(shutil.which("javac") is None or shutil.which("java") is None,
                  reason="java/javac are not installed (.ci/run installs default-jdk-headless)"),
    needs_install(not os.path.exists(JAR), reason=f"{JAR} is absent (.ci/run installs libpostgresql-jdbc-java)"),
]


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    out = tmp_path_factory.mktemp("jdbc")
    r = subprocess.run(["javac", "-cp", JAR, "-d", str(out), SOURCE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return str(out)


def jdbc(classes, scenario, pg, *auth, url_params="sslmode=disable", env=None):
    url = f"jdbc:postgresql://{pg.host}:{pg.port}/postgres?{url_params}"
    r = subprocess.run(["java", "-Duser.timezone=UTC", "-cp", f"{classes}{os.pathsep}{JAR}", "FakepmJdbc", scenario,
                        url, *auth], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def test_connect_runs_its_sets_over_the_extended_protocol(classes):
    with FakePostgres() as pg:
        out = jdbc(classes, "connect", pg)
        assert out == ["select1 1", "application_name PostgreSQL JDBC Driver", "version 17.4"]
        sets = [q for q in pg.queries if q.sql.startswith("SET")]
        assert [q.sql for q in sets] == ["SET extra_float_digits = 3", "SET application_name = 'PostgreSQL JDBC Driver'"]
        assert {q.protocol for q in pg.queries} == {"extended"}
        pg.verify()


def test_prepared_statement_matched_on_params_and_named_after_threshold(classes):
    with FakePostgres() as pg:
        rule = pg.on("SELECT id, name FROM users WHERE id = $1 AND name = $2", params=[7, "ada"]).reply(
            columns={"id": "int4", "name": "varchar"}, rows=[[7, "ada"]]
        )
        out = jdbc(classes, "prepared", pg)
        assert out == [f"row {i} 7 ada" for i in range(8)]
        assert rule.calls == 8
        mine = [q for q in pg.queries if "users" in q.sql]
        assert all(q.params == [7, "ada"] for q in mine)
        # pgjdbc switches from the unnamed statement to a named one (S_n) after prepareThreshold=5 uses;
        # its later Binds ask for per-column formats (binary int4, text varchar), which it decodes fine above
        assert mine[0].statement in ("", None)
        assert mine[-1].statement and mine[-1].statement.startswith("S_")
        pg.verify()


def test_autocommit_off_commit_and_rollback(classes):
    with FakePostgres() as pg:
        pg.on("INSERT INTO orders (id, item) VALUES ($1, $2)").reply(tag="INSERT 0 1")
        out = jdbc(classes, "transactions", pg)
        assert out == ["insert 1", "committed", "insert 1", "rolled back"]
        sql = [q.sql for q in pg.queries if not q.sql.startswith("SET")]
        assert sql == ["BEGIN", "INSERT INTO orders (id, item) VALUES ($1, $2)", "COMMIT",
                       "BEGIN", "INSERT INTO orders (id, item) VALUES ($1, $2)", "ROLLBACK"]
        assert [q.params for q in pg.queries if q.sql.startswith("INSERT")] == [[1, "kept"], [2, "dropped"]]
        pg.verify()


def test_fetch_size_uses_a_portal_with_portal_suspended(classes):
    with FakePostgres() as pg:
        pg.on("SELECT g FROM series").reply(columns={"g": "int4"}, rows=[[i] for i in range(1, 6)])
        out = jdbc(classes, "fetchsize", pg)
        assert out == ["rows 1 2 3 4 5", "committed"]
        # one statement evaluation although the rows came in 3 Executes (2 + 2 + 1)
        assert [q.sql for q in pg.queries if "series" in q.sql] == ["SELECT g FROM series"]
        pg.verify()


def test_error_gives_sqlstate_and_recovery(classes):
    with FakePostgres() as pg:
        pg.on("SELECT 1/0").error("22012", "division by zero")
        out = jdbc(classes, "error", pg)
        assert out == ["error 22012 ERROR: division by zero", "error in tx 22012", "aborted 25P02", "recovered 1"]
        pg.verify()


def test_batch(classes):
    with FakePostgres() as pg:
        pg.on("INSERT INTO orders (id, item) VALUES ($1, $2)").reply(tag="INSERT 0 1")
        out = jdbc(classes, "batch", pg)
        assert out == ["batch 1 1 1"]
        assert [q.params for q in pg.queries if q.sql.startswith("INSERT")] == [[1, "item1"], [2, "item2"],
                                                                                 [3, "item3"]]
        pg.verify()


@pytest.mark.parametrize("method", ["password", "md5", "scram-sha-256"])
def test_auth_methods(classes, method):
    with FakePostgres(users={"alice": {"password": "s3cret", "auth": method}}) as pg:
        assert jdbc(classes, "connect", pg, "alice", "s3cret")[0] == "select1 1"
        out = jdbc(classes, "connect", pg, "alice", "wrong")
        assert out == ['SQLSTATE 28P01 FATAL: password authentication failed for user "alice"']


def test_sslmode_require_and_scram_plus(classes):
    with FakePostgres(tls=True, users={"alice": {"password": "s3cret", "auth": "scram-sha-256"}}) as pg:
        seen = []

        @pg.handler("SELECT 1", columns={"?column?": "int4"})
        def select1(query):
            seen.append(query.connection.tls)
            return [[1]]

        out = jdbc(classes, "connect", pg, "alice", "s3cret", url_params="sslmode=require")
        assert out[0] == "select1 1"
        assert seen == [True]
        pg.verify()


# Every core type, as PostgreSQL computes it (the oracle run) and as a fakepm rule gives it.
TYPES_SQL = (
    "SELECT 1::int2 AS i2, 2::int4 AS i4, 3::int8 AS i8, 4::oid AS o, 1.5::float4 AS f4, 2.25::float8 AS f8, "
    "12.34::numeric AS num, 'txt'::text AS t, 'vc'::varchar AS vc, 'bp'::bpchar AS bp, 'nm'::name AS nm, "
    "'c'::\"char\" AS ch, '\\xdeadbeef'::bytea AS by, '2024-01-02'::date AS d, '03:04:05'::time AS tm, "
    "'03:04:05+02'::timetz AS tmtz, '2024-01-02 03:04:05'::timestamp AS ts, "
    "'2024-01-02 03:04:05+00'::timestamptz AS tstz, '1 day 02:03:04'::interval AS iv, "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '{\"a\": 1}'::json AS js, '{\"a\": 1}'::jsonb AS jb, "
    "'10.0.0.1'::inet AS ip, '10.0.0.0/8'::cidr AS net, ARRAY[1,2,3]::int4[] AS arr, "
    "ARRAY['a','b']::text[] AS tarr, true AS b, NULL::int4 AS nul"
)
TYPES_COLUMNS = {"i2": "int2", "i4": "int4", "i8": "int8", "o": "oid", "f4": "float4", "f8": "float8",
                 "num": "numeric", "t": "text", "vc": "varchar", "bp": "bpchar", "nm": "name", "ch": "\"char\"",
                 "by": "bytea", "d": "date", "tm": "time", "tmtz": "timetz", "ts": "timestamp",
                 "tstz": "timestamptz", "iv": "interval", "u": "uuid", "js": "json", "jb": "jsonb", "ip": "inet",
                 "net": "cidr", "arr": "int4[]", "tarr": "text[]", "b": "bool", "nul": "int4"}
TYPES_ROW = [1, 2, 3, 4, "1.5", "2.25", "12.34", "txt", "vc", "bp", "nm", "c", "\\xdeadbeef", "2024-01-02", "03:04:05",
             "03:04:05+02", "2024-01-02 03:04:05", "2024-01-02 03:04:05+00", "1 day 02:03:04",
             "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", '{"a": 1}', '{"a": 1}', "10.0.0.1", "10.0.0.0/8", "{1,2,3}",
             "{a,b}", True, None]


@pytest.mark.realpg
def test_every_type_in_text_and_binary_equals_real_postgresql(classes, oracle_pg):
    """Against PostgreSQL 15 and 18, fakepm announcing the same version."""
    expected = jdbc(classes, "types", oracle_pg, oracle_pg.user, env={"FAKEPM_SQL": TYPES_SQL})
    assert len(expected) == 2 * len(TYPES_COLUMNS)
    with FakePostgres(version=oracle_pg.server_version) as pg:
        pg.on(TYPES_SQL).reply(columns=TYPES_COLUMNS, rows=[TYPES_ROW])
        got = jdbc(classes, "types", pg, env={"FAKEPM_SQL": TYPES_SQL})
        pg.verify()
    assert got == expected


@pytest.mark.realpg
def test_connect_facts_equal_real_postgresql(classes, oracle_pg):
    """What pgjdbc sees at connect (its SETs, application_name, the product version it parses from
    server_version) from PostgreSQL 15 and 18 and from fakepm announcing the same version."""
    expected = jdbc(classes, "connect", oracle_pg, oracle_pg.user)
    with FakePostgres(version=oracle_pg.server_version) as pg:
        assert jdbc(classes, "connect", pg) == expected
        pg.verify()
    assert expected[-1] == f"version {oracle_pg.server_version}"


def test_listen_notify_across_connections(classes):
    with FakePostgres() as pg:
        assert jdbc(classes, "notify", pg) == ["notification chan1 hello"]
        pg.verify()


def test_cancel_by_query_timeout(classes):
    import threading

    release = threading.Event()
    with FakePostgres() as pg:
        @pg.handler("SELECT slow()", columns={"slow": "int4"})
        def slow(query):
            release.wait(20)  # blocks until the test ends: only a cancel can answer the client
            return [[1]]

        try:
            out = jdbc(classes, "cancel", pg)
        finally:
            release.set()
        assert out == ["cancel 57014 ERROR: canceling statement due to user request", "after 1"]
        assert any(e["kind"] == "cancel" for e in pg.events)
