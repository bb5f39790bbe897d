"""The managed engine shared by the backend-mode relay tests (started once per process)."""

import pytest


@pytest.fixture(scope="session")
def engine():
    from fakepm.engine import EngineError, resolve_engine

    try:
        eng = resolve_engine("postgres")
        eng.start()
    except EngineError as e:
        pytest.skip(f"no PostgreSQL for backend mode: {e}")
    return eng
