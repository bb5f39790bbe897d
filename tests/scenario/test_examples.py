"""The bundled scenarios/ examples, each served by `fakepm serve` and driven by the clients they are for."""

import json
import os
import shutil
import subprocess
import urllib.parse

import psycopg
import psycopg2
import pytest
from sqlalchemy import Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from serve import REPO, serve
from realpg import needs_install


def psql(dsn, *commands):
    args = ["psql", dsn, "-X", "-At"]
    for c in commands:
        args += ["-c", c]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


# ------------------------------------------------------------------ shop.yaml (the README's first command)
@pytest.fixture(scope="module")
def shop():
    with serve("scenarios/shop.yaml") as dsn:
        yield dsn


def test_shop_readme_command_with_psql(shop):
    assert shop.endswith("/shop")
    assert psql(shop, "SELECT id, name, price FROM products ORDER BY id") == [
        "1|Widget|9.99", "2|Gadget|24.50", "3|Doohickey|3.75"]
    assert psql(shop, "select id, name, price from products where id = 2",
                "SELECT id, name, price FROM products WHERE id = 42") == ["2|Gadget|24.50"]
    assert psql(shop, r"\dt") == ["public|orders|table|postgres", "public|products|table|postgres"]


def test_shop_with_psycopg(shop):
    with psycopg.connect(shop) as c:
        assert c.execute("SELECT id, name, price FROM products WHERE id = %s", [1]).fetchone()[1] == "Widget"
        customers = c.execute("SELECT id, email, name, created FROM customers ORDER BY id").fetchall()
        assert len(customers) == 50 and customers[0][0] == 1
        assert c.execute("SELECT stock FROM products WHERE id = %s", [1]).fetchone() == (120,)
        assert c.execute("UPDATE products SET stock = stock - %s WHERE id = %s", [1, 1]).statusmessage == "UPDATE 1"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("DELETE FROM products")
        c.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            c.execute("TRUNCATE orders")
        assert info.value.diag.message_hint == "ask the DBA"


def test_shop_orders_and_state_with_psycopg2(shop):
    with psycopg2.connect(shop) as c, c.cursor() as cur:
        ids = []
        for _ in range(4):
            cur.execute("INSERT INTO orders (customer_id, product_id, quantity) VALUES (%s, %s, %s) RETURNING id",
                        (7, 1, 2))
            ids.append(cur.fetchone()[0])
            assert cur.statusmessage == "INSERT 0 1"
        assert ids == [1001, 1002, 1003, 1003]
        cur.execute("INSERT INTO audit_log (what) VALUES ('order placed')")
        assert cur.statusmessage == "INSERT 0 1"
        cur.execute("SELECT count(*) FROM cart_items WHERE customer_id = %s", (7,))
        assert cur.fetchone() == (2,)
        cur.execute("DELETE FROM cart_items WHERE customer_id = %s", (7,))
        assert cur.rowcount == 2
        cur.execute("SELECT count(*) FROM cart_items WHERE customer_id = %s", (7,))
        assert cur.fetchone() == (0,)


def test_shop_notices_and_notify(shop):
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("LISTEN reports")
        seen = []
        c.add_notice_handler(lambda d: seen.append(d.message_primary))
        c.execute("SELECT refresh_sales_report()")
        assert seen == ["report refreshed", "1 product is out of stock"]
        assert [(n.channel, n.payload) for n in c.notifies(timeout=5, stop_after=1)] == [("reports", "sales")]


# ------------------------------------------------------------------ psql.yaml: \dt and \d TABLE
def test_psql_example_answers_dt_and_d_table():
    with serve("scenarios/psql.yaml") as dsn:
        assert psql(dsn, r"\dt") == ["public|customers|table|postgres", "public|products|table|postgres"]
        assert psql(dsn, r"\dt prod*") == ["public|products|table|postgres"]
        assert psql(dsn, r"\d products") == [
            "id|integer||not null|", "name|text|||", "price|numeric(10,2)|||", "tags|text[]|||"]
        out = subprocess.run(["psql", dsn, "-X", "-c", r"\d nosuch"], capture_output=True, text=True, timeout=30)
        assert 'Did not find any relation named "nosuch".' in out.stderr


