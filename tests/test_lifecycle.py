"""Starting and stopping FakePostgres: ready on return, prompt stop, nothing left behind.

"Nothing left behind" is checked with threading.enumerate() and the count of /proc/self/fd
entries, after a warm-up cycle so lazily opened files (ssl, locale data) do not count.
"""

import os
import socket
import threading

import psycopg
import pytest

from fakepm import FakePostgres

HAS_PROC_FD = os.path.isdir("/proc/self/fd")


def fds() -> int:
    return len(os.listdir("/proc/self/fd")) if HAS_PROC_FD else 0


_BEFORE: set = set()  # fakepm threads of servers other tests keep running (session fixtures)


def fakepm_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("fakepm") and t not in _BEFORE]


def wait_until(predicate, timeout=5.0) -> bool:
    """Poll predicate (bounded); True once it holds."""
    done = threading.Event()
    deadline = 0.0
    step = 0.01
    while deadline < timeout:
        if predicate():
            return True
        done.wait(step)
        deadline += step
    return predicate()


def stop_bounded(pg, timeout=5.0) -> None:
    """pg.stop() on a helper thread; fail if it does not return within timeout."""
    t = threading.Thread(target=pg.stop, name="test-stopper")
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"stop() did not return within {timeout}s"


@pytest.fixture
def baseline():
    """Warm up once (imports, TLS, sockets), then record threads and fds."""
    _BEFORE.clear()
    _BEFORE.update(t for t in threading.enumerate() if t.name.startswith("fakepm"))
    with FakePostgres(tls=True, unix_socket_dir=True) as pg:
        with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    assert wait_until(lambda: not fakepm_threads())
    return fds()


def assert_clean(before_fds: int) -> None:
    assert wait_until(lambda: not fakepm_threads()), f"threads left: {fakepm_threads()}"
    if HAS_PROC_FD:
        assert wait_until(lambda: fds() <= before_fds), f"fds: {fds()} now, {before_fds} before"


def test_start_stop_idle(baseline):
    for _ in range(5):
        pg = FakePostgres().start()
        assert pg.running
        stop_bounded(pg)
        assert not pg.running
    assert_clean(baseline)


def test_connect_right_after_start(baseline):
    """start() is synchronous: the listener accepts as soon as it returns."""
    for _ in range(10):
        with FakePostgres() as pg:
            with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    assert_clean(baseline)


def test_stop_with_open_client_connections(baseline):
    pg = FakePostgres().start()
    conns = [psycopg.connect(pg.dsn, connect_timeout=5) for _ in range(3)]
    try:
        idle_in_tx = conns[1]
        idle_in_tx.execute("SELECT 1")  # leaves the connection in a transaction ('T')
        assert len(pg.connections) == 3
        stop_bounded(pg)
        for c in conns:
            with pytest.raises(psycopg.OperationalError):
                c.execute("SELECT 1")
    finally:
        for c in conns:
            c.close()
    assert_clean(baseline)


def test_stop_with_a_handler_blocked_on_an_event(baseline):
    release = threading.Event()
    entered = threading.Event()
    pg = FakePostgres().start()

    @pg.handler("SELECT slow()", columns={"slow": "int4"})
    def slow(query):
        entered.set()
        release.wait(10)
        return [[1]]

    errors = []

    def client():
        try:
            with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
                conn.execute("SELECT slow()")
        except psycopg.Error as e:
            errors.append(e)

    t = threading.Thread(target=client, name="test-client")
    t.start()
    try:
        assert entered.wait(5), "the handler never ran"
        stop_bounded(pg)  # the handler is still blocked: stop must not wait for it
        t.join(5)
        assert not t.is_alive()
        assert errors and isinstance(errors[0], psycopg.OperationalError)
    finally:
        release.set()
        t.join(5)
    assert_clean(baseline)  # the worker thread ends once its handler returns


