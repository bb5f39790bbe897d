"""`fakepm serve`: prints the DSN on one line once ready, serves the built-in demo to psql,
and stops with exit status 0 on SIGTERM and SIGINT. Every wait is bounded; the process is
killed by PID in a finally."""

import os
import selectors
import shutil
import signal
import subprocess
import sys

import psycopg
import pytest

from fakepm.cli import build_parser
from realpg import missing, need_program

FAKEPM = [sys.executable, "-m", "fakepm.cli"]


def serve(*args):
    return subprocess.Popen([*FAKEPM, "serve", "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_line(proc, timeout=20.0) -> str:
    """The first stdout line, or fail after timeout (the process may print nothing if it is broken)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            pytest.fail(f"fakepm serve printed nothing within {timeout}s")
        return proc.stdout.readline().strip()
    finally:
        sel.close()


def kill(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_demo_then_signal_stops_with_status_0(sig):
    proc = serve()
    try:
        dsn = read_line(proc)
        assert dsn.startswith("postgresql://postgres@127.0.0.1:")
        # ready when printed: connect at once
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            rows = conn.execute("SELECT id, name, price FROM products ORDER BY id").fetchall()
        assert [r[:2] for r in rows] == [(1, "Widget"), (2, "Gadget"), (3, "Doohickey")]
        assert str(rows[0][2]) == "9.99"
        os.kill(proc.pid, sig)
        assert proc.wait(10) == 0
    finally:
        kill(proc)


def test_psql_queries_the_demo():
    need_program("psql", "Debian: postgresql-client")
    proc = serve()
    try:
        dsn = read_line(proc)
        r = subprocess.run(["psql", "-X", "-At", dsn, "-c", "SELECT id, name, price FROM products ORDER BY id"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["1|Widget|9.99", "2|Gadget|24.50", "3|Doohickey|3.75"]
        r = subprocess.run(["psql", "-X", "-At", dsn, "-c", "SELECT id, name, price FROM products WHERE id = 1"],
                           capture_output=True, text=True, timeout=20)
        assert r.stdout.strip() == "1|Widget|9.99"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        kill(proc)


def test_serve_with_open_connection_still_stops():
    proc = serve()
    try:
        dsn = read_line(proc)
        conn = psycopg.connect(dsn, connect_timeout=5)
        try:
            conn.execute("SELECT 1")  # idle in transaction when the signal comes
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            conn.close()
    finally:
        kill(proc)


def test_serve_tls_and_unix_socket(tmp_path):
    proc = serve("--tls", "--unix-socket-dir", str(tmp_path))
    try:
        dsn = read_line(proc)
        assert "sslmode=require" in dsn
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            assert conn.pgconn.ssl_in_use
        port = dsn.split("@127.0.0.1:")[1].split("/")[0]
        with psycopg.connect(host=str(tmp_path), port=port, user="postgres", dbname="postgres",
                             connect_timeout=5, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not (tmp_path / f".s.PGSQL.{port}").exists()
    finally:
        kill(proc)


def test_serve_port_in_use_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run([*FAKEPM, "serve", "--port", str(port)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert r.stderr.startswith("fakepm: ")
    assert "in use" in r.stderr


def test_parser_defaults_and_help():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.tls, args.scenario) == ("127.0.0.1", 0, False, None)
    r = subprocess.run([*FAKEPM, "--help"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0
    assert "serve" in r.stdout and "check" in r.stdout


def test_console_script_is_installed():
    exe = shutil.which("fakepm", path=os.path.dirname(sys.executable))
    if exe is None:
        missing("the fakepm console script is not installed next to this Python (pip install -e .)")
    r = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0
    assert "--port" in r.stdout


def test_every_option_of_every_command_has_help_text():
    import argparse

    from fakepm.cli import build_parser

    missing = []

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, path + [name])
            elif not a.help and a.dest != "help":
                missing.append(" ".join(path + [a.option_strings[0] if a.option_strings else a.dest]))

    walk(build_parser(), ["fakepm"])
    assert missing == []


def test_version_and_check_counts_the_files_it_read(tmp_path, capsys):
    from fakepm import __version__
    from fakepm.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"fakepm {__version__}"
    (tmp_path / "a.yaml").write_text("include: [common.yml]\nrules: []\n")
    (tmp_path / "common.yml").write_text("rules: []\n")
    (tmp_path / "b.yaml").write_text("rules:\n  - query: SELECT 1\n    error: {code: '4250X', message: nope}\n")
    assert main(["check", str(tmp_path / "a.yaml")]) == 0
    assert capsys.readouterr().err.strip() == "ok: 2 files checked"  # a.yaml and the file it includes
    assert main(["check", str(tmp_path)]) == 1
    cap = capsys.readouterr()
    assert 'unknown SQLSTATE "4250X"' in cap.out and 'did you mean "42501"' in cap.out
    assert cap.err.strip() == "1 problem in 3 files checked"