@pytest.mark.realpg
def test_psql_d_table_output_is_what_real_postgres_prints(real_pg):
    def describe(dsn):
        out = subprocess.run(["psql", dsn, "-X", "-c", r"\d products", "-c", r"\dt"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.replace(real_pg.user, "postgres")

    # a database of its own: the shared real server holds other tests' tables, which \dt would list
    real_pg.psql("DROP DATABASE IF EXISTS psql_example")
    real_pg.psql("CREATE DATABASE psql_example")
    db = real_pg._replace(dbname="psql_example")
    db.psql("CREATE TABLE products (id int4 PRIMARY KEY, name text, price numeric(10,2), tags text[]); "
            "CREATE TABLE customers (id int8 PRIMARY KEY, email varchar(200), created timestamptz)")
    with serve("scenarios/psql.yaml") as dsn:
        assert describe(dsn) == describe(db.dsn)


# ------------------------------------------------------------------ sqlalchemy.yaml
class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(100))


@pytest.mark.parametrize("dialect", ["psycopg", "psycopg2", "pg8000"])
def test_sqlalchemy_orm_session(dialect):
    with serve("scenarios/sqlalchemy.yaml") as dsn:
        engine = create_engine(dsn.replace("postgresql://", f"postgresql+{dialect}://"))
        try:
            with Session(engine) as s:
                ada = s.get(User, 1)
                assert (ada.id, ada.name, ada.email) == (1, "ada", "ada@example.org")
                assert s.get(User, 99) is None
                assert [u.id for u in s.scalars(select(User).where(User.name == "ada"))] == [1]
                bob = User(name="bob", email="bob@example.org")
                s.add(bob)
                s.commit()
                assert bob.id == 2
        finally:
            engine.dispose()


# ------------------------------------------------------------------ jdbc_node.yaml
NODE_DIR = os.path.join(REPO, "tests", "clients", "node")
JAR = os.environ.get("FAKEPM_JDBC_JAR", "/usr/share/java/postgresql.jar")


@needs_install(shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")),
               reason="node or node-postgres (tests/clients/node/node_modules) is not installed")
def test_jdbc_node_example_with_node_postgres():
    with serve("scenarios/jdbc_node.yaml") as dsn:
        def run(name):
            out = subprocess.run(["node", "scenario.js", name, dsn], capture_output=True, text=True, timeout=60,
                                 cwd=NODE_DIR)
            assert out.returncode == 0, out.stdout + out.stderr
            return [json.loads(line) for line in out.stdout.splitlines()]

        assert run("simple") == [{"rows": [{"id": 1, "name": "ada"}, {"id": 2, "name": "grace"},
                                           {"id": 7, "name": "ada"}], "command": "SELECT", "rowCount": 3}]
        assert run("params") == [{"rows": [{"id": 7, "name": "ada"}]}, {"command": "INSERT", "rowCount": 1}]
        assert run("named") == [{"rows": []}, {"rows": [{"id": 1, "name": "ada"}]}, {"rows": []}]


@needs_install(shutil.which("javac") is None or not os.path.exists(JAR), reason="javac or pgjdbc is not installed")
def test_jdbc_node_example_with_pgjdbc(tmp_path):
    source = os.path.join(REPO, "tests", "clients", "jdbc", "FakepmJdbc.java")
    r = subprocess.run(["javac", "-cp", JAR, "-d", str(tmp_path), source], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with serve("scenarios/jdbc_node.yaml") as dsn:
        u = urllib.parse.urlsplit(dsn)
        url = f"jdbc:postgresql://{u.hostname}:{u.port}{u.path}?sslmode=disable&user={u.username}"

        def run(name):
            out = subprocess.run(["java", "-cp", f"{tmp_path}{os.pathsep}{JAR}", "FakepmJdbc", name, url],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr
            return out.stdout.splitlines()

        assert run("prepared") == [f"row {i} 7 ada" for i in range(8)]
        assert run("transactions") == ["insert 1", "committed", "insert 1", "rolled back"]
        assert run("fetchsize") == ["rows 1 2 3 4 5 6 7 8 9 10", "committed"]
