"""One client script run twice: against a real PostgreSQL (recording) and against `fakepm serve`
on the recording. Each function returns what the application observed, to compare the runs."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal

SCHEMA = """
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[],
                       created timestamptz);
INSERT INTO products VALUES
  (1, 'Widget', 9.99, '{blue,small}', '2024-03-01 10:00:00+00'),
  (2, 'Gadget', 24.50, '{}', '2024-03-02 11:30:00+00'),
  (3, 'Doohickey', NULL, NULL, NULL);
CREATE TABLE orders (id serial PRIMARY KEY, product_id int NOT NULL, qty int NOT NULL);
"""


def run_psycopg(dsn: str) -> list:
    import psycopg

    out: list = []
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        cur = conn.execute("SELECT id, name, price FROM products WHERE id = %s", [2])
        out.append(("params", cur.fetchall(), cur.statusmessage))
        bcur = conn.cursor(binary=True)
        bcur.execute("SELECT id, name, price, tags, created FROM products ORDER BY id")
        out.append(("binary", bcur.fetchall(), [d.name for d in bcur.description],
                    [d.type_code for d in bcur.description]))
        conn.commit()
        with conn.transaction():
            row = conn.execute("INSERT INTO orders (product_id, qty) VALUES (%s, %s) RETURNING id", [1, 5]).fetchone()
            upd = conn.execute("UPDATE products SET price = price + 1 WHERE id = %s", [1])
            out.append(("transaction", row, upd.rowcount, upd.statusmessage))
        try:
            conn.execute("SELECT 1/0")
        except psycopg.Error as e:
            out.append(("error", e.sqlstate, e.diag.message_primary))
            conn.rollback()
        with conn.cursor() as c:
            with c.copy("COPY products (id, name) TO STDOUT") as cp:
                out.append(("copy out", list(cp.rows())))
            with c.copy("COPY orders (product_id, qty) FROM STDIN") as cp:
                cp.write_row((2, 3))
                cp.write_row((3, 1))
            out.append(("copy in", c.rowcount))
        conn.commit()
        out.append(("count", conn.execute("SELECT count(*) FROM orders").fetchone()))
        conn.commit()
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute("LISTEN jobs")
        conn.execute("NOTIFY jobs, 'hello'")
        got = [(n.channel, n.payload) for n in conn.notifies(timeout=5, stop_after=1)]
        out.append(("notify", got))
    return out


async def _asyncpg(dsn: str) -> list:
    import asyncpg

    out: list = []
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT id, name, price, created FROM products WHERE price > $1 ORDER BY id",
                                Decimal("1"))
        out.append(("params", [tuple(r) for r in rows]))
        async with conn.transaction():
            status = await conn.execute("INSERT INTO orders (product_id, qty) VALUES ($1, $2)", 3, 7)
            out.append(("transaction", status))
        try:
            await conn.fetch("SELECT qty / $1 FROM orders", 0)
        except asyncpg.PostgresError as e:
            out.append(("error", e.sqlstate, e.message))
        buf = io.BytesIO()
        status = await conn.copy_from_query("SELECT id, name FROM products ORDER BY id", output=buf)
        out.append(("copy out", status, buf.getvalue()))
        status = await conn.copy_records_to_table("orders", records=[(1, 2), (2, 4)], columns=["product_id", "qty"])
        out.append(("copy in", status))
        out.append(("count", await conn.fetchval("SELECT count(*) FROM orders")))
        q: asyncio.Queue = asyncio.Queue()
        await conn.add_listener("events", lambda c, pid, channel, payload: q.put_nowait((channel, payload)))
        await conn.execute("NOTIFY events, 'x'")
        out.append(("notify", await asyncio.wait_for(q.get(), 5)))
    finally:
        await conn.close()
    return out


def run_asyncpg(dsn: str) -> list:
    return asyncio.run(_asyncpg(dsn))


def run_psql(dsn: str) -> str:
    """psql's simple Query protocol: several statements in one message, text results."""
    import shutil
    import subprocess

    psql = shutil.which("psql")
    if psql is None:
        return "psql not installed"
    r = subprocess.run([psql, "-XAt", "-v", "ON_ERROR_STOP=0", "-d", dsn, "-c",
                        "SELECT id, name, price FROM products ORDER BY id; SELECT count(*) FROM products "
                        "WHERE price IS NULL; SELECT missing_column FROM products"],
                       capture_output=True, text=True, timeout=60)
    return f"exit {r.returncode}\n{r.stdout}{r.stderr}"
