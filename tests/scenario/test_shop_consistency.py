"""scenarios/shop.yaml agrees with itself: what its rules answer about products is what its
declared `tables:` hold (stock and prices per id), and its notices say the same."""

import os

import psycopg

from fakepm import FakePostgres
from fakepm.scenario import load_scenario

SHOP = os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "shop.yaml")


def test_the_rules_answer_what_the_products_table_holds():
    table = load_scenario(SHOP).tables["public.products"]
    names = [c.name for c in table.columns]
    rows = [dict(zip(names, r)) for r in table.rows]
    with FakePostgres(SHOP) as pg, psycopg.connect(pg.dsn, autocommit=True) as conn:
        listed = conn.execute("SELECT id, name, price FROM products ORDER BY id").fetchall()
        assert listed == [(r["id"], r["name"], r["price"]) for r in rows]
        for r in rows:
            assert conn.execute("SELECT stock FROM products WHERE id = %s", [r["id"]]).fetchall() == [(r["stock"],)]
            by_id = conn.execute("SELECT id, name, price FROM products WHERE id = %s", [r["id"]]).fetchall()
            assert by_id in ([], [(r["id"], r["name"], r["price"])])  # ids without their own rule find nothing
        assert conn.execute("SELECT stock FROM products WHERE id = %s", [99]).fetchall() == []
        out_of_stock = sum(1 for r in rows if r["stock"] == 0)
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("SELECT refresh_sales_report()")
        assert f"{out_of_stock} product is out of stock" in notices
