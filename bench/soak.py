"""Soak: a hostile mix against `fakepm serve` for N minutes; resources before and after.

    .venv/bin/python bench/soak.py [--minutes 10] [--connections 200] [--auth-timeout 5] [--write [--out FILE]]

Not part of CI's time budget (bench/run and tests/ do not run it; tests/test_soak_smoke.py runs
it for a few seconds so it does not rot). `fakepm serve` runs in its own process with a
scenario of rules that answer, wait, fail, close, reset, send garbage and stream large results,
a declared table for COPY and random server-level delays. Up to `--connections` clients at once:

* asyncpg workers (55%): queries drawn from the rules, reconnecting after each fault;
* psycopg workers (10%): COPY FROM STDIN of 24 MB each time, over the copy_keep_bytes budget;
* hostile raw-socket workers (35%): silent connections (dropped by authentication_timeout),
  random bytes, malformed messages in the main loop and in COPY IN, half startup packets,
  a byte a second, CancelRequests with random keys, 100 kB startup packets;
* one canary connection: `SELECT 1` every 50 ms, its latency recorded.

Before: the server with its journal filled to its bounds (150,000 pipelined queries, 30,000 of
them unmatched, 12,000 connections in and out) and after a warm-up (a tenth of the run, at least
20 s, of the same mix): caches, journal and pg.copies at their steady size. After: the server once every client is gone and
authentication_timeout has passed. Both idle. Recorded: RSS, threads, descriptors (from /proc),
the canary's p50/p99 latency, and crashes (the server process gone, a Python traceback on its
stderr, an XX000 answer, the canary failing). The run passes when the server lives, answers,
never said XX000 and its RSS after is within 50 MiB of before.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BEGIN, END = "<!-- bench/soak: begin -->", "<!-- bench/soak: end -->"
AUTH_TIMEOUT = 5.0  # authentication_timeout of the served fake (seconds)
COPY_MB = 24  # each COPY: more than the copy_keep_bytes budget below
COPY_KEEP = "4MB"

SCENARIO = """\
description: bench/soak.py -- answers of every kind, some broken on purpose
server:
  authentication_timeout: {auth_timeout}
  copy_keep_bytes: {copy_keep}
tables:
  items: {{columns: {{id: int4, name: text, price: "numeric(10,2)"}}}}
rules:
  - query: SELECT 1
    columns: {{x: int4}}
    rows: [[1]]
  - query: SELECT id, name, price FROM items WHERE id = $1
    columns: {{id: int4, name: text, price: "numeric(10,2)"}}
    rows: [[1, widget, "9.99"]]
  - query: SELECT slow
    columns: {{x: int4}}
    rows: [[1]]
    delay: 0.05
  - query: SELECT conflict
    error: {{code: "40001", message: could not serialize access due to concurrent update}}
  - query: SELECT closes
    fault: {{close: true}}
  - query: SELECT resets
    fault: {{reset: true}}
  - query: SELECT garbage
    columns: {{x: int4}}
    rows: [[1]]
    fault: {{garbage: 64}}
  - query: SELECT big
    columns: {{id: int4, name: text}}
    generate: {{rows: 20000, seed: 1}}
  - query: SELECT dies
    columns: {{id: int4}}
    generate: {{rows: 100}}
    fault: {{fatal: 57P01, after_rows: 10}}
faults:
  - {{delay: 0.01, probability: 0.02, seed: 7}}
