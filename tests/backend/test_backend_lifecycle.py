"""Backend mode's engine and the test process's life: a test process killed with SIGKILL leaves no
postmaster behind; pytest-xdist with two workers runs backend-mode tests without a clash (each
worker its own cluster). Both run other Python processes, as a user's test run would."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from backend_helpers import run, wait_until

CHILD = textwrap.dedent("""
    import json, sys, time
    import psycopg
    from fakepm import FakePostgres

    pg = FakePostgres(backend="postgres").start()
    c = psycopg.connect(pg.dsn)
    c.execute("CREATE TABLE t (x int)")
    c.execute("INSERT INTO t VALUES (1)")  # and its transaction left open: a busy backend
    eng = pg.backend.engine
    print(json.dumps({"postmaster": eng.postmaster_pid, "guard": eng.cluster.guard.pid,
                      "datadir": eng.cluster.datadir, "backend": c.execute("SELECT pg_backend_pid()").fetchone()[0]}),
          flush=True)
    time.sleep(300)
""")


def _gone(pid: int) -> bool:
    """No such process, or a zombie (dead; its reaper has not looked yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _processes_of(datadir: str) -> list[int]:
    """Live processes whose command line names `datadir` (the postmaster: postgres -D datadir)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or _gone(int(d)):
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if datadir.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def test_sigkill_of_the_test_process_leaves_no_postmaster():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        line = _readline(proc, 90)
        assert line, f"the child did not start its engine: {proc.poll()} {proc.stderr.read() if proc.poll() else ''}"
        facts = json.loads(line)
        pids = [facts["postmaster"], facts["guard"], facts["backend"]]
        assert not any(_gone(p) for p in pids)
        assert facts["postmaster"] in _processes_of(facts["datadir"])
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone = wait_until(lambda: all(_gone(p) for p in pids), timeout=30, step=0.05)
        took = time.monotonic() - t0
        assert gone, f"still running 30 s after SIGKILL: {[p for p in pids if not _gone(p)]}"
        assert took < 15, f"the postmaster outlived its test process by {took:.1f} s"
        assert _processes_of(facts["datadir"]) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


XDIST_TESTS = textwrap.dedent('''
    import os
    import psycopg
    import pytest
    from fakepm import FakePostgres

    OUT = os.environ["FAKEPM_XDIST_OUT"]


    def work(pg, n):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.execute("CREATE TABLE same_name_everywhere (worker text, n int)")
            c.execute("INSERT INTO same_name_everywhere VALUES (%s, %s)", (worker, n))
            assert c.execute("SELECT count(*) FROM same_name_everywhere").fetchone()[0] == 1
            # cluster-wide names: two workers on one cluster would collide here
            c.execute("CREATE DATABASE same_db_everywhere")
            c.execute("CREATE ROLE same_role_everywhere")
            c.execute("DROP ROLE same_role_everywhere")
            c.execute("DROP DATABASE same_db_everywhere")
        with open(os.path.join(OUT, f"{worker}-{n}"), "w") as f:
            f.write(f"{pg.backend.engine.postmaster_pid} {pg.backend.engine.socket_dir}")


    @pytest.mark.parametrize("n", range(4))
    def test_direct(n):
        with FakePostgres(backend="postgres") as pg:
            work(pg, n)


    @pytest.mark.parametrize("n", range(4, 8))
    @pytest.mark.fakepm(backend="postgres")
    def test_marker(fakepm, n):
        work(fakepm, n)
''')


def test_xdist_two_workers_do_not_clash(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_two_workers.py").write_text(XDIST_TESTS)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, FAKEPM_XDIST_OUT=str(out))
    r = run([sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider", "-p", "xdist",
             "test_two_workers.py"], cwd=tmp_path, env=env, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "8 passed" in r.stdout
    seen: dict[str, set] = {}
    for f in out.iterdir():
        seen.setdefault(f.name.split("-")[0], set()).add(f.read_text())
    assert sorted(seen) == ["gw0", "gw1"], seen  # both workers ran tests
    assert all(len(v) == 1 for v in seen.values()), seen  # one engine per worker, reused by its tests
    assert seen["gw0"] != seen["gw1"], seen  # and not the same one
    # and both workers' clusters stopped with them
    for (pid_socket,) in seen.values():
        pid = int(pid_socket.split()[0])
        assert wait_until(lambda pid=pid: _gone(pid), timeout=15), f"postmaster {pid} outlived its xdist worker"
