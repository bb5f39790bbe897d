"""Record a real PostgreSQL through `fakepm record`, replay with `fakepm serve`: same observations."""

from __future__ import annotations

import re
import subprocess

import pytest

from client_script import SCHEMA, run_asyncpg, run_psql, run_psycopg
from record_roles import ROLES, upstream_url
from served import FAKEPM, Served

@pytest.fixture(scope="module")
def recording(upstream_pg, tmp_path_factory):
    """Run both client scripts against the real server through `fakepm record`; return (file, outputs)."""
    upstream_pg.psql("DROP TABLE IF EXISTS products, orders; " + SCHEMA)
    out = str(tmp_path_factory.mktemp("rec") / "app.yaml")
    rec = Served("record", "--upstream", upstream_url(upstream_pg, "rec_scram"), "--out", out, "--mode", "all")
    try:
        real = {"psycopg": run_psycopg(rec.dsn), "asyncpg": run_asyncpg(rec.dsn), "psql": run_psql(rec.dsn)}
    finally:
        log = rec.stop()
    assert rec.proc.returncode == 0, log
    return out, real


def test_recording_passes_fakepm_check(recording):
    path, _ = recording
    r = subprocess.run([*FAKEPM, "check", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_recording_holds_no_secrets(recording):
    path, _ = recording
    text = open(path, encoding="utf-8").read()
    for _role, (_method, password) in ROLES.items():
        assert password not in text
    assert "SCRAM" not in text and "c=biws" not in text and not re.search(r"\bp=[A-Za-z0-9+/]{20,}", text)
    assert "server:" in text and "recording:" in text


def test_replay_without_postgresql_gives_the_same_results(recording):
    path, real = recording
    srv = Served("serve", path)
    try:
        fake = {"psycopg": run_psycopg(srv.dsn), "asyncpg": run_asyncpg(srv.dsn), "psql": run_psql(srv.dsn)}
    finally:
        srv.stop()
    steps = ["params", "binary", "transaction", "error", "copy out", "copy in", "count", "notify"]
    assert [s[0] for s in real["psycopg"]] == steps
    assert [s[0] for s in real["asyncpg"]] == [s for s in steps if s != "binary"]
    assert real["psycopg"][-1] == ("notify", [("jobs", "hello")])
    assert fake["psycopg"] == real["psycopg"]
    assert fake["asyncpg"] == real["asyncpg"]
    assert 'column "missing_column" does not exist' in real["psql"]
    assert fake["psql"] == real["psql"]
