"""Helpers for the engine tests (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time


def reachable_tmpdir(prefix: str, tmpfs: bool = False) -> str:
    base = "/dev/shm" if tmpfs and os.path.isdir("/dev/shm") else ("/var/tmp" if os.path.isdir("/var/tmp") else None)
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o711)
    return d


class Dirs:
    """A cache root and a data root of our own, removed by cleanup()."""

    def __init__(self, name: str = "t"):
        self.cache = reachable_tmpdir(f"fakepm-test-cache-{name}-")
        self.data = reachable_tmpdir(f"fakepm-test-data-{name}-", tmpfs=True)

    def env(self, **extra) -> dict:
        return dict(os.environ, FAKEPM_CACHE_DIR=self.cache, FAKEPM_DATA_DIR=self.data, **extra)

    def cleanup(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        shutil.rmtree(self.data, ignore_errors=True)


def pid_gone(pid: int) -> bool:
    """No such process, or a zombie (dead, waiting for its reaper: init here)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" in line.split()[1]
    except OSError:
        return True
    return False


def wait_until(cond, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def run_child(code: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
