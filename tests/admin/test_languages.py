"""The control API from Go (pgx), Node (node-postgres) and Java (pgjdbc), all against one
`fakepm serve --admin` process: each program resets the server, adds a rule and a fault over
HTTP, runs its driver (a parameterized SELECT, a COMMIT the fault fails with 40001), verifies
and reads the journal. A missing toolchain skips its test with the reason (fails under CI=true: .ci/run installs
golang-go + golang-github-jackc-pgx-v4-dev, nodejs + npm's pg, default-jdk-headless + pgjdbc)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from realpg import missing, need_program

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "..", "clients", "node")
JAR = os.environ.get("FAKEPM_JDBC_JAR", "/usr/share/java/postgresql.jar")
GOPATH_SYSTEM = "/usr/share/gocode"
PGX = os.path.join(GOPATH_SYSTEM, "src", "github.com", "jackc", "pgx", "v4")


@pytest.fixture(scope="module")
def served():
    """One `fakepm serve --admin :0` for every language: (its DSN, its admin URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", "serve", "--admin", ":0", "-q"],
                            stdout=subprocess.PIPE, text=True)
    try:
        dsn = proc.stdout.readline().strip()
        admin = proc.stdout.readline().strip()
        assert dsn.startswith("postgresql://") and admin.startswith("http://"), (dsn, admin)
        yield dsn, admin
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


EXPECTED = ["rule 201", "fault 201", "row ada", "commit 40001", "verify 200 true"]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def test_go_pgx(served, tmp_path):
    need_program("go", ".ci/run installs golang-go")
    if not os.path.isdir(PGX):
        missing(f"{PGX} is absent (.ci/run installs golang-github-jackc-pgx-v4-dev)")
    dsn, admin = served
    pkg = tmp_path / "src" / "fakepmgo"
    pkg.mkdir(parents=True)
    shutil.copy(os.path.join(HERE, "go", "main.go"), pkg / "main.go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{tmp_path}{os.pathsep}{GOPATH_SYSTEM}",
           "GOCACHE": os.environ.get("FAKEPM_GOCACHE", str(tmp_path / "cache")), "GOFLAGS": "", "CGO_ENABLED": "0"}
    run(["go", "build", "-o", str(tmp_path / "fakepmgo"), "."], cwd=pkg, env=env)
    out = run([str(tmp_path / "fakepmgo"), dsn, admin])
    assert out[:5] == EXPECTED
    assert out[5] == "journal [7] rule admin API"


def test_node_postgres(served):
    need_program("node", ".ci/run installs nodejs")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")):
        missing("node_modules/pg is absent: run `npm install` in tests/clients/node (.ci/run does)")
    dsn, admin = served
    out = run(["node", "admin.js", dsn, admin], cwd=NODE_DIR)
    assert out[:5] == EXPECTED
    assert out[5] == "journal [7] rule admin API"


def test_java_pgjdbc(served, tmp_path):
    need_program("javac", ".ci/run installs default-jdk-headless")
    need_program("java", ".ci/run installs default-jdk-headless")
    if not os.path.exists(JAR):
        missing(f"{JAR} is absent (.ci/run installs libpostgresql-jdbc-java)")
    dsn, admin = served
    run(["javac", "-cp", JAR, "-d", str(tmp_path), os.path.join(HERE, "java", "FakepmAdmin.java")])
    port = dsn.rsplit(":", 1)[1].split("/", 1)[0]
    url = f"jdbc:postgresql://127.0.0.1:{port}/postgres?user=postgres&sslmode=disable"
    out = run(["java", "-cp", f"{tmp_path}{os.pathsep}{JAR}", "FakepmAdmin", url, admin])
    assert out[:5] == EXPECTED
    assert out[5] == "journal true true"
