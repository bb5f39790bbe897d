"""bench/soak.py does not rot: a few seconds of its hostile mix with 20 clients (the real run,
200 clients for 10 minutes, is a separate command: see bench/RESULTS.md)."""

import os
import subprocess
import sys

import pytest

SOAK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "soak.py")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_soak_runs_and_reports():
    r = subprocess.run([sys.executable, SOAK, "--minutes", "0.08", "--connections", "20", "--auth-timeout", "1"],
                       capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Verdict: **pass**" in r.stdout and "| RSS MiB |" in r.stdout and "queries ok" in r.stdout
