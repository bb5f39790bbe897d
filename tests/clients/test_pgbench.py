"""pgbench (libpq 15) against fakepm in all three query modes: correctness only (speed is bench/'s job).

pgbench opens one connection that only authenticates, then one per client. -M simple sends Queries,
-M extended unnamed P/B/D/E/S, -M prepared `Parse 'P_0' + Sync` once per client and then B/D/E/S.
"""

import os
import shutil
import subprocess

import pytest

from fakepm import FakePostgres
from realpg import needs_install

pytestmark = needs_install(shutil.which("pgbench") is None, reason="pgbench is not installed")


def pgbench(pg, script, mode, *extra, timeout=60):
    cmd = ["pgbench", "-n", "-f", str(script), "-M", mode, "-c", "2", "-t", "50",
           "-h", pg.host, "-p", str(pg.port), "-U", "postgres", *extra, "postgres"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PGCONNECT_TIMEOUT": "5"})


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_select_1(tmp_path, mode):
    script = tmp_path / "select1.sql"
    script.write_text("SELECT 1;\n")
    with FakePostgres() as pg:
        r = pgbench(pg, script, mode)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "number of transactions actually processed: 100/100" in r.stdout
        assert "number of failed transactions: 0" in r.stdout
        assert len(pg.queries) == 100
        assert {q.protocol for q in pg.queries} == {"simple" if mode == "simple" else "extended"}
        if mode == "prepared":
            assert {q.statement for q in pg.queries} == {"P_0"}
        pg.verify()


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_script_with_variables_matched_on_params(tmp_path, mode):
    """\\set variables: interpolated into the SQL (simple) or bound as text params (extended/prepared);
    either way one rule with $1 matches and sees the value."""
    script = tmp_path / "lookup.sql"
    script.write_text("\\set aid random(1, 5)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n")
    with FakePostgres() as pg:
        pg.on("SELECT abalance FROM pgbench_accounts WHERE aid = $1", param_types=["int4"]).reply(
            columns={"abalance": "int4"}, rows=[[100]]
        )
        r = pgbench(pg, script, mode)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "number of failed transactions: 0" in r.stdout
        assert len(pg.queries) == 100
        assert all(len(q.params) == 1 and 1 <= int(q.params[0]) <= 5 for q in pg.queries)
        pg.verify()


def test_pipeline_mode(tmp_path):
    """\\startpipeline ... \\endpipeline: every P/B/D/E of the block, then one Sync."""
    script = tmp_path / "pipeline.sql"
    script.write_text("\\startpipeline\nSELECT 1;\nSELECT 2;\nSELECT 3;\n\\endpipeline\n")
    with FakePostgres() as pg:
        r = pgbench(pg, script, "extended")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "number of transactions actually processed: 100/100" in r.stdout
        assert len(pg.queries) == 300
        pg.verify()


def test_error_is_reported(tmp_path):
    script = tmp_path / "fail.sql"
    script.write_text("SELECT broken FROM nowhere;\n")
    with FakePostgres() as pg:
        r = pgbench(pg, script, "extended", timeout=30)
        assert r.returncode != 0
        assert "no rule matches this query" in r.stderr
