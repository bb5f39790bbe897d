"""A streamed (generated) result stays flat in server memory while a real client reads it quickly.

The server runs in a child process so its peak RSS (VmHWM) is its own; psycopg 3 streams
60,000 rows of ~1 KB (about 240 batches of 256 KiB). The loop used to recurse once per batch
when the socket took everything, keeping every sent batch alive: ~60 MB here, not ~1."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

CHILD = r"""
import json, sys
from fakepm import FakePostgres
with FakePostgres() as pg:
    pg.on("SELECT id, body FROM big").reply(columns={"id": "int4", "body": "text"},
                                            rows=lambda: ((i, "x" * 1000) for i in range(60_000)))
    print(json.dumps({"dsn": pg.dsn}), flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        fields = dict(l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("VmHWM", "VmRSS")))
        print(json.dumps({k: int(v.split()[0]) for k, v in fields.items()}), flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_streamed_result_keeps_server_memory_flat():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        dsn = json.loads(proc.stdout.readline())["dsn"]

        def ask(cmd: str) -> dict:
            proc.stdin.write(cmd + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT 1")
            before = ask("reset")["VmRSS"]
            got = sum(1 for _ in conn.cursor().stream("SELECT id, body FROM big", size=1000))
            peak = ask("status")["VmHWM"]
        assert got == 60_000
        grown_mib = (peak - before) / 1024
        assert grown_mib < 20, f"server peak RSS grew by {grown_mib:.1f} MiB while streaming ~60 MB of rows"
    finally:
        proc.stdin.close()
        proc.wait(10)
