"""The application's models, as SQLAlchemy metadata: the declared tables (shop_tables.yaml) and
the ones the migration in versions/ creates. Autogenerate compares this with the database."""

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, MetaData,
                        Numeric, String, Table, Text, UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

customers = Table(
    "customers", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("email", String(200)),
    Column("created", DateTime(timezone=True)),
)

items = Table(
    "items", metadata,
    Column("sku", Text, primary_key=True),
    Column("qty", Integer),
    Column("price", Numeric(10, 2)),
    schema="inventory",
)

orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(20), nullable=False, server_default=text("'new'")),
    Column("total", Numeric(12, 2), nullable=False),
    Column("paid", Boolean, nullable=False, server_default=text("false")),
    Column("extra", JSONB),
    CheckConstraint("total >= 0", name="orders_total_not_negative"),
    UniqueConstraint("customer_id", "id", name="orders_customer_id_id_key"),
)
Index("ix_orders_status", orders.c.status)

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", Integer, ForeignKey("orders.id"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("sku", Text, nullable=False),
    Column("qty", Integer, nullable=False),
)
