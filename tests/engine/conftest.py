"""Fixtures for the engine room's tests: real PostgreSQL processes, isolated cache directories.

Every engine here runs in its own cache and data directories (never the user's ~/.cache), and
those are removed at the end. As root the server runs as an unprivileged user, so the
directories live where that user can reach them (/var/tmp, /dev/shm: pytest's tmp_path is
under a 0700 directory).
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.dirname(HERE)):  # engine_helpers.py; realpg.py
    if p not in sys.path:
        sys.path.insert(0, p)

from engine_helpers import Dirs  # noqa: E402

from fakepm.engine import EngineError, ManagedEngine, find_binaries  # noqa: E402
from realpg import missing  # noqa: E402


@pytest.fixture(scope="session")
def binaries():
    try:
        return find_binaries()
    except EngineError as e:
        missing(f"no PostgreSQL binaries: {e}")


@pytest.fixture(scope="session")
def session_dirs():
    d = Dirs("session")
    yield d
    d.cleanup()


@pytest.fixture
def dirs():
    d = Dirs()
    yield d
    d.cleanup()


@pytest.fixture(scope="session")
def managed(binaries, session_dirs):
    """One managed engine shared by the session's engine tests (as backend mode shares one per process)."""
    eng = ManagedEngine(binaries, cache_root=session_dirs.cache, data_root=session_dirs.data)
    eng.start()
    yield eng
    eng.stop()
