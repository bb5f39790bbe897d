"""What each Python driver learns about the server, from PostgreSQL 15 and 18 and from fakepm
announcing the same version: equal canonical facts.

The facts: the version the driver parses from ParameterStatus, every ParameterStatus it kept,
`version()` (up to its "compiled by" part: a build detail), `server_version_num` by SHOW and by
current_setting, and search_path's ParameterStatus after SET / SET LOCAL + ROLLBACK (reported by 18,
not by 15). psycopg 3 (libpq 18) asks for protocol 3.2.
"""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pg8000.native
import psycopg
import psycopg2
import pytest

from fakepm import FakePostgres

pytestmark = pytest.mark.realpg

QUERIES = ["SELECT version()", "SHOW server_version_num", "SELECT current_setting('server_version_num')"]
ZONE = re.compile(r"^(Etc/)?UTC$")


def _version_text(v: str) -> str:
    return re.sub(r", compiled by .*", ", compiled by ...", v)


def _statuses(d: dict) -> dict:
    # the oracle's TimeZone comes from its environment (Etc/UTC here), fakepm's is UTC
    return {k: ("a UTC zone" if k == "TimeZone" and ZONE.match(v or "") else v) for k, v in d.items()}


NAMES = ["application_name", "client_encoding", "DateStyle", "default_transaction_read_only", "in_hot_standby",
         "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding", "server_version",
         "session_authorization", "standard_conforming_strings", "TimeZone", "scram_iterations", "search_path"]


def psycopg_facts(host, port, user):
    dsn = f"host={host} port={port} user={user} dbname=postgres max_protocol_version=3.2"
    with psycopg.connect(dsn, autocommit=True) as c:
        out = {"version": c.info.server_version, "protocol": c.pgconn.protocol_version,
               "statuses": _statuses({n: c.info.parameter_status(n) for n in NAMES})}
        out["answers"] = [c.execute(q).fetchone()[0] for q in QUERIES]
        c.execute("SET search_path TO public, app")
        out["after_set"] = c.info.parameter_status("search_path")
        with c.transaction():
            c.execute("SET LOCAL search_path TO app")
            out["in_tx"] = c.info.parameter_status("search_path")
            raise psycopg.Rollback()
        out["after_rollback"] = c.info.parameter_status("search_path")
    out["answers"][0] = _version_text(out["answers"][0])
    return out


def psycopg2_facts(host, port, user):
    c = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
    try:
        c.autocommit = True
        cur = c.cursor()
        out = {"version": c.server_version,
               "statuses": _statuses({n: c.get_parameter_status(n) for n in NAMES})}
        answers = []
        for q in QUERIES:
            cur.execute(q)
            answers.append(cur.fetchone()[0])
        cur.execute("SET search_path TO public, app")
        out["after_set"] = c.get_parameter_status("search_path")
        out["answers"] = [_version_text(answers[0])] + answers[1:]
        return out
    finally:
        c.close()


def asyncpg_facts(host, port, user):
    async def main():
        c = await asyncpg.connect(host=host, port=port, user=user, database="postgres")
        try:
            settings = c.get_settings()
            out = {"version": tuple(c.get_server_version()),
                   "statuses": _statuses({n: getattr(settings, n, None) for n in NAMES})}
            answers = [await c.fetchval(q) for q in QUERIES]
            out["answers"] = [_version_text(answers[0])] + answers[1:]
            await c.execute("SET search_path TO public, app")
            out["after_set"] = getattr(c.get_settings(), "search_path", None)
            return out
        finally:
            await c.close()

    return asyncio.run(main())


def pg8000_facts(host, port, user):
    c = pg8000.native.Connection(user, host=host, port=port, database="postgres")
    try:
        out = {"statuses": _statuses(dict(c.parameter_statuses))}
        answers = [c.run(q)[0][0] for q in QUERIES]
        out["answers"] = [_version_text(answers[0])] + answers[1:]
        c.run("SET search_path TO public, app")
        out["after_set"] = c.parameter_statuses.get("search_path")
        return out
    finally:
        c.close()


DRIVERS = {"psycopg": psycopg_facts, "psycopg2": psycopg2_facts, "asyncpg": asyncpg_facts, "pg8000": pg8000_facts}


@pytest.fixture(scope="module")
def fake_like(oracle_pg):
    with FakePostgres(version=oracle_pg.server_version) as pg:
        yield pg


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_driver_facts_equal_the_real_servers(oracle_pg, fake_like, driver):
    want = DRIVERS[driver](oracle_pg.host, oracle_pg.port, oracle_pg.user)
    got = DRIVERS[driver](fake_like.host, fake_like.port, oracle_pg.user)
    assert got == want
    reported = want["statuses"] if driver != "asyncpg" else {}
    if driver in ("psycopg", "pg8000"):
        assert ("search_path" in {k for k, v in reported.items() if v is not None}) == (oracle_pg.major >= 18)
        assert ("scram_iterations" in {k for k, v in reported.items() if v is not None}) == (oracle_pg.major >= 16)