def test_tls_start_stop_cleans_certificates(baseline):
    pg = FakePostgres(tls=True).start()
    ca = pg.ca_file
    assert os.path.exists(ca)
    with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
        assert conn.pgconn.ssl_in_use
        stop_bounded(pg)
    assert not os.path.exists(ca)
    assert pg.ca_file is None
    assert_clean(baseline)


def test_unix_socket_start_stop(baseline):
    pg = FakePostgres(unix_socket_dir=True).start()
    directory = pg.unix_socket_dir
    path = os.path.join(directory, f".s.PGSQL.{pg.port}")
    with psycopg.connect(host=directory, port=pg.port, user="postgres", dbname="postgres",
                         connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        stop_bounded(pg)
    assert not os.path.exists(path)
    assert not os.path.exists(directory)  # a temporary directory fakepm made is removed
    assert_clean(baseline)


def test_unix_socket_in_a_given_directory_leaves_the_directory(tmp_path, baseline):
    with FakePostgres(unix_socket_dir=str(tmp_path)) as pg:
        assert os.path.exists(tmp_path / f".s.PGSQL.{pg.port}")
    assert tmp_path.is_dir()
    assert list(tmp_path.iterdir()) == []
    assert_clean(baseline)


def test_port_is_free_again_after_stop(baseline):
    with FakePostgres() as pg:
        port = pg.port
    with FakePostgres(port=port) as again:
        assert again.port == port
        with psycopg.connect(again.dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    with socket.socket() as s:  # and nothing listens there any more
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert_clean(baseline)


def test_stop_is_idempotent_and_dsn_needs_a_started_server():
    pg = FakePostgres()
    with pytest.raises(RuntimeError, match="not started"):
        pg.dsn
    pg.start()
    pg.start()  # a second start is a no-op
    stop_bounded(pg)
    stop_bounded(pg)
    with pytest.raises(RuntimeError, match="not started"):
        pg.dsn


def test_restart_after_stop(baseline):
    pg = FakePostgres()
    pg.on("SELECT answer").reply(columns={"answer": "int4"}, rows=[[42]])
    for _ in range(2):
        pg.start()
        with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT answer").fetchone() == (42,)
        stop_bounded(pg)
    assert [q.sql for q in pg.queries if q.sql == "SELECT answer"] == ["SELECT answer"] * 2  # journal kept
    assert_clean(baseline)


def read_to_eof(sock, limit=1 << 16) -> bytes:
    """Everything the server still sends before it closes (bounded by the socket timeout)."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_stop_with_raw_half_open_connections(baseline):
    """Sockets that sent nothing, half a startup packet, or an SSLRequest and then half a TLS
    handshake: stop() closes them all."""
    from fakepm.protocol import messages as m

    pg = FakePostgres(tls=True).start()
    socks = []
    try:
        for payload in (b"", m.StartupMessage(m.PROTOCOL_3_0, {"user": "x"}).encode()[:7], m.SSLRequest().encode()):
            s = socket.create_connection((pg.host, pg.port), timeout=5)
            s.sendall(payload)
            socks.append(s)
        assert socks[-1].recv(1) == b"S"
        socks[-1].sendall(b"\x16\x03\x01\x00")  # the start of a ClientHello, never finished
        stop_bounded(pg)
        for s in socks:
            read_to_eof(s)  # returns: the server closed every one of them
    finally:
        for s in socks:
            s.close()
    assert_clean(baseline)


def test_plaintext_right_after_ssl_request_is_refused_like_postgresql():
    from fakepm.protocol import messages as m

    with FakePostgres(tls=True) as pg:
        with socket.create_connection((pg.host, pg.port), timeout=5) as s:
            s.sendall(m.SSLRequest().encode() + m.StartupMessage(m.PROTOCOL_3_0, {"user": "x"}).encode())
            data = read_to_eof(s)
    assert data[:1] == b"S" or data[:1] == b"E"
    assert b"received unencrypted data after SSL request" in data
