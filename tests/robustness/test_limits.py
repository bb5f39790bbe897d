"""Bounded under abuse: memory, time and descriptors stay within limits whatever clients send.

Memory is measured in a child process (its RSS is its own); each child prints JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time

import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.session.hub import BoundedLog, Journal, JournalEntry

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")

_RSS = r"""
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
"""


def _child(code: str, *args: str, timeout: float = 120) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", _RSS + code, *args], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _startup(user: str = "postgres") -> bytes:
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0\0"
    return struct.pack("!i", len(body) + 4) + body


def _read_until_ready(sock: socket.socket, timeout: float = 30.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"Z\0\0\0\x05I") and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


# ---------------------------------------------------------------------------------- memory
@linux_only
def test_a_100_mb_query_then_stop_leaves_the_process_where_it_started():
    """Three distinct 100 MB texts used to leave ~940 MiB in process-wide caches keyed by the text."""
    code = r"""
import gc, json, socket, struct, time
from fakepm import FakePostgres
def startup(s):
    body = struct.pack("!i", 196608) + b"user\0postgres\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    buf = b""
    while not buf.endswith(b"Z\0\0\0\x05I"):
        buf += s.recv(65536)
pg = FakePostgres(max_message_size=1 << 30).start()
pg.on("SELECT 1").reply(columns={"x": "int4"}, rows=[[1]])
with socket.create_connection(("127.0.0.1", pg.port)) as s:
    startup(s)
gc.collect()
before = rss_mib()
with socket.create_connection(("127.0.0.1", pg.port)) as s:
    startup(s)
    sql = ("SELECT 1 /*" + "x" * 100_000_000 + "*/").encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!i", len(sql) + 4) + sql)
    del sql
    buf = b""
    while not buf.endswith(b"Z\0\0\0\x05I"):
        buf += s.recv(65536)
    during = rss_mib()
pg.stop()
queries = len(pg.queries)
kept = pg.queries[-1].sql_size
del pg
gc.collect()
time.sleep(0.2)
print(json.dumps({"before": before, "during": during, "after": rss_mib(), "queries": queries, "sql_size": kept}))
"""
    (r,) = _child(code)
    assert r["sql_size"] == 100_000_000 + len("SELECT 1 /**/")  # journaled: its first MiB and its length
    assert r["after"] - r["before"] < 20, r


@linux_only
def test_copy_in_beyond_the_budget_keeps_memory_flat_and_the_record_honest():
    """50 MB of COPY data into a declared table with copy_keep_bytes=4 MiB: the record keeps the
    first rows (~4 MiB worth), counts them all, sums them, and the server's peak RSS stays flat
    (every row kept would be ~200 MiB of Python objects)."""
    code = r"""
