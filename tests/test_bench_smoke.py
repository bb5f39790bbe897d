"""Keep bench/ from rotting: every benchmark module runs in --quick mode (tiny sizes, one run)
against fakepm in its own process and a throwaway PostgreSQL, and prints its Markdown section.
Numbers are not checked (no timing assertions in tests); the shape of the output is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from realpg import skip_unless_postgres

pytestmark = pytest.mark.realpg

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
MODULES = ["startup", "connect", "roundtrip", "pgbench", "results", "copy", "replication", "memory", "backend"]


def test_every_module_is_in_the_suite():
    found = sorted(f[len("bench_"):-3] for f in os.listdir(BENCH) if f.startswith("bench_") and f.endswith(".py"))
    assert found == sorted(MODULES)
    with open(os.path.join(BENCH, "run.py")) as f:
        run_py = f.read()
    assert all(f'"{name}"' in run_py for name in MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_quick(name):
    skip_unless_postgres()
    r = subprocess.run([sys.executable, os.path.join(BENCH, f"bench_{name}.py"), "--quick"],
                       capture_output=True, text=True, timeout=110, cwd=BENCH)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith("## "), r.stdout
    assert any(line.startswith("|---") for line in lines), r.stdout  # a results table
    assert "nan" not in r.stdout.lower().split()
