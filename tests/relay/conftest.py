"""The managed engine shared by the backend-mode relay tests (started once per process)."""

import pytest


@pytest.fixture(scope="session")
def engine():
    from fakepm.engine import EngineError, resolve_engine
    from realpg import missing

    try:
        eng = resolve_engine("postgres")
        eng.start()
    except EngineError as e:
        missing(f"no PostgreSQL for backend mode: {e}")
    return eng
