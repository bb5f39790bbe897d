"""Run `fakepm serve FILE` as a real subprocess: read its DSN line, stop it by PID."""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = os.path.join(REPO, "scenarios")
HERE = os.path.dirname(os.path.abspath(__file__))


def fakepm_command() -> list[str]:
    exe = shutil.which("fakepm", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "fakepm.cli"]


class Served(str):
    """The DSN `fakepm serve` printed; `.pid` is the server process."""

    pid: int


@contextmanager
def serve(path: str, *args: str, timeout: float = 20.0):
    """Yield the DSN printed by `fakepm serve path` (a Served str with .pid); stopped by PID afterwards."""
    proc = subprocess.Popen(fakepm_command() + ["serve", path, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = ""
        while not line.endswith("\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"fakepm serve {path} printed no DSN within {timeout}s")
            chunk = proc.stdout.readline()
            if not chunk:
                raise RuntimeError(f"fakepm serve {path} exited: {proc.wait(5)} {proc.stderr.read()}")
            line += chunk
        sel.close()
        dsn = Served(line.strip())
        dsn.pid = proc.pid
        yield dsn
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def run_check(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run(fakepm_command() + ["check", *paths], capture_output=True, text=True, cwd=REPO, timeout=60)
