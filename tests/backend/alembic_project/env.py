"""Alembic environment of the backend-mode tests: the URL comes from the Config (set by the test)."""

import os
import sys

from alembic import context
from sqlalchemy import create_engine, pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import metadata  # noqa: E402

config = context.config


def include_name(name, type_, parent_names):
    if type_ == "schema":  # the declared tables' schema besides the default one
        return name in (None, "inventory")
    return True


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_schemas=True,
                          include_name=include_name, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline mode is not used by these tests")
run_migrations_online()
