"""fakepm: a fake PostgreSQL server for tests.

Real, unmodified clients (psql, psycopg, psycopg2, asyncpg, pg8000, SQLAlchemy, JDBC,
node-postgres, pgbench, pg_recvlogical) connect to it and get the answers a test scripted.

    from fakepm import FakePostgres
    with FakePostgres() as pg:
        pg.on("SELECT name FROM users WHERE id = $1").reply(columns={"name": "text"}, rows=[["ada"]])
        ...
        pg.verify()
"""

from .answers.result import Column, ConnectionInfo, Query, Result
from .answers.rules import Rule
from .faults import FaultPlan, FaultSpecError, parse_fault
from .protocol.auth import UserAuth
from .protocol.errors import NO_RULE_MATCHED, PgError
from .server import FakePostgres, RuleBuilder

__version__ = "0.1.0"

__all__ = [
    "FakePostgres",
    "FaultPlan",
    "FaultSpecError",
    "parse_fault",
    "RuleBuilder",
    "Rule",
    "Query",
    "Result",
    "Column",
    "ConnectionInfo",
    "PgError",
    "UserAuth",
    "NO_RULE_MATCHED",
    "UNCHANGED_TOAST",
    "__version__",
]

# Names whose modules serve only some tests (logical replication): imported on first use so
# that `import fakepm` stays cheap (tests/test_cold_start.py checks which modules it loads).
_LAZY = {
    "UNCHANGED_TOAST": ("fakepm.protocol.pgoutput", "UNCHANGED_TOAST"),  # an unchanged TOASTed column in pg.wal.update(...)
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'fakepm' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
