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
from .protocol.pgoutput import UNCHANGED_TOAST  # an unchanged TOASTed column in pg.wal.update(...)
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
