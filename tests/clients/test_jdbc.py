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

JAR = os.environ.get("FAKEPM_JDBC_JAR", "/usr/share/java/postgresql.jar")
SOURCE = os.path.join(os.path.dirname(__file__), "jdbc", "FakepmJdbc.java")

pytestmark = [
    pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None,
                       reason="java/javac are not installed (.ci/run installs default-jdk-headless)"),
    pytest.mark.skipif(not os.path.exists(JAR), reason=f"{JAR} is absent (.ci/run installs libpostgresql-jdbc-java)"),
]


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    out = tmp_path_factory.mktemp("jdbc")
    r = subprocess.run(["javac", "-cp", JAR, "-d", str(out), SOURCE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return str(out)


def jdbc(classes, scenario, pg, *auth, url_params="sslmode=disable"):
    url = f"jdbc:postgresql://{pg.host}:{pg.port}/postgres?{url_params}"
    r = subprocess.run(["java", "-cp", f"{classes}{os.pathsep}{JAR}", "FakepmJdbc", scenario, url, *auth],
                       capture_output=True, text=True, timeout=60)
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
