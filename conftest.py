"""Fixtures shared by the whole test suite and by the README's examples.

pytest loads this file for every test under tests/ (it is the rootdir's conftest). It holds
what tests of different rooms, and the README's examples run by tests/test_readme.py, need
alike; room-specific fixtures stay in tests/<room>/conftest.py (tests/conftest.py: the real
PostgreSQL oracles).

* `scenarios_dir`: the bundled scenarios/ (the README's examples name files in it).
* `fakepm_serve`: start `fakepm serve ARGS...` in another process, get its DSN (and the control
  API's URL with `--admin :0`); stopped with SIGTERM after the test, as a user's CI would. How a
  non-Python client, or a C client that keeps the GIL, meets fakepm.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def scenarios_dir() -> str:
    return os.path.join(ROOT, "scenarios")


@pytest.fixture
def fakepm_serve():
    """fakepm_serve("scenarios/shop.yaml", "--admin", ":0") -> SimpleNamespace(dsn, admin, proc)."""
    procs = []

    def start(*args: str) -> SimpleNamespace:
        proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        procs.append(proc)
        dsn = proc.stdout.readline().strip()
        assert dsn.startswith("postgresql://"), f"fakepm serve printed {dsn!r}"
        admin = proc.stdout.readline().strip() if "--admin" in args else None
        return SimpleNamespace(dsn=dsn, admin=admin, proc=proc)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
