"""Shared bits for the walsender client tests."""

import shutil
import subprocess

import pytest

from fakepm.protocol.replication import format_lsn


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed")
    return path


def run(cmd, timeout=15, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def lsn(value) -> str:
    return format_lsn(value.end_lsn if hasattr(value, "end_lsn") else value)


def stop(proc, timeout=5):
    """Stop a process we started, by PID: SIGINT, then SIGKILL after a bounded wait."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def standby_updates(pg, slot=None):
    return [e for e in pg.events if e["kind"] == "standby_status" and (slot is None or e["slot"] == slot)]
