"""Shared test fixtures. `realpg` (tests/realpg.py) starts a throwaway real PostgreSQL."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def real_pg():
    """A real PostgreSQL on 127.0.0.1 for the whole test session (skipped when not installed)."""
    from realpg import real_postgres, skip_unless_postgres

    skip_unless_postgres()
    with real_postgres() as server:
        yield server
