"""Shared bits for the walsender client tests."""

import subprocess


from fakepm.protocol.replication import format_lsn
from realpg import need_program


def need(binary: str) -> str:
    """The program's path; skip without it (fail under CI: realpg.missing)."""
    return need_program(binary)


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
