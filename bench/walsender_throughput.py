"""How fast the fake walsender streams: N inserts (in transactions of T changes) to pg_recvlogical.

    .venv/bin/python bench/walsender_throughput.py [N] [T]

Prints changes/s and MB/s of pgoutput payload received by pg_recvlogical (proto 1, text)
from emission start to pg_recvlogical reaching the end position.
"""

import os
import subprocess
import sys
import tempfile
import time

from fakepm import FakePostgres
from fakepm.protocol.replication import format_lsn


def main(n: int = 100_000, per_tx: int = 100) -> None:
    with FakePostgres(version="15.4") as pg, tempfile.TemporaryDirectory() as tmp:
        pg.table("public.t", {"id": "int4", "payload": "text"}, key=["id"])
        pg.wal.create_slot("bench")
        t0 = time.perf_counter()
        last = None
        for start in range(0, n, per_tx):
            with pg.wal.transaction() as tx:
                for i in range(start, min(n, start + per_tx)):
                    tx.insert("public.t", {"id": i, "payload": "x" * 100})
            last = tx
        t1 = time.perf_counter()
        out = os.path.join(tmp, "out.bin")
        r = subprocess.run(["pg_recvlogical", "-d", pg.conninfo(), "--slot", "bench", "--start", "-o",
                            "proto_version=1", "-o", "publication_names=p", "-E", format_lsn(last.end_lsn),
                            "-f", out], capture_output=True, text=True, timeout=600)
        t2 = time.perf_counter()
        assert r.returncode == 0, r.stderr
        size = os.path.getsize(out)
        print(f"emit {n} changes in {n // per_tx} transactions: {t1 - t0:.2f} s ({n / (t1 - t0):,.0f} changes/s)")
        print(f"stream to pg_recvlogical: {t2 - t1:.2f} s ({n / (t2 - t1):,.0f} changes/s, "
              f"{size / (t2 - t1) / 1e6:.1f} MB/s of payload)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
