"""fakepm serving the benchmark rules in its own process, driven by one-line commands on stdin.

    python bench/fakeserver.py [--rows N]      # prints {"dsn", "port"} as JSON, then serves

Rules: the 100-row script's query, a one-parameter query, and the N-row (int8, text,
timestamptz) result as a streamed answer (rows produced lazily, so memory stays flat), which
also serves `COPY (...) TO STDOUT`. Table `items` takes COPY FROM STDIN. Users: `postgres`
(trust) and `bench` (scram-sha-256, password `benchpw`).

Commands (each answers one JSON line): `rss` (peak and current RSS in KiB), `reset_peak`,
`clear` (forget journal and COPY records), `copy_rows` (read the last COPY's
rows, answer how long it took), `wal N T SLOT...` (create the slots, emit N inserts
in transactions of T, answer the end LSN).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import HUNDRED_SQL, PARAM_SQL, ROWS_SQL  # noqa: E402

from fakepm import FakePostgres  # noqa: E402
from fakepm.protocol.replication import format_lsn  # noqa: E402

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def streamed_rows(n: int):
    """A zero-argument callable giving a fresh iterator of n rows each time the rule answers."""
    def rows():
        second = dt.timedelta(seconds=1)
        at = BASE
        for i in range(1, n + 1):
            at += second
            yield (i, f"name-{i}", at)
    return rows


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    pg = FakePostgres(version="15.4", users={"postgres": None,
                                             "bench": {"password": "benchpw", "auth": "scram-sha-256"}})
    pg.on(HUNDRED_SQL).reply(columns={"id": "int4", "name": "text"},
                             rows=[[i, f"name-{i}"] for i in range(1, 101)])
    pg.on(PARAM_SQL).reply(columns={"name": "text"}, rows=[["ada"]])
    pg.on(ROWS_SQL.format(n=args.rows)).reply(columns={"id": "int8", "name": "text", "at": "timestamptz"},
                                              rows=streamed_rows(args.rows))
    pg.table("items", {"id": "int8", "name": "text", "at": "timestamptz"})
    pg.table("public.t", {"id": "int4", "payload": "text"}, key=["id"])
    with pg:
        print(json.dumps({"dsn": pg.dsn, "port": pg.port}), flush=True)
        for line in sys.stdin:
            word, *rest = line.split()
            if word == "rss":
                out = {"peak_kib": status_kib("VmHWM"), "rss_kib": status_kib("VmRSS")}
            elif word == "reset_peak":
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # Linux: reset VmHWM to the current RSS
                out = {"rss_kib": status_kib("VmRSS")}
            elif word == "clear":
                pg.journal.clear()
                out = {}
            elif word == "copy_rows":  # read the last COPY's rows as a test would (tuples made on first read)
                t0 = time.perf_counter()
                rows = pg.copies[-1].rows
                out = {"rows": len(rows), "seconds": time.perf_counter() - t0}
            elif word == "wal":
                n, per_tx, slots = int(rest[0]), int(rest[1]), rest[2:]
                for slot in slots:
                    pg.wal.create_slot(slot)
                tx = None
                for start in range(0, n, per_tx):
                    with pg.wal.transaction() as tx:
                        for i in range(start, min(n, start + per_tx)):
                            tx.insert("public.t", {"id": i, "payload": "x" * 100})
                out = {"end_lsn": format_lsn(tx.end_lsn)}
            else:
                out = {"error": f"unknown command {word!r}"}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
