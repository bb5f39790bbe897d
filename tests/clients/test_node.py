"""node-postgres (npm `pg` + `pg-cursor`) against fakepm.

tests/clients/node/scenario.js runs one scenario per process and prints JSON lines;
`.ci/run` installs the packages with `npm install` in tests/clients/node.
node-postgres sends no SSLRequest unless asked, text parameters with OID 0, text results only.
"""

import json
import os
import shutil
import subprocess

import pytest

from fakepm import FakePostgres
from realpg import needs_install

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")

pytestmark = [
    needs_install(shutil.which("node") is None, reason="node is not installed (.ci/run installs nodejs)"),
    needs_install(not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")),
                  reason="node_modules/pg is absent: run `npm install` in tests/clients/node"),
]


def node(scenario, url, expect_rc=0, env=None):
    r = subprocess.run(["node", "scenario.js", scenario, url], cwd=NODE_DIR, capture_output=True, text=True,
                       timeout=60, env={**os.environ, "TZ": "UTC", **(env or {})})
    assert r.returncode == expect_rc, r.stdout + r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def users(pg):
    pg.on("SELECT id, name FROM users ORDER BY id").reply(
        columns={"id": "int4", "name": "text"}, rows=[[1, "ada"], [2, "grace"]]
    )


def test_simple_query():
    with FakePostgres() as pg:
        users(pg)
        assert node("simple", pg.dsn) == [
            {"rows": [{"id": 1, "name": "ada"}, {"id": 2, "name": "grace"}], "command": "SELECT", "rowCount": 2}
        ]
        assert [q.protocol for q in pg.queries] == ["simple"]
        pg.verify()


def test_parameterized_query_matched_on_values():
    with FakePostgres() as pg:
        pg.on("SELECT id, name FROM users WHERE id = $1 AND name = $2", params=[7, "ada"],
              param_types=["int4", "text"]).reply(columns={"id": "int4", "name": "text"}, rows=[[7, "ada"]])
        ins = pg.on("INSERT INTO orders (id, data) VALUES ($1, $2)", param_types=["int4", "jsonb"]).reply(
            tag="INSERT 0 1")
        assert node("params", pg.dsn) == [{"rows": [{"id": 7, "name": "ada"}]},
                                          {"command": "INSERT", "rowCount": 1}]
        assert ins.calls == 1
        # node sends every value as text with OID 0; the rule's param_types decide how they are read
        assert pg.queries[-1].params == [1, {"qty": 2}]
        pg.verify()


def test_named_statement_parsed_once():
    with FakePostgres() as pg:
        pg.on("SELECT id, name FROM users WHERE id = $1", param_types=["int4"]).reply(
            columns={"id": "int4", "name": "text"}, rows=[[1, "ada"]])
        assert node("named", pg.dsn) == [{"rows": [{"id": 1, "name": "ada"}]}] * 3
        assert [q.params for q in pg.queries] == [[0], [1], [2]]
        assert {q.statement for q in pg.queries} == {"named1"}
        transcript = [t for items in pg.transcripts().values() for _, t in items]
        assert sum(1 for t in transcript if t.startswith("Parse 'named1'")) == 1
        pg.verify()


def test_multi_statement_query():
    with FakePostgres() as pg:
        users(pg)
        out = node("multi", pg.dsn)
        assert out == [{"results": [
            {"command": "SELECT", "rows": [{"one": 1}]},
            {"command": "SELECT", "rows": [{"id": 1, "name": "ada"}, {"id": 2, "name": "grace"}]},
            {"command": "BEGIN", "rows": []},
            {"command": "COMMIT", "rows": []},
        ]}]
        pg.verify()


def test_errors_and_recovery():
    with FakePostgres() as pg:
        pg.on("SELECT 1/0").error("22012", "division by zero")
        out = node("error", pg.dsn)
        assert out[0] == {"error": "22012", "message": "division by zero", "severity": "ERROR"}
        assert out[1]["error"] == "FP000"
        assert out[1]["message"].startswith("fakepm: no rule matches this query: SELECT id FROM users WHERE id = $1")
        assert out[2:] == [{"error": "22012"}, {"error": "25P02"}, {"recovered": [{"one": 1}]}]
        assert [q.sql for q in pg.unmatched] == ["SELECT id FROM users WHERE id = $1"]


def test_cursor_relies_on_flush():
    with FakePostgres() as pg:
        pg.on("SELECT g FROM series").reply(columns={"g": "int4"}, rows=[[i] for i in range(1, 6)])
        assert node("cursor", pg.dsn) == [{"batches": [[1, 2], [3, 4], [5]]}, {"after": [{"one": 1}]}]
        assert [q.sql for q in pg.queries if "series" in q.sql] == ["SELECT g FROM series"]
        pg.verify()


def test_listen_notify_across_connections():
    with FakePostgres() as pg:
        assert node("notify", pg.dsn) == [{"notifications": [{"channel": "chan1", "payload": "hello"},
                                                             {"channel": "chan1", "payload": "world"}]}]
        pg.verify()


@pytest.mark.parametrize("method", ["password", "md5", "scram-sha-256"])
def test_auth_methods(method):
    with FakePostgres(users={"alice": {"password": "s3cret", "auth": method}}) as pg:
        assert node("connect", pg.url(user="alice", password="s3cret")) == [{"rows": [{"one": 1}]}]
        out = node("connect", pg.url(user="alice", password="nope"), expect_rc=1)
        assert out == [{"error": "28P01", "message": 'password authentication failed for user "alice"'}]


def test_tls_require():
    with FakePostgres(tls=True) as pg:
        # node-postgres maps sslmode=require to "TLS without certificate checks" (libpq semantics)
        url = pg.url(sslmode="no-verify")
        assert node("connect", url) == [{"rows": [{"one": 1}]}]
        assert any(t == "SSLRequest" for items in pg.transcripts().values() for _, t in items)


@pytest.mark.realpg
def test_every_type_equals_real_postgresql(oracle_pg):
    """Against PostgreSQL 15 and 18, fakepm announcing the same version."""
    from test_jdbc import TYPES_COLUMNS, TYPES_ROW, TYPES_SQL  # one copy of the all-types query

    expected = node("types", oracle_pg.dsn, env={"FAKEPM_SQL": TYPES_SQL})
    assert len(expected) == len(TYPES_COLUMNS)
    with FakePostgres(version=oracle_pg.server_version) as pg:
        pg.on(TYPES_SQL).reply(columns=TYPES_COLUMNS, rows=[TYPES_ROW])
        assert node("types", pg.dsn, env={"FAKEPM_SQL": TYPES_SQL}) == expected
        pg.verify()


def test_cancel_a_running_query():
    import threading

    release = threading.Event()
    with FakePostgres() as pg:
        @pg.handler("SELECT slow()", columns={"slow": "int4"})
        def slow(query):
            release.wait(20)  # only a cancel can answer the client before the test ends
            return [[1]]

        try:
            out = node("cancel", pg.dsn)
        finally:
            release.set()
        assert out == [{"error": "57014", "message": "canceling statement due to user request"},
                       {"after": [{"one": 1}]}]
        assert any(e["kind"] == "cancel" for e in pg.events)
