"""Run a `fakepm` CLI subprocess that prints its DSN first; stop it by PID."""

from __future__ import annotations

import subprocess
import sys

FAKEPM = [sys.executable, "-m", "fakepm.cli"]


class Served:
    """A `fakepm <args>` subprocess that prints a DSN on its first stdout line; stopped by PID."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([*FAKEPM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # bounded: the process prints its DSN or exits
        if not line.startswith("postgresql://"):
            self.stop()
            raise AssertionError(f"fakepm {' '.join(args)} did not start: {line!r} {self.proc.stderr.read()}")
        self.dsn = line.strip()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: record writes its file on the way out
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.stderr.read()
