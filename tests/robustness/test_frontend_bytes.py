"""Arbitrary frontend bytes never break fakepm: the offender gets a clear error and is closed,
no internal error is ever journaled, and other connections go on.

Thousands of cases run against a Session in-process (fast); a smaller number over real sockets.
"""

import socket
import struct
import time

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.fuzz import backend_messages, check_session_bytes, error_fields
from fakepm.strategies import frontend_bytes

_PG = FakePostgres()  # never started: only used to build sessions in-process
_backend_messages = backend_messages
_fields = error_fields


def _check_session(data: bytes, splits: list) -> None:
    check_session_bytes(_PG, data, splits)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frontend_bytes(), splits=st.lists(st.integers(0, 200), max_size=4))
def test_session_survives_arbitrary_frontend_bytes(data, splits):
    _check_session(data, splits)


def test_startup_problems_are_fatal_08p01_naming_the_problem():
    for raw, expect in [
        (struct.pack("!i", 0x7FFFFFFF), "invalid length of startup packet"),
        (struct.pack("!ii", 8, 4 << 16), "unsupported frontend protocol"),
    ]:
        _PG.journal.clear()
        s = _PG._make_session(("127.0.0.1", 5432), False)
        s.receive(raw, 0.0)
        (t, body), = _backend_messages(s.data_to_send())
        f = _fields(body)
        assert t == b"E" and f["S"] == "FATAL" and expect in f["M"], f
        assert s.closed
    # protocol < 3: PostgreSQL's pre-3.0 error format (no length, no fields), as PostgreSQL sends it
    s = _PG._make_session(("127.0.0.1", 5432), False)
    s.receive(struct.pack("!ii", 8, 1234), 0.0)
    assert s.data_to_send() == b"EFATAL:  unsupported frontend protocol 0.1234: server supports 3.0 to 3.0\n\0"
    assert s.closed


def _startup(user="fuzz") -> bytes:
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0\0"
    return struct.pack("!i", len(body) + 4) + body


def _recv_all(sock: socket.socket, timeout: float = 3.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not c:
            break
        chunks.append(c)
    return b"".join(chunks)


def test_message_size_limit_over_a_socket():
    with FakePostgres(max_message_size=1000) as pg:
        with socket.create_connection(("127.0.0.1", pg.port), timeout=3) as sock:
            sock.sendall(_startup())
            sock.sendall(b"Q" + struct.pack("!i", 5000) + b"x" * 100)
            data = _recv_all(sock)
        t, body = _backend_messages(data)[-1]
        f = _fields(body)
        assert t == b"E" and f["S"] == "FATAL" and f["C"] == "08P01"
        assert "invalid message length 5000 in Query message" in f["M"]
        with psycopg.connect(pg.dsn) as conn:  # the server goes on
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_startup_packet_size_limit_over_a_socket():
    with FakePostgres() as pg:
        with socket.create_connection(("127.0.0.1", pg.port), timeout=3) as sock:
            sock.sendall(struct.pack("!i", 20000) + b"\0" * 100)
            data = _recv_all(sock)
        t, body = _backend_messages(data)[-1]
        f = _fields(body)
        assert (f["S"], f["C"], f["M"]) == ("FATAL", "08P01", "invalid length of startup packet: 20000")


def test_too_many_clients_53300():
    import pytest

    with FakePostgres(max_connections=2) as pg:
        a, b = psycopg.connect(pg.dsn), psycopg.connect(pg.dsn)
        try:
            with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
                psycopg.connect(pg.dsn, connect_timeout=3)
        finally:
            a.close()
            b.close()
        with psycopg.connect(pg.dsn) as c:  # room again
            assert c.execute("SELECT 1").fetchone() == (1,)


def test_a_client_that_stops_reading_does_not_block_others():
    with FakePostgres() as pg:
        pg.on("SELECT big").reply(columns={"b": "text"}, rows=[["x" * 1000]] * 20000)
        with socket.create_connection(("127.0.0.1", pg.port), timeout=3) as lazy:
            lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            lazy.sendall(_startup("postgres"))
            time.sleep(0.05)
            for _ in range(20):  # ~400 MB of answers nobody reads
                lazy.sendall(b"Q" + struct.pack("!i", 4 + 11) + b"SELECT big\0")
            time.sleep(0.2)
            with psycopg.connect(pg.dsn, connect_timeout=3) as conn:
                for _ in range(20):
                    assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not [e for e in pg.events if e["kind"] == "internal_error"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=frontend_bytes())
def test_arbitrary_bytes_over_real_sockets(data):
    pg = _socket_server()
    with socket.create_connection(("127.0.0.1", pg.port), timeout=2) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        _recv_all(sock, timeout=1.0)
    assert not [e for e in pg.events if e["kind"] == "internal_error"]
    assert not pg._loop.errors
    # a well-behaved client still gets served
    with psycopg.connect(pg.dsn, connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


_SERVER = []


def _socket_server() -> FakePostgres:
    if not _SERVER:
        _SERVER.append(FakePostgres().start())
    return _SERVER[0]


def teardown_module(module):
    for pg in _SERVER:
        pg.stop()
    _SERVER.clear()
