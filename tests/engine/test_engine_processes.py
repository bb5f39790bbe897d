"""Engines across processes: the initdb cache, concurrent processes, killed processes, pytest-xdist."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engine_helpers import pid_gone, run_child, wait_until

pytestmark = pytest.mark.realpg

# a child that starts an engine, acquires a database, prints facts as JSON, then waits for stdin
CHILD = textwrap.dedent("""
    import json, os, sys
    from fakepm.engine import resolve_engine
    eng = resolve_engine("postgres")
    eng.start()
    name = eng.acquire_database()
    c = eng.cluster
    print(json.dumps({"pid": os.getpid(), "postmaster": c.pid, "guard": c.guard.pid, "slot": c.slot,
                      "socket": c.socket_dir, "datadir": c.datadir, "initdb_ran": c.initdb_ran,
                      "initdb_ino": os.stat(c.initdb_dir).st_ino, "db": name}), flush=True)
    sys.stdin.read()   # until the test closes our stdin (or kills us)
""")


def spawn(dirs) -> tuple[subprocess.Popen, dict]:
    p = subprocess.Popen([sys.executable, "-c", CHILD], env=dirs.env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        p.kill()
        raise AssertionError(f"child failed: {p.stderr.read()}")
    return p, json.loads(line)


def finish(p: subprocess.Popen) -> None:
    p.stdin.close()
    p.wait(timeout=60)
    assert p.returncode == 0, p.stderr.read()


def test_initdb_once_then_reused(dirs):
    p, first = spawn(dirs)
    finish(p)
    assert pid_gone(first["postmaster"]) and not os.path.exists(first["socket"])  # stopped at exit
    p, second = spawn(dirs)
    finish(p)
    assert first["initdb_ran"] is True and second["initdb_ran"] is False
    assert first["initdb_ino"] == second["initdb_ino"]  # the same cached directory, not a new initdb
    assert first["datadir"] == second["datadir"] and first["slot"] == second["slot"] == 0  # the slot is reused
    base = os.path.dirname(os.path.dirname(os.path.dirname(first["datadir"])))
    logs = [os.path.join(r, "initdb.log") for r, _, files in os.walk(dirs.cache) if "initdb.log" in files]
    assert len(logs) == 1
    with open(logs[0]) as f:
        assert len([line for line in f if "-> exit 0" in line]) == 1, base


def test_two_processes_at_once_get_their_own_clusters(dirs):
    # both start on a cold cache at the same moment: one initdb (file lock), two slots
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], env=dirs.env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    facts = []
    for p in procs:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        facts.append(json.loads(line))
    a, b = facts
    try:
        assert a["postmaster"] != b["postmaster"] and a["socket"] != b["socket"]
        assert {a["slot"], b["slot"]} == {0, 1} and a["datadir"] != b["datadir"]
        assert [a["initdb_ran"], b["initdb_ran"]].count(True) == 1
        assert a["db"] != b["db"]
    finally:
        for p in procs:
            finish(p)


def test_sigkill_leaves_no_postmaster(dirs):
    p, facts = spawn(dirs)
    os.kill(facts["pid"], signal.SIGKILL)
    p.wait(timeout=10)
    # the guard sees its pipe close and fast-stops the cluster: within seconds, bounded
    assert wait_until(lambda: pid_gone(facts["postmaster"]), 10), "postmaster still running after SIGKILL"
    assert wait_until(lambda: pid_gone(facts["guard"]), 10), "guard still running"
    assert wait_until(lambda: not os.path.exists(facts["socket"]), 5)
    backends = _children_of(facts["postmaster"])
    assert not backends
    p2, again = spawn(dirs)  # the slot is free again, and the data directory fine
    finish(p2)
    assert again["slot"] == facts["slot"]


def test_guard_killed_takes_the_postmaster_along(dirs):
    p, facts = spawn(dirs)
    try:
        os.kill(facts["guard"], signal.SIGKILL)
        # PR_SET_PDEATHSIG: the postmaster gets SIGQUIT (immediate shutdown) when its guard dies
        assert wait_until(lambda: pid_gone(facts["postmaster"]), 10), "postmaster outlived its guard"
    finally:
        p.stdin.close()
        p.wait(timeout=60)


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rpartition(")")[2].split()[1] == str(pid) and not pid_gone(int(entry)):
                        out.append(int(entry))
            except (OSError, IndexError):
                pass
    return out


XDIST_TESTS = textwrap.dedent("""
    import json, os
    import pytest
    from fakepm.engine import resolve_engine, DatabaseSetup

    SETUP = DatabaseSetup(schema=("CREATE TABLE t (id int PRIMARY KEY, who text)",))

    @pytest.mark.parametrize("i", range(8))
    def test_use(i, tmp_path_factory):
        import psycopg
        eng = resolve_engine("postgres")
        name = eng.acquire_database(SETUP)
        with psycopg.connect(eng.dsn(name), autocommit=True) as conn:
            conn.execute("INSERT INTO t VALUES (1, %s)", (os.environ.get("PYTEST_XDIST_WORKER", "?"),))
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
        eng.release_database(name)
        with open(os.path.join(os.environ["FACTS_DIR"], f"{i}.json"), "w") as f:
            json.dump({"worker": os.environ.get("PYTEST_XDIST_WORKER"), "socket": eng.socket_dir,
                       "postmaster": eng.postmaster_pid, "slot": eng.cluster.slot}, f)
""")


@pytest.mark.slow
def test_pytest_xdist_two_workers(dirs, tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_xdist_engine.py").write_text(XDIST_TESTS)
    facts_dir = tmp_path / "facts"
    facts_dir.mkdir()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                        "-p", "no:randomly", str(tmp_path / "test_xdist_engine.py")],
                       env=dirs.env(FACTS_DIR=str(facts_dir)), cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    facts = [json.loads(p.read_text()) for p in facts_dir.iterdir()]
    assert len(facts) == 8
    by_worker = {}
    for f in facts:
        by_worker.setdefault(f["worker"], set()).add((f["socket"], f["postmaster"], f["slot"]))
    assert set(by_worker) == {"gw0", "gw1"} or len(by_worker) == 1  # xdist may give one worker everything
    clusters = [c for cs in by_worker.values() for c in cs]
    assert all(len(cs) == 1 for cs in by_worker.values())  # one cluster per worker
    assert len(set(clusters)) == len(by_worker)  # and not shared
    for _, pm, _ in clusters:
        assert wait_until(lambda: pid_gone(pm), 10)  # each worker stopped its own at exit


def test_fork_child_does_not_touch_the_parents_cluster(managed):
    """A forked child (multiprocessing 'fork') lets go of the parent's guard pipe and sessions."""
    name = managed.acquire_database()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the engine is fresh here; exit without using it
        try:
            ok = not managed.started and managed.cluster is None
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.close(r)
    os.waitpid(pid, 0)
    assert managed.started and not pid_gone(managed.postmaster_pid)
    with __import__("psycopg").connect(managed.dsn(name)) as conn:  # the parent's cluster is intact
        assert conn.execute("SELECT 1").fetchone() == (1,)
    managed.release_database(name)
    assert run_child("print(1)", dict(os.environ)).returncode == 0