"""

# (asyncpg 0.32 can crash on random reply bytes -- README "Fuzzing your driver" -- so `SELECT garbage`
# is asked by the raw-socket workers, never by the asyncpg ones)
QUERIES = [("SELECT 1", ()), ("SELECT id, name, price FROM items WHERE id = $1", (1,)), ("SELECT slow", ()),
           ("SELECT conflict", ()), ("SELECT closes", ()), ("SELECT resets", ()),
           ("SELECT big", ()), ("SELECT dies", ()), ("SELECT nothing_matches_this", ())]
WEIGHTS = [30, 20, 10, 8, 4, 4, 5, 4, 2]


# ---------------------------------------------------------------------------------- the server
class Server:
    def __init__(self, workdir: str):
        path = os.path.join(workdir, "soak.yaml")
        with open(path, "w") as f:
            f.write(SCENARIO.format(auth_timeout=AUTH_TIMEOUT, copy_keep=COPY_KEEP))
        self.stderr = open(os.path.join(workdir, "serve.stderr"), "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve", path, "--port", "0", "-q"],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=ROOT)
        self.dsn = self.proc.stdout.readline().strip()
        if not self.dsn.startswith("postgresql://"):
            raise RuntimeError("fakepm serve did not start: " + self.log())
        self.port = int(re.search(r":(\d+)/", self.dsn).group(1))

    def status(self) -> dict:
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def log(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


# ---------------------------------------------------------------------------------- the clients
class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.xx000: list[str] = []
        self.canary: list[float] = []
        self.canary_failures = 0

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n


def _startup(user: str = "soak", **extra: str) -> bytes:
    params = {"user": user, "database": "postgres", **extra}
    body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def _frame(t: bytes, body: bytes = b"") -> bytes:
    return t + struct.pack("!i", len(body) + 4) + body


async def query_worker(port: int, until: float, tally: Tally, rng: random.Random) -> None:
    import asyncpg

    conn = None
    while time.monotonic() < until:
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(host="127.0.0.1", port=port, user="soak", database="postgres",
                                             timeout=10, statement_cache_size=0)
            sql, args = rng.choices(QUERIES, WEIGHTS)[0]
            await conn.fetch(sql, *args, timeout=10)
            tally.add("queries ok")
        except Exception as e:  # noqa: BLE001 - faults on purpose: count them, look for XX000
            code = getattr(e, "sqlstate", None)
            tally.add(f"query error {type(e).__name__}")
            if code == "XX000":
                tally.xx000.append(f"{type(e).__name__}: {e}")
            if conn is not None and not conn.is_closed() and code is None:
                conn.terminate()
            if code is None:
                conn = None
            await asyncio.sleep(0.01)
    if conn is not None and not conn.is_closed():
        await conn.close(timeout=5)


def copy_worker(dsn: str, until: float, tally: Tally) -> None:
    import psycopg

    line = "{}\twidget number {} of the soak\t{}.99\n"
    chunk = "".join(line.format(i, i, i % 100) for i in range(20_000)).encode()  # ~0.9 MB
    while time.monotonic() < until:
        try:
            with psycopg.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
                with cur.copy("COPY items FROM STDIN") as cp:
                    sent = 0
                    while sent < COPY_MB << 20 and time.monotonic() < until:
                        cp.write(chunk)
                        sent += len(chunk)
                tally.add("COPY ok")
                tally.add("COPY MB", sent >> 20)
        except Exception as e:  # noqa: BLE001
            tally.add(f"COPY error {type(e).__name__}")
            if getattr(e, "sqlstate", None) == "XX000":
                tally.xx000.append(str(e))
            time.sleep(0.1)


async def hostile_worker(port: int, until: float, tally: Tally, rng: random.Random) -> None:
    kinds = ["silent", "garbage", "malformed", "half_startup", "slowloris", "cancel", "big_startup",
             "copy_garbage", "garbage_reply"]
    while time.monotonic() < until:
        kind = rng.choice(kinds)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except (OSError, asyncio.TimeoutError):
            tally.add("hostile connect failed")
            await asyncio.sleep(0.1)
            continue
        tally.add(f"hostile {kind}")
        try:
            if kind == "silent":
                await _drain(reader, min(until, time.monotonic() + AUTH_TIMEOUT + 2), tally)
            elif kind == "garbage":
                writer.write(rng.randbytes(rng.randint(1, 4096)))
            elif kind == "malformed":
                writer.write(_startup())
                msgs = [_frame(b"Q", b"SELECT 1"), _frame(b"P", b"\0x"), _frame(b"B", b"\xff" * 7),
                        _frame(b"F", b""), _frame(b"S", b"zz"), _frame(b"D", b"Q\0"), _frame(b"E", b"\0"),
                        b"Q" + struct.pack("!i", 2), _frame(bytes([rng.randint(0, 255)]), rng.randbytes(20))]
                writer.write(b"".join(rng.sample(msgs, 4)))
            elif kind == "half_startup":
                writer.write(struct.pack("!i", 200) + b"\0\3\0\0user\0")
            elif kind == "slowloris":
                data = _startup() + _frame(b"Q", b"SELECT 1\0")
                for b in data[: rng.randint(3, len(data))]:
                    if time.monotonic() > until:
                        break
                    writer.write(bytes([b]))
                    await writer.drain()
                    await asyncio.sleep(1.0)
            elif kind == "cancel":
                writer.write(struct.pack("!iiii", 16, 80877102, rng.randint(0, 2**31 - 1), rng.randint(0, 2**31 - 1)))
            elif kind == "big_startup":
                writer.write(struct.pack("!ii", 100_000, 196608) + b"k\0v\0" * 25_000)
            elif kind == "garbage_reply":  # the server's turn to send random bytes (a fault rule)
                writer.write(_startup() + _frame(b"Q", b"SELECT garbage\0"))
            elif kind == "copy_garbage":
                writer.write(_startup() + _frame(b"Q", b"COPY items FROM STDIN\0"))
                pieces = [_frame(b"d", b"1\tx\t1.5\n"), _frame(b"d", rng.randbytes(64)), _frame(b"f", b"no nul"),
                          _frame(b"f", b"\xff\0"), _frame(b"c", b"junk"), _frame(b"d", b"2\t\\N\t\n")]
                writer.write(b"".join(rng.choices(pieces, k=5)))
            await writer.drain()
            await _drain(reader, min(until, time.monotonic() + 3), tally)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _drain(reader: asyncio.StreamReader, until: float, tally: Tally) -> None:
    """Read what the server says until it closes (or `until`); look for XX000."""
    data = b""
    while time.monotonic() < until:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.01, until - time.monotonic()))
        except asyncio.TimeoutError:
            return
        if not chunk:
            tally.add("hostile closed by the server")
            break
        data = (data + chunk)[-4096:]
    if b"CXX000" in data:
        tally.xx000.append(repr(data[:200]))


async def canary(port: int, until: float, tally: Tally) -> None:
    import asyncpg

    conn = None
    while time.monotonic() < until:
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(host="127.0.0.1", port=port, user="canary", database="postgres",
                                             timeout=10)
            t0 = time.perf_counter()
            await conn.fetchval("SELECT 1", timeout=10)
            tally.canary.append(time.perf_counter() - t0)
        except Exception:  # noqa: BLE001
            tally.canary_failures += 1
            conn = None
        await asyncio.sleep(0.05)
    if conn is not None:
        await conn.close(timeout=5)


def run_mix(server: Server, seconds: float, connections: int, seed: int, samples: list | None = None) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    if samples is not None:  # RSS every tenth of the run
        def sample():
            t0 = time.monotonic()
            while time.monotonic() < until:
                time.sleep(min(seconds / 10, max(0.0, until - time.monotonic())))
                try:
                    samples.append((time.monotonic() - t0, server.status()["VmRSS"] / 1024))
                except OSError:
                    return
        threading.Thread(target=sample, daemon=True).start()
    n_copy = max(1, connections // 10)
    n_hostile = max(1, connections * 35 // 100)
    n_query = max(1, connections - n_copy - n_hostile - 1)
    threads = [threading.Thread(target=copy_worker, args=(server.dsn, until, tally), daemon=True)
               for _ in range(n_copy)]
    for t in threads:
        t.start()

    async def main():
        rng = random.Random(seed)
        tasks = [query_worker(server.port, until, tally, random.Random(rng.random())) for _ in range(n_query)]
        tasks += [hostile_worker(server.port, until, tally, random.Random(rng.random())) for _ in range(n_hostile)]
        tasks.append(canary(server.port, until, tally))
        await asyncio.gather(*tasks)

    asyncio.run(main())
    for t in threads:
        t.join(60)
    return tally


def _pipelined(port: int, sql: bytes, n: int, batch: int = 1000) -> None:
    """n simple Queries on one connection, `batch` at a time without waiting (answers read after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(_startup("filler"))
        buf = b""
        while b"Z\0\0\0\x05I" not in buf:
            buf += s.recv(65536)
        q = _frame(b"Q", sql + b"\0")
        for start in range(0, n, batch):
            k = min(batch, n - start)
            s.sendall(q * k)
            seen, buf = 0, b""
            while seen < k:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("the server closed the filler connection")
                buf += chunk
                seen += buf.count(b"Z\0\0\0\x05")
                buf = buf[-5:]


def _churn(port: int, n: int) -> None:
    """n connections that log in and leave at once (connect and disconnect events)."""
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(_startup("churn"))
            buf = b""
            while b"Z\0\0\0\x05I" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            s.sendall(_frame(b"X"))


def fill_journal(port: int) -> None:
    """Bring the server's bounded structures to their steady size before `before` is measured:
    pg.queries (100,000 entries), pg.unmatched, pg.events; the warm-up mix fills pg.copies."""
    jobs = [(_pipelined, (port, b"SELECT 1", 60_000)), (_pipelined, (port, b"SELECT 1", 60_000)),
            (_pipelined, (port, b"SELECT nothing_matches_this", 30_000))]
    jobs += [(_churn, (port, 3_000)) for _ in range(4)]
    threads = [threading.Thread(target=fn, args=args, daemon=True) for fn, args in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)


def probe(port: int, n: int = 200) -> list[float]:
    """Latency of `SELECT 1` on one connection to an otherwise idle server."""
    import psycopg

    out = []
    with psycopg.connect(f"postgresql://canary@127.0.0.1:{port}/postgres", connect_timeout=10) as conn:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            out.append(time.perf_counter() - t0)
    return out


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1e3


def settle(server: Server, seconds: float) -> dict:
    """Wait for the server to go idle (every client gone, timeouts passed), then read /proc."""
    time.sleep(seconds)
    return server.status()


# ---------------------------------------------------------------------------------- report
def soak(minutes: float, connections: int, seed: int = 16, fill: bool = True) -> tuple[list[str], bool]:
    seconds = minutes * 60
    warm = max(20.0, seconds / 10) if seconds >= 60 else seconds / 4
    with tempfile.TemporaryDirectory(prefix="fakepm-soak-") as workdir:
        server = Server(workdir)
        try:
            start = server.status()
            start_probe = probe(server.port)
            if fill:
                fill_journal(server.port)
            warm_tally = run_mix(server, warm, connections, seed)
            before = settle(server, AUTH_TIMEOUT + 1.5)
            before_probe = probe(server.port)
            t0 = time.monotonic()
            samples: list = []
            tally = run_mix(server, seconds, connections, seed + 1, samples)
            elapsed = time.monotonic() - t0
            during = server.status()
            after = settle(server, AUTH_TIMEOUT + 1.5)
            after_probe = probe(server.port)
            alive = server.proc.poll() is None
        finally:
            code = server.stop()
            log = server.log()
    tracebacks = log.count("Traceback")
    mib = lambda st: st["VmRSS"] / 1024  # noqa: E731
    grown = mib(after) - mib(before)
    crashes = (0 if alive else 1) + tracebacks + len(tally.xx000) + len(warm_tally.xx000)
    ok = alive and crashes == 0 and abs(grown) <= 50 and not tally.canary_failures
    counts = sorted(tally.counts.items(), key=lambda kv: -kv[1])
    lines = [
        "## Soak: a hostile mix against `fakepm serve` (issue 16)",
        "",
        f"Generated by `bench/soak.py --minutes {minutes:g} --connections {connections}`. {_machine()}",
        "",
        f"{connections} clients at once for {elapsed / 60:.1f} min (after a {warm:.0f} s warm-up of the same mix): "
        f"asyncpg query workers on rules that answer, wait, fail (40001, FP000), close, reset, "
        f"stream 20,000 rows or die mid-result (57P01), plus random 10 ms server delays; psycopg workers "
        f"streaming {COPY_MB} MB COPYs into a declared table (copy_keep_bytes {COPY_KEEP}); hostile raw sockets "
        f"(silent, random bytes both ways, malformed messages, malformed COPY, half and 100 kB startup packets, "
        f"a byte a second, random CancelRequests); authentication_timeout {AUTH_TIMEOUT:g} s. `before` = idle after "
        + ("the journal was filled to its bounds (150,000 queries, 12,000 short connections) and " if fill else "")
        + "the warm-up, `after` = idle after the run (every client gone, authentication_timeout passed).",
        "",
        "| | at start (idle) | before (idle, after warm-up) | during (end of run) | after (idle) | after - before |",
        "|---|---|---|---|---|---|",
        f"| RSS MiB | {mib(start):.1f} | {mib(before):.1f} | {mib(during):.1f} | {mib(after):.1f} | {grown:+.1f} |",
        f"| threads | {start['Threads']} | {before['Threads']} | {during['Threads']} | {after['Threads']} | "
        f"{after['Threads'] - before['Threads']:+d} |",
        f"| descriptors | {start['fds']} | {before['fds']} | {during['fds']} | {after['fds']} | "
        f"{after['fds'] - before['fds']:+d} |",
        f"| `SELECT 1` p50 / p99 ms (one idle connection, 200 probes) | {p(start_probe, .5):.2f} / "
        f"{p(start_probe, .99):.2f} | {p(before_probe, .5):.2f} / {p(before_probe, .99):.2f} | "
        f"{p(tally.canary, .5):.2f} / {p(tally.canary, .99):.2f} (canary, {len(tally.canary)} probes) | "
        f"{p(after_probe, .5):.2f} / {p(after_probe, .99):.2f} | |",
        f"| crashes (server gone, tracebacks, XX000 answers, canary failures) | | | "
        f"{crashes} crashes, {tally.canary_failures} canary failures | server {'alive' if alive else 'GONE'}, "
        f"exit {code} on SIGTERM | |",
        "",
        f"Peak RSS of the server during the whole soak: {after['VmHWM'] / 1024:.1f} MiB; server CPU "
        f"{after['cpu'] - before['cpu']:.0f} s over the {elapsed:.0f} s run. "
        f"Verdict: **{'pass' if ok else 'FAIL'}** (RSS after within 50 MiB of before: "
        f"{'yes' if abs(grown) <= 50 else 'NO'}; no crash: {'yes' if crashes == 0 else 'NO'}).",
        "",
        "RSS during the run (MiB, every tenth of it): "
        + ", ".join(f"{t / 60:.1f} min {r:.0f}" for t, r in samples) + ".",
        "",
        "What the clients did and met (counts over the measured run):",
        "",
        "| what | count |",
        "|---|---|",
        *[f"| {k} | {v:,} |" for k, v in counts],
    ]
    if tally.xx000 or warm_tally.xx000:
        lines += ["", "XX000 answers (first 5):", ""] + [f"- `{x[:300]}`" for x in (tally.xx000 + warm_tally.xx000)[:5]]
    if tracebacks:
        lines += ["", "Server stderr (last 40 lines):", "", "```", *log.splitlines()[-40:], "```"]
    return lines, ok


def _machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{date}, {os.cpu_count()} CPUs ({cpu}), fakepm git {commit}, Python {sys.version.split()[0]}."


def write_results(lines: list[str], path: str) -> None:
    with open(path, encoding="utf-8") as f:
        old = f.read()
    block = f"{BEGIN}\n" + "\n".join(lines).rstrip() + f"\n{END}"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    elif "<!-- bench_backend: end -->" in old:
        at = old.index("<!-- bench_backend: end -->") + len("<!-- bench_backend: end -->")
        new = old[:at] + "\n\n" + block + old[at:]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


def main() -> int:
    global AUTH_TIMEOUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the measured run (default 10)")
    ap.add_argument("--connections", type=int, default=200, help="clients at once (default 200)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--no-fill", action="store_true",
                    help="skip filling the journal to its bounds before `before` (smoke runs)")
    ap.add_argument("--auth-timeout", type=float, default=AUTH_TIMEOUT,
                    help="the served fake's authentication_timeout in seconds (default 5)")
    ap.add_argument("--write", action="store_true", help="replace the soak section of bench/RESULTS.md")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="the file --write updates")
    args = ap.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * args.connections:  # this process holds every client socket
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * args.connections), hard))
    AUTH_TIMEOUT = args.auth_timeout
    lines, ok = soak(args.minutes, args.connections, args.seed, fill=not args.no_fill)
    print("\n".join(lines), flush=True)
    if args.write:
        write_results(lines, args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
