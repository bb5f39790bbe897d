"""The proxy keeps each client's identity upstream: its own database and user, the upstream
session's pid (issue 13, item 6), against a real PostgreSQL. Cancel with the reported key:
test_proxy.py."""

from __future__ import annotations

import time

import psycopg
import pytest

from record_roles import ROLES, upstream_url
from fakepm.proxy import Proxy


def test_a_missing_database_is_refused_as_postgresql_refuses_it(upstream_pg):
    with Proxy(upstream_url(upstream_pg)) as px:
        with pytest.raises(psycopg.OperationalError, match='database "nosuchdb" does not exist'):
            psycopg.connect(px.url(database="nosuchdb"), connect_timeout=10)
        with psycopg.connect(px.dsn, connect_timeout=10) as ok:  # the refusal left the proxy serving
            assert ok.execute("SELECT 1").fetchone() == (1,)


def test_each_client_gets_its_own_database_upstream(upstream_pg):
    upstream_pg.psql("DROP DATABASE IF EXISTS proxy_other")
    upstream_pg.psql("CREATE DATABASE proxy_other")
    with Proxy(upstream_url(upstream_pg)) as px:
        with psycopg.connect(px.url(database="proxy_other"), connect_timeout=10) as c:
            assert c.execute("SELECT current_database()").fetchone() == ("proxy_other",)
        with psycopg.connect(px.dsn, connect_timeout=10) as c:
            assert c.execute("SELECT current_database()").fetchone() == ("postgres",)


def test_the_clients_own_user_logs_in_upstream_with_a_user_map_or_a_password_file(upstream_pg, tmp_path):
    user_map = {"mapped": ("rec_md5", ROLES["rec_md5"][1])}
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{upstream_pg.host}:{upstream_pg.port}:*:rec_plain:{ROLES['rec_plain'][1]}\n")
    pgpass.chmod(0o600)
    with Proxy(upstream_url(upstream_pg), user_map=user_map, passfile=str(pgpass)) as px:
        with psycopg.connect(px.url("mapped"), connect_timeout=10) as c:
            assert c.execute("SELECT current_user").fetchone() == ("rec_md5",)
        with psycopg.connect(px.url("rec_plain"), connect_timeout=10) as c:  # its password from the file
            assert c.execute("SELECT current_user").fetchone() == ("rec_plain",)
        with psycopg.connect(px.dsn, connect_timeout=10) as c:  # the URL's own user
            assert c.execute("SELECT current_user").fetchone() == ("rec_scram",)


def test_clients_see_the_upstream_pid_and_terminating_it_ends_their_session(upstream_pg):
    with Proxy(upstream_url(upstream_pg)) as px:
        victim = psycopg.connect(px.dsn, autocommit=True, connect_timeout=10)
        try:
            pid = victim.info.backend_pid
            assert victim.execute("SELECT pg_backend_pid()").fetchone() == (pid,)
            with psycopg.connect(px.dsn, autocommit=True, connect_timeout=10) as killer:
                assert killer.info.backend_pid != pid
                assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
            deadline = time.monotonic() + 10
            with pytest.raises(psycopg.OperationalError, match="terminating connection"):
                while time.monotonic() < deadline:
                    victim.execute("SELECT 1")
                    time.sleep(0.05)
        finally:
            victim.close()

