"""The managed engine (fakepm.engine): start, slot copy, clone strategy, acquire cold/warm, per-test cycle.

A tool for the engine's design choices (not a bench/run module: its output is a list, not a results section).

    .venv/bin/python bench/engine_parts.py [--quick] [--spec postgres|postgres:15]

Milliseconds, median and p90 of N, everything in one run:
- start: a fresh cache (initdb + slot copy + start) and a warm one (slot reused), each in a new
  process (what the first test of a pytest process pays); stop();
- a slot's data directory copied from the initdb cache, to tmpfs and to disk (what a
  "copy per process" design would pay at every start; fakepm keeps persistent slots instead);
- CREATE DATABASE ... TEMPLATE <5-table template> with STRATEGY FILE_COPY vs WAL_LOG (fsync
  off), alternating blocks of 5, with the data directory on tmpfs and on disk;
- acquire: cold (no pool: a clone on the caller's thread) and warm (a pre-cloned one popped);
- a per-test cycle, back to back (acquire, psycopg connect + SELECT 1, close, release) vs
  pytest-postgresql's per-test database (DatabaseJanitor from a template: CREATE DATABASE
  ... TEMPLATE, connect + SELECT 1, close, DROP) on the same engine.
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
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
sys.path.insert(0, SRC)

import psycopg  # noqa: E402

from fakepm.answers.catalog import Catalog  # noqa: E402
from fakepm.engine import DatabaseSetup, ManagedEngine, find_binaries  # noqa: E402
from fakepm.engine import cluster as cluster_mod  # noqa: E402
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


def tmpdir(where: str) -> str:
    # reachable by the server's user when we are root (pytest's tmp dirs are under a 0700 one)
    d = tempfile.mkdtemp(prefix="fakepm-bench-engine-", dir=where)
    os.chmod(d, 0o711)
    return d


def start_in_subprocess(cache: str, data: str, spec: str) -> float:
    code = ("import time,sys; sys.path.insert(0, %r)\n"
            "from fakepm.engine import resolve_engine\n"
            "e = resolve_engine(%r); t = time.perf_counter(); e.start(); d = time.perf_counter() - t\n"
            "e.stop(); print(d)") % (SRC, spec)
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FAKEPM_CACHE_DIR=cache,
                                                                FAKEPM_DATA_DIR=data),
                         capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def clone_strategies(eng: ManagedEngine, tpl: str, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"FILE_COPY": [], "WAL_LOG": []}
    c = AdminConnection(eng.admin_url())
    try:
        for block in range(max(2, n // 5)):
            for strategy in (("FILE_COPY", "WAL_LOG") if block % 2 == 0 else ("WAL_LOG", "FILE_COPY")):
                names = [f"fakepm_db_bench_{strategy.lower()}_{i}" for i in range(5)]
                for name in names:
                    t = time.perf_counter()
                    c.query(f"CREATE DATABASE {ident(name)} TEMPLATE {ident(tpl)} STRATEGY {strategy}")
                    times[strategy].append(time.perf_counter() - t)
                for name in names:
                    c.query(f"DROP DATABASE {ident(name)} WITH (FORCE)")
    finally:
        c.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--spec", default="postgres")
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    n = 10 if args.quick else 40
    version = args.spec.partition(":")[2] or None
    binaries = find_binaries(version)
    tmpfs = "/dev/shm" if cluster_mod._tmpfs_root() else None
    print(f"# PostgreSQL {binaries.version} from {binaries.source} ({binaries.bindir}); {os.cpu_count()} CPUs; "
          f"tmpfs: {tmpfs or 'none with room'}")
    cache = tmpdir("/var/tmp")
    disk_data = tmpdir("/var/tmp")
    fast_data = tmpdir(tmpfs) if tmpfs else disk_data
    try:
        reps = 3 if args.quick else 5
        cold = [start_in_subprocess(tmpdir(cache), tmpdir(fast_data), args.spec) for _ in range(reps)]
        start_in_subprocess(cache, fast_data, args.spec)
        warm = [start_in_subprocess(cache, fast_data, args.spec) for _ in range(reps)]
        print(f"start, fresh cache (initdb + slot copy + start): {stat(cold)}")
        print(f"start, warm cache (persistent slot reused):      {stat(warm)}")

        eng = ManagedEngine(binaries, cache_root=cache, data_root=fast_data)
        eng.start()
        initdb = eng.cluster.initdb_dir
        for label, where in (("tmpfs", fast_data), ("disk", disk_data)):
            if label == "tmpfs" and not tmpfs:
                continue
            xs = []
            for i in range(reps):
                dst = os.path.join(where, f"copy-{i}")
                t = time.perf_counter()
                cluster_mod._copy_tree(initdb, dst, eng.cluster.who)
                xs.append(time.perf_counter() - t)
                shutil.rmtree(dst)
            print(f"copy initdb/ into a new data dir ({label:5s}):     {stat(xs)}")

        setup = five_tables()
        t = time.perf_counter()
        first = eng.acquire_database(setup)
        print(f"first acquire (5-table template build + clone):  {(time.perf_counter() - t) * 1000:7.1f} ms")
        eng.release_database(first)
        tpl = eng._templates[setup.key(eng.version)]
        eng.wait_pool()
        for s, xs in clone_strategies(eng, tpl, n).items():
            print(f"clone STRATEGY {s:9s} ({'tmpfs' if tmpfs else 'disk'}):          {stat(xs)}")
        if tmpfs:
            disk_eng = ManagedEngine(binaries, cache_root=cache, data_root=disk_data)
            disk_tpl = f"fakepm_tpl_{setup.key(disk_eng.version)[:24]}"
            disk_eng.release_database(disk_eng.acquire_database(setup))
            disk_eng.wait_pool()
            for s, xs in clone_strategies(disk_eng, disk_tpl, n).items():
                print(f"clone STRATEGY {s:9s} (disk):           {stat(xs)}")
            disk_eng.stop()
        print(f"engine clone_strategy = {eng.clone_strategy}")

        saved = engine_mod.POOL_SIZE
        engine_mod.POOL_SIZE = 0
        with eng._cond:
            for p in eng._pools.values():
                eng._drops.extend(p)
                p.clear()
        cold_acq = []
        for _ in range(n):
            eng.wait_pool()
            t = time.perf_counter()
            name = eng.acquire_database(setup)
            cold_acq.append(time.perf_counter() - t)
            eng.release_database(name)
        engine_mod.POOL_SIZE = saved
        print(f"acquire cold (clone on the caller's thread):     {stat(cold_acq)}")
        eng.release_database(eng.acquire_database(setup))
        warm_acq = []
        for _ in range(n):
            eng.wait_pool()
            t = time.perf_counter()
            name = eng.acquire_database(setup)
            warm_acq.append(time.perf_counter() - t)
            eng.release_database(name)
        print(f"acquire warm (pool pop):                         {stat(warm_acq)}")
        eng.wait_pool()
        t = time.perf_counter()
        for _ in range(n):
            eng.release_database(eng.acquire_database(setup))
        print(f"acquire+release back to back, no waiting:        {(time.perf_counter() - t) / n * 1000:7.2f} ms each")

        eng.wait_pool()
        ours = []
        for _ in range(n):
            t = time.perf_counter()
            name = eng.acquire_database(setup)
            with psycopg.connect(eng.dsn(name)) as conn:
                conn.execute("SELECT 1").fetchone()
            eng.release_database(name)
            ours.append(time.perf_counter() - t)
        print(f"per-test cycle, fakepm engine (back to back):    {stat(ours)}")
        try:
            from pytest_postgresql.janitor import DatabaseJanitor
        except ImportError:
            DatabaseJanitor = None
        if DatabaseJanitor is not None:
            eng.wait_pool()
            c = AdminConnection(eng.admin_url())
            # its template, as pytest-postgresql's process fixture makes it (a database marked template)
            c.query("DROP DATABASE IF EXISTS ppg_tmpl")
            c.query(f"CREATE DATABASE ppg_tmpl TEMPLATE {ident(tpl)} IS_TEMPLATE true")
            c.close()
            theirs = []
            for i in range(n):
                t = time.perf_counter()
                j = DatabaseJanitor(user="postgres", host=eng.socket_dir, port=5432, dbname=f"ppg_{i}",
                                    template_dbname="ppg_tmpl", version=eng.version.split()[0])
                j.init()
                with psycopg.connect(host=eng.socket_dir, port=5432, user="postgres", dbname=f"ppg_{i}") as conn:
                    conn.execute("SELECT 1").fetchone()
                j.drop()
                theirs.append(time.perf_counter() - t)
            print(f"per-test cycle, pytest-postgresql janitor:       {stat(theirs)}")
            print(f"ratio fakepm/pytest-postgresql (median):         "
                  f"{statistics.median(ours) / statistics.median(theirs):.2f}x")
        t = time.perf_counter()
        eng.stop()
        print(f"stop:                                            {(time.perf_counter() - t) * 1000:7.1f} ms")
    finally:
        for d in {cache, disk_data, fast_data}:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
