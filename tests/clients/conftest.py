"""Fixtures shared by the Python driver tests (tests/clients/test_*.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def served_dsn():
    """The DSN of a `fakepm serve` running in another process (its built-in demo rules).

    psycopg's and psycopg2's blocking `conn.cancel()` hold the GIL while libpq waits for the
    server to close the cancel socket, so they can only reach a fake in another process.
    """
    proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve"], stdout=subprocess.PIPE, text=True)
    try:
        dsn = proc.stdout.readline().strip()
        assert dsn.startswith("postgresql://"), f"fakepm serve printed {dsn!r}"
        yield dsn
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
