"""Secrets stay off the command line: the upstream password and client users come from a file or
the environment, and the process list shows neither."""

from __future__ import annotations

import argparse
import os
import sys

import psycopg
import pytest

from fakepm.proxy.cli import client_user_specs, resolve_upstream

sys.path.insert(0, os.path.dirname(__file__))
from record_roles import ROLES  # noqa: E402


# ---------------------------------------------------------------------------------- no server
def test_upstream_password_sources_in_order(tmp_path):
    url = "postgresql://app@db.example:5433/shop"
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\nignored second line\n")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("# comment\nother:5433:shop:app:nope\ndb.example:5433:*:app:from\\:pgpass\n")
    env = {"PGPASSFILE": str(pgpass)}
    assert resolve_upstream(url, env=env) == "postgresql://app:from%3Apgpass@db.example:5433/shop"
    env["PGPASSWORD"] = "libpq env"
    assert resolve_upstream(url, env=env) == "postgresql://app:libpq%20env@db.example:5433/shop"
    env["FAKEPM_UPSTREAM_PASSWORD"] = "p@ss/word"
    assert resolve_upstream(url, env=env) == "postgresql://app:p%40ss%2Fword@db.example:5433/shop"
    assert resolve_upstream(url, str(pw_file), env=env) == "postgresql://app:from-file@db.example:5433/shop"
    # a URL with its own password keeps it, and a warning says where it is visible
    said = []
    assert resolve_upstream("postgresql://app:inline@h/db", str(pw_file), env=env, warn=said.append) \
        == "postgresql://app:inline@h/db"
    assert "process list" in said[0] and "inline" not in said[0]
    # the whole URL from $FAKEPM_UPSTREAM; none at all is a clear error
    assert resolve_upstream(None, env={"FAKEPM_UPSTREAM": url, "FAKEPM_UPSTREAM_PASSWORD": "x"}) \
        == "postgresql://app:x@db.example:5433/shop"
    with pytest.raises(ValueError, match="FAKEPM_UPSTREAM"):
        resolve_upstream(None, env={})
    with pytest.raises(ValueError, match="cannot read it"):
        resolve_upstream(url, str(tmp_path / "missing"), env={})
    # nothing found: the URL as given (trust upstreams need no password)
    assert resolve_upstream(url, env={"PGPASSFILE": str(tmp_path / "none")}) == url


def test_client_users_from_file_and_environment(tmp_path, capsys):
    users = tmp_path / "users"
    users.write_text("# local users\nalice:wonder land\n\nbob:b:md5\n")
    args = argparse.Namespace(user=["carol:c"], user_file=str(users))
    assert client_user_specs(args, env={"FAKEPM_USERS": "dave:d\n"}) == ["carol:c", "alice:wonder land", "bob:b:md5",
                                                                          "dave:d"]
    assert "--user carries a password" in capsys.readouterr().err
    (tmp_path / "bad").write_text("alice-without-password\n")
    with pytest.raises(ValueError, match="line 1: expected NAME:PASSWORD") as e:
        client_user_specs(argparse.Namespace(user=None, user_file=str(tmp_path / "bad")), env={})
    assert "alice-without-password" not in str(e.value)  # a secrets file's contents are never quoted


# ---------------------------------------------------------------------------------- a real upstream
def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/cmdline")
def test_record_and_proxy_take_passwords_from_a_file_and_the_environment(upstream_pg, tmp_path, monkeypatch):
    from served import Served

    secret = ROLES["rec_scram"][1]
    pw_file = tmp_path / "upstream-password"
    pw_file.write_text(secret + "\n")
    pw_file.chmod(0o600)
    users = tmp_path / "users"
    users.write_text("app:local-pw:scram-sha-256\n")
    url = f"postgresql://rec_scram@{upstream_pg.host}:{upstream_pg.port}/postgres"
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))

    out = tmp_path / "rec.yaml"
    rec = Served("record", "--upstream", url, "--upstream-password-file", str(pw_file), "--user-file", str(users),
                 "--out", str(out))
    try:
        assert secret not in _cmdline(rec.proc.pid) and "local-pw" not in _cmdline(rec.proc.pid)
        dsn = rec.dsn.replace("rec_scram@", "app:local-pw@")
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            assert conn.execute("SELECT 40 + 2 AS answer").fetchone() == (42,)
    finally:
        log = rec.stop()
    assert rec.proc.returncode == 0, log
    assert secret not in log and secret not in out.read_text()

    monkeypatch.setenv("FAKEPM_UPSTREAM", url)  # the whole URL and the password from the environment
    monkeypatch.setenv("FAKEPM_UPSTREAM_PASSWORD", secret)
    monkeypatch.setenv("FAKEPM_USERS", "app:env-pw")
    px = Served("proxy")
    try:
        assert secret not in _cmdline(px.proc.pid)
        with psycopg.connect(px.dsn.replace("rec_scram@", "app:env-pw@"), connect_timeout=10) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("rec_scram",)
    finally:
        log = px.stop()
    assert secret not in log
