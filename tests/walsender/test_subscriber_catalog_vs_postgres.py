"""The catalog queries a real subscriber sends (15's and 18's, while it subscribes with copy_data on)
answered by fakepm from its declared tables and by a real publisher of the same version holding the
same tables, rows and publication: the answers must be equal (columns, types, rows; the tables'
OIDs mapped between the two), and so must the tablesync COPY's rows.
"""

from __future__ import annotations

import re
import time

import pytest

from fakepm import FakePostgres

from .rawclient import RawClient, summary

pytestmark = pytest.mark.realpg

SUB_DB, PUB_DB = "fakepm_catalog_sub", "fakepm_catalog_pub"
TABLES = {
    "public.orders": ("CREATE TABLE public.orders (id int4 PRIMARY KEY, total numeric, note text, at timestamptz)",
                      {"id": "int4", "total": "numeric", "note": "text", "at": "timestamptz"}, ["id"],
                      [[10, "1.50", "copied", "2024-01-02 03:04:05+00"], [11, None, "tab\there", None]]),
    "public.items": ("CREATE TABLE public.items (id int8 PRIMARY KEY, name varchar(20), tags text[])",
                     {"id": "int8", "name": "varchar(20)", "tags": "text[]"}, ["id"],
                     [[1, "copied item", ["a", "b"]]]),
    "public.nokey": ("CREATE TABLE public.nokey (a int4, b text)", {"a": "int4", "b": "text"}, [], [[1, "x"]]),
}


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, list):
        return "'{" + ",".join(v) + "}'"
    return "'" + str(v).replace("'", "''") + "'"


@pytest.fixture(params=["15", "18"], ids=["pg15", "pg18"])
def server(request):
    real = request.getfixturevalue("real_pg" if request.param == "15" else "real_pg18")
    for db in (SUB_DB, PUB_DB):
        real.psql(f"DROP DATABASE IF EXISTS {db}")
        real.psql(f"CREATE DATABASE {db}")
    pub = real._replace(dbname=PUB_DB)
    for name, (ddl, _, _, rows) in TABLES.items():
        pub.psql(ddl)
        for row in rows:
            pub.psql(f"INSERT INTO {name} VALUES ({', '.join(_literal(v) for v in row)})")
    pub.psql("ALTER TABLE public.nokey REPLICA IDENTITY FULL")
    pub.psql("CREATE PUBLICATION pub FOR TABLE public.orders, public.items, public.nokey")
    sub = real._replace(dbname=SUB_DB)
    for _, (ddl, _, _, _) in TABLES.items():
        sub.psql(ddl)
    yield real
    for s in sub.psql("SELECT subname FROM pg_subscription").split():
        sub.psql(f"ALTER SUBSCRIPTION {s} DISABLE")
        sub.psql(f"ALTER SUBSCRIPTION {s} SET (slot_name = NONE)")
        sub.psql(f"DROP SUBSCRIPTION {s}")
    for db in (SUB_DB, PUB_DB):
        real.psql(f"DROP DATABASE IF EXISTS {db}")


def test_subscriber_catalog_queries_answered_as_a_real_publisher(server):
    sub, pub = server._replace(dbname=SUB_DB), server._replace(dbname=PUB_DB)
    with FakePostgres(version=server.server_version) as fake:
        fake.wal.configure(wal_sender_timeout=30, keepalive_interval=1)
        for name, (_, columns, key, rows) in TABLES.items():
            fake.table(name, columns, key=key, rows=rows,
                       replica_identity="f" if name == "public.nokey" else "d")
        fake.wal.publication("pub", list(TABLES))
        sub.psql(f"CREATE SUBSCRIPTION csub CONNECTION '{fake.conninfo()}' PUBLICATION pub")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sub.psql("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'") == "0":
                break
            time.sleep(0.1)
        assert sub.psql("SELECT count(*) FROM public.orders") == "2"
        asked = []
        for q in fake.queries:
            if (q.rule or "").startswith("walsender:catalog") or q.sql.startswith("COPY"):
                if q.sql not in asked:
                    asked.append(q.sql)
        assert not fake.unmatched, [q.sql for q in fake.unmatched]
        assert len(asked) >= 3 + 2 * len(TABLES), asked
        fake_oids = {fake.catalog.get(n.split(".")[1], "public").oid: n for n in TABLES}
        real_oids = {int(pub.psql(f"SELECT '{n}'::regclass::oid")): n for n in TABLES}
        to_real = {str(o): str(next(r for r, rn in real_oids.items() if rn == n)) for o, n in fake_oids.items()}
        to_fake = {v: k for k, v in to_real.items()}

        def run(host, port, database, sql):
            with RawClient(host, port, replication="database", database=database) as c:
                return summary(c.query(sql))

        problems = []
        for sql in asked:
            real_sql = re.sub(r"\b\d{4,}\b", lambda mm: to_real.get(mm.group(), mm.group()), sql)
            want = run(pub.host, pub.port, PUB_DB, real_sql)
            got = run(fake.host, fake.port, "postgres", sql)
            if "rows" in want:
                want["rows"] = [[to_fake.get(v, v) for v in row] for row in want["rows"]]
                if "ORDER BY" not in sql.upper():  # SELECT DISTINCT without ORDER BY: any order
                    want["rows"], got["rows"] = sorted(want["rows"], key=repr), sorted(got.get("rows", []), key=repr)
            if "copy_out" in want:  # rows in any order, as the tables hold them
                want["copy_out"], got["copy_out"] = sorted(want["copy_out"]), sorted(got.get("copy_out", []))
            if want != got:
                problems.append(f"{sql}\n   PostgreSQL: {want}\n   fakepm:     {got}")
        assert not problems, f"PostgreSQL {server.server_version}:\n" + "\n".join(problems)