import json, sys
from fakepm import FakePostgres
with FakePostgres(copy_keep_bytes=4 << 20) as pg:
    pg.table("items", {"id": "int4", "name": "text", "price": "numeric"})
    print(json.dumps({"dsn": pg.dsn}), flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            reset_peak()
            print(json.dumps({"rss": rss_mib()}), flush=True)
        elif line.strip() == "done":
            rec = pg.copies[-1]
            print(json.dumps({"peak": peak_mib(), "count": rec.count, "kept": len(rec.rows), "dropped": rec.dropped,
                              "bytes": rec.bytes, "checksum": rec.checksum, "first": list(map(str, rec.first_row)),
                              "last": list(map(str, rec.last_row)), "complete": rec.complete, "note": rec.note,
                              "first_kept": list(map(str, rec.rows[0])), "ok": rec.ok}), flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", _RSS + code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        dsn = json.loads(proc.stdout.readline())["dsn"]

        def ask(cmd: str) -> dict:
            proc.stdin.write(cmd + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        n = 1_000_000
        line = "{}\twidget number {} with a longer name\t{}.99\n"
        chunk_rows = 20_000
        digest = hashlib.sha256()
        total = 0
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT 1")
            before = ask("reset")["rss"]
            with conn.cursor() as cur, cur.copy("COPY items FROM STDIN") as cp:
                for start in range(0, n, chunk_rows):
                    data = "".join(line.format(i, i, i % 100) for i in range(start, start + chunk_rows)).encode()
                    digest.update(data)
                    total += len(data)
                    cp.write(data)
        r = ask("done")
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert total > 50_000_000
    assert r["ok"] and r["count"] == n and r["bytes"] == total and r["checksum"] == digest.hexdigest()
    assert 0 < r["kept"] < n and r["dropped"] == n - r["kept"] and not r["complete"] and "kept the first" in r["note"]
    assert r["first"] == ["0", "widget number 0 with a longer name", "0.99"] == r["first_kept"]
    assert r["last"] == [str(n - 1), f"widget number {n - 1} with a longer name", "99.99"]
    grown = r["peak"] - before
    assert grown < 40, f"server peak RSS grew by {grown:.1f} MiB while {total / 2**20:.0f} MiB were copied in"


def test_copy_within_the_budget_is_complete():
    with FakePostgres() as pg:
        pg.table("t", {"a": "int4", "b": "text"})
        with psycopg.connect(pg.dsn) as conn, conn.cursor() as cur:
            with cur.copy("COPY t FROM STDIN") as cp:
                cp.write(b"1\tx\n2\ty\n")
                cp.write(b"3\tz\n")
        rec = pg.copies[-1]
        assert rec.rows == [(1, "x"), (2, "y"), (3, "z")] and rec.count == 3 and rec.complete and rec.note is None
        assert rec.first_row == (1, "x") and rec.last_row == (3, "z") and rec.bytes == 12
        assert rec.checksum == hashlib.sha256(b"1\tx\n2\ty\n3\tz\n").hexdigest()


def test_journal_lists_are_bounded_by_count_and_bytes():
    j = Journal(limit=5, query_bytes=10_000, max_text=1000)

    def entry(sql, matched=True):
        return JournalEntry(sql=sql, params=[], protocol="simple", connection=1, pid=1, user="u", database="d",
                            matched=matched)

    for i in range(20):
        j.record(entry(f"SELECT {i}"))
    assert [e.sql for e in j.queries] == [f"SELECT {i}" for i in range(15, 20)] and j.dropped["queries"] == 15
    j.record(entry("x" * 5000))  # a long text keeps its first max_text characters and says how long it was
    assert j.queries[-1].sql == "x" * 1000 and j.queries[-1].sql_size == 5000
    for _ in range(40):
        j.record(entry("y" * 900, matched=False))
    assert j.queries.size <= 10_000 and len(j.unmatched) == 5
    log = BoundedLog(100, 50, len)
    log.append("a" * 500)  # bigger than the whole bound: the newest entry is still kept
    assert list(log) == ["a" * 500]
    log.append("b")
    assert list(log) == ["b"] and log.dropped == 1


def test_old_copies_let_go_of_their_rows_first():
    """Over pg.copies' byte bound the oldest records release their rows but keep the rest."""
    with FakePostgres() as pg:
        pg.journal.copies.max_bytes = 25_000  # a small bound: two of these COPYs (1.7 kB x COPY_MEMORY_FACTOR)
        pg.table("t", {"a": "int4", "b": "text"})
        with psycopg.connect(pg.dsn) as conn, conn.cursor() as cur:
            for k in range(3):
                with cur.copy("COPY t FROM STDIN") as cp:
                    cp.write("".join(f"{i}\tcopy {k} row {i}\n" for i in range(100)).encode())
        first, last = pg.copies[0], pg.copies[-1]
        assert len(pg.copies) == 3
        assert first.rows == [] and first.count == 100 and first.dropped == 100 and not first.complete
        assert first.first_row == (0, "copy 0 row 0") and first.last_row == (99, "copy 0 row 99")
        assert "kept none of its 100 rows" in first.note
        assert len(last.rows) == 100 and last.complete


def test_copies_running_at_once_share_one_bound():
    """200 connections loading at once must not keep 200 copy_keep_bytes' worth of rows: COPYs in
    flight share the journal's bound (in-process sessions, fed by hand)."""
    from fakepm.session.hub import COPY_MEMORY_FACTOR

    def frame(t, body=b""):
        return t + struct.pack("!i", len(body) + 4) + body

    pg = FakePostgres()  # not started: sessions driven in-process
    pg.table("t", {"a": "int4", "b": "text"})
    pg.journal.copy_inflight_max = 3000 * COPY_MEMORY_FACTOR  # ~3 kB of COPY data kept by all COPYs at once
    data = "".join(f"{i}\trow {i}\n" for i in range(200)).encode()  # ~2.3 kB
    a, b = (pg._make_session(("127.0.0.1", 1), False) for _ in range(2))
    for s in (a, b):
        s.receive(_startup() + frame(b"Q", b"COPY t FROM STDIN\0"), 0.0)
    a.receive(frame(b"d", data), 0.0)  # a keeps its rows (in flight)
    b.receive(frame(b"d", data) + frame(b"c") + frame(b"S"), 0.0)  # b finds the shared room taken
    a.receive(frame(b"c"), 0.0)
    rb, ra = pg.copies[0], pg.copies[1]
    assert ra.complete and len(ra.rows) == 200
    assert rb.count == 200 and rb.rows == [] and rb.dropped == 200 and "running at the same time" in rb.note
    assert pg.journal.copy_inflight == 0  # both gave their share back
    c = pg._make_session(("127.0.0.1", 1), False)  # a connection gone mid-COPY gives it back too
    c.receive(_startup() + frame(b"Q", b"COPY t FROM STDIN\0") + frame(b"d", b"1\tx\n"), 0.0)
    assert pg.journal.copy_inflight > 0
    c.close("client went away")
    assert pg.journal.copy_inflight == 0


def test_max_message_size_default_and_ceiling():
    pg = FakePostgres()
    assert pg.config.max_message_size == 64 << 20
    assert FakePostgres(max_message_size=1 << 30).config.max_message_size == 1 << 30
    with pytest.raises(ValueError, match="1 GiB"):
        FakePostgres(max_message_size=(1 << 30) + 1)


# ---------------------------------------------------------------------------------- time
def test_silent_connection_is_dropped_after_authentication_timeout():
    with FakePostgres(authentication_timeout=0.3, users={"u": "pw"}) as pg:
        silent = socket.create_connection(("127.0.0.1", pg.port))
        started = socket.create_connection(("127.0.0.1", pg.port))
        started.sendall(_startup("u"))  # ... then never answers the password request
        t0 = time.monotonic()
        silent.settimeout(5)
        assert silent.recv(100) == b""  # closed without a word (PostgreSQL: the same)
        elapsed = time.monotonic() - t0
        started.settimeout(5)
        data = b""
        while True:
            chunk = started.recv(65536)
            if not chunk:
                break
            data += chunk
        assert b"canceling authentication due to timeout" in data and b"57014" in data
        assert 0.2 < elapsed < 2.0
        with psycopg.connect(pg.url(user="u", password="pw")) as conn:  # authenticated clients stay
            time.sleep(0.5)
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert sum(1 for e in pg.events if e["kind"] == "auth_timeout") == 2
        silent.close()
        started.close()


@linux_only
def test_descriptor_exhaustion_answers_53300_within_bounded_cpu():
    """A server limited to 128 descriptors, 200 connections that never speak: new clients get
    FATAL 53300 quickly, the loop does not spin (it used to run at 100% CPU and grow 44 MiB/s),
    and clients are served again once the silent ones go."""
    code = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from fakepm import FakePostgres
pg = FakePostgres().start()
print(json.dumps({"port": pg.port, "dsn": pg.dsn}), flush=True)
for line in sys.stdin:
    print(json.dumps({**pg._loop.stats, "rss": rss_mib()}), flush=True)
pg.stop()
"""
    proc = subprocess.Popen([sys.executable, "-c", _RSS + code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    socks = []
    try:
        info = json.loads(proc.stdout.readline())

        def ask() -> dict:
            proc.stdin.write("stats\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        def cpu() -> float:
            with open(f"/proc/{proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        for _ in range(200):
            socks.append(socket.create_connection(("127.0.0.1", info["port"])))
        time.sleep(0.3)
        rss0, cpu0, t0 = ask()["rss"], cpu(), time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            psycopg.connect(info["dsn"], connect_timeout=10)
        answered = time.monotonic() - t0
        time.sleep(1.0)
        stats = ask()
        used = (cpu() - cpu0) / (time.monotonic() - t0)
        assert answered < 5, f"53300 took {answered:.1f} s"
        assert used < 0.5, f"the server used {used:.0%} of a CPU with its descriptor table full"
        assert stats["rss"] - rss0 < 10, stats
        assert stats["too_many_clients"] > 0
        for s in socks:
            s.close()
        socks = []
        deadline = time.monotonic() + 10
        while True:  # served again once descriptors are free
            try:
                with psycopg.connect(info["dsn"], connect_timeout=5) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "not served after the silent connections went"
                time.sleep(0.2)
    finally:
        for s in socks:
            s.close()
        proc.stdin.close()
        proc.wait(30)
