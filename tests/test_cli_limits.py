"""`fakepm serve --max-message-size / --authentication-timeout / --copy-keep-bytes`: the limits a
served fake keeps, on the command line (they win over the scenario's `server:` section)."""

import socket
import subprocess
import time

import psycopg
import pytest

from test_cli import FAKEPM, kill, read_line, serve


def test_serve_limits_from_the_command_line(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("server:\n  max_message_size: 1GB\n  authentication_timeout: 1min\n"
                        "rules:\n  - query: SELECT 1\n    columns: {x: int4}\n    rows: [[1]]\n")
    proc = serve(str(scenario), "--max-message-size", "512kB", "--authentication-timeout", "0.3",
                 "--copy-keep-bytes", "1MB")
    try:
        dsn = read_line(proc)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            with pytest.raises(psycopg.OperationalError, match="invalid message length"):
                conn.execute("SELECT 1 /*" + "x" * 600_000 + "*/")
        port = int(dsn.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as silent:
            silent.settimeout(5)
            t0 = time.monotonic()
            assert silent.recv(10) == b""
            assert time.monotonic() - t0 < 3
    finally:
        kill(proc)


@pytest.mark.parametrize("args, message", [
    (["--max-message-size", "2GB"], "PostgreSQL's own 1 GiB limit"),
    (["--max-message-size", "lots"], "expected a size"),
    (["--authentication-timeout", "-1"], "expected seconds"),
])
def test_serve_refuses_bad_limits(args, message):
    out = subprocess.run([*FAKEPM, "serve", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and message in out.stderr


@pytest.mark.fakepm(max_message_size=4096, authentication_timeout=2.5, copy_keep_bytes=1024)
def test_the_pytest_marker_takes_the_limits(fakepm):
    assert (fakepm.config.max_message_size, fakepm.config.authentication_timeout,
            fakepm.config.copy_keep_bytes) == (4096, 2.5, 1024)
    with psycopg.connect(fakepm.dsn) as conn:
        with pytest.raises(psycopg.OperationalError, match="invalid message length"):
            conn.execute("SELECT 1 /*" + "x" * 5000 + "*/")
