"""The managed engine (fakepm.engine): start, template build, clone strategy, acquire cold/warm, per-test cycle.

    .venv/bin/python bench/bench_engine.py [--quick] [--spec postgres|postgres:15]

Numbers printed (milliseconds, median and p90 of N):
- start: a fresh cache (initdb + slot copy + start) and a warm one (slot reused), each in a new
  process; stop();
- CREATE DATABASE ... TEMPLATE of a 5-table template with STRATEGY FILE_COPY vs WAL_LOG,
  alternating (fsync off): the engine's clone_strategy is the faster;
- acquire: cold (no pool: a clone on the caller's thread) and warm (a pre-cloned one popped);
- a per-test cycle, back to back (acquire, psycopg connect + SELECT, close, release) vs
  pytest-postgresql's per-test database (DatabaseJanitor from a template: CREATE DATABASE
  ... TEMPLATE, connect + SELECT, close, DROP) on the same engine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

import psycopg  # noqa: E402

from fakepm.answers.catalog import Catalog  # noqa: E402
from fakepm.engine import DatabaseSetup, ManagedEngine, find_binaries  # noqa: E402
from fakepm.engine import engine as engine_mod  # noqa: E402
from fakepm.engine.client import AdminConnection, ident  # noqa: E402


def five_tables() -> DatabaseSetup:
    cat = Catalog()
    for i in range(5):
        cat.add(f"t{i}", {"id": "int4", "name": "text", "price": "numeric(10,2)", "at": "timestamptz",
                          "tags": "text[]"}, key=("id",),
                rows=[[j, f"name {j}", f"{j}.50", "2024-01-01 00:00:00+00", ["a", "b"]] for j in range(20)])
    return DatabaseSetup(tables=tuple(cat.tables.values()))


def stat(xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    return f"median {statistics.median(xs) * 1000:7.2f} ms   p90 {p90 * 1000:7.2f} ms   (n={len(xs)})"


def start_in_subprocess(cache: str, spec: str) -> float:
    code = ("import time,sys; sys.path.insert(0, %r)\n"
            "from fakepm.engine import resolve_engine\n"
            "e = resolve_engine(%r); t = time.perf_counter(); e.start(); d = time.perf_counter() - t\n"
            "e.stop(); print(d)") % (os.path.join(os.path.dirname(HERE), "src"), spec)
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FAKEPM_CACHE_DIR=cache),
                         capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--spec", default="postgres")
    args = ap.parse_args()
    n = 10 if args.quick else 40
    version = args.spec.partition(":")[2] or None
    binaries = find_binaries(version)
    print(f"# PostgreSQL {binaries.version} from {binaries.source} ({binaries.bindir}); {os.cpu_count()} CPUs")

    # reachable by the server's user when we are root (tmp dirs under /tmp/pytest-of-root are not)
    cache = tempfile.mkdtemp(prefix="fakepm-bench-engine-", dir="/var/tmp")
    os.chmod(cache, 0o711)
    try:
        cold = [start_in_subprocess(tempfile.mkdtemp(dir=cache), args.spec) for _ in range(3 if args.quick else 5)]
        warm_cache = tempfile.mkdtemp(dir=cache)
        start_in_subprocess(warm_cache, args.spec)
        warm = [start_in_subprocess(warm_cache, args.spec) for _ in range(3 if args.quick else 5)]
        print(f"start, fresh cache (initdb + slot + start): {stat(cold)}")
        print(f"start, warm cache (slot reused):            {stat(warm)}")

        eng = ManagedEngine(binaries, cache_root=warm_cache)
        setup = five_tables()
        t = time.perf_counter()
        first = eng.acquire_database(setup)
        print(f"first acquire (5-table template build + clone): {(time.perf_counter() - t) * 1000:.1f} ms")
        eng.release_database(first)
        tpl = eng._templates[setup.key(eng.version)]

        # clone strategy, alternating, synchronous
        times = {"FILE_COPY": [], "WAL_LOG": []}
        names = []
        c = AdminConnection(eng.admin_url())
        for i in range(n):
            for strategy in (("FILE_COPY", "WAL_LOG") if i % 2 == 0 else ("WAL_LOG", "FILE_COPY")):
                name = f"fakepm_db_bench_{strategy.lower()}_{i}"
                t = time.perf_counter()
                c.query(f"CREATE DATABASE {ident(name)} TEMPLATE {ident(tpl)} STRATEGY {strategy}")
                times[strategy].append(time.perf_counter() - t)
                names.append(name)
        drop = []
        for name in names:
            t = time.perf_counter()
            c.query(f"DROP DATABASE {ident(name)} WITH (FORCE)")
            drop.append(time.perf_counter() - t)
        for s, xs in times.items():
            print(f"CREATE DATABASE TEMPLATE STRATEGY {s:9s}: {stat(xs)}")
        print(f"DROP DATABASE WITH (FORCE):                 {stat(drop)}")
        print(f"engine clone_strategy = {eng.clone_strategy}")

        # acquire cold: no pool
        saved = engine_mod.POOL_SIZE
        engine_mod.POOL_SIZE = 0
        cold_acq = []
        for _ in range(n):
            eng.wait_pool()
            t = time.perf_counter()
            name = eng.acquire_database(setup)
            cold_acq.append(time.perf_counter() - t)
            eng.release_database(name)
        engine_mod.POOL_SIZE = saved
        print(f"acquire cold (clone on the caller's thread): {stat(cold_acq)}")
        warm_acq = []
        for _ in range(n):
            eng.wait_pool()
            t = time.perf_counter()
            name = eng.acquire_database(setup)
            warm_acq.append(time.perf_counter() - t)
            eng.release_database(name)
        print(f"acquire warm (pool pop):                    {stat(warm_acq)}")
        t = time.perf_counter()
        for _ in range(n):
            eng.release_database(eng.acquire_database(setup))
        print(f"acquire+release back to back, no waiting:   {(time.perf_counter() - t) / n * 1000:7.2f} ms each")

        # per-test cycle vs pytest-postgresql's janitor on the same engine
        eng.wait_pool()
        ours = []
        for _ in range(n):
            t = time.perf_counter()
            name = eng.acquire_database(setup)
            with psycopg.connect(eng.dsn(name)) as conn:
                conn.execute("SELECT 1").fetchone()
            eng.release_database(name)
            ours.append(time.perf_counter() - t)
        theirs = []
        try:
            from pytest_postgresql.janitor import DatabaseJanitor
        except ImportError:
            DatabaseJanitor = None
        if DatabaseJanitor is not None:
            eng.wait_pool()
            # its template: as pytest-postgresql's process fixture makes it (a database marked template)
            c.query("DROP DATABASE IF EXISTS ppg_tmpl")
            c.query(f"CREATE DATABASE ppg_tmpl TEMPLATE {ident(tpl)} IS_TEMPLATE true")
            for i in range(n):
                t = time.perf_counter()
                j = DatabaseJanitor(user="postgres", host=eng.socket_dir, port=5432, dbname=f"ppg_{i}",
                                    template_dbname="ppg_tmpl", version=eng.version)
                j.init()
                with psycopg.connect(host=eng.socket_dir, port=5432, user="postgres", dbname=f"ppg_{i}") as conn:
                    conn.execute("SELECT 1").fetchone()
                j.drop()
                theirs.append(time.perf_counter() - t)
        c.close()
        print(f"per-test cycle, fakepm engine (pool):       {stat(ours)}")
        if theirs:
            print(f"per-test cycle, pytest-postgresql janitor:  {stat(theirs)}")
            print(f"ratio fakepm/pytest-postgresql (median):    "
                  f"{statistics.median(ours) / statistics.median(theirs):.2f}x")
        t = time.perf_counter()
        eng.stop()
        print(f"stop:                                       {(time.perf_counter() - t) * 1000:7.1f} ms")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
