"""COPY both (CopyBothResponse) as a custom two-way channel, driven by libpq (through psycopg's
pq wrapper: psycopg's cursor.copy() refuses COPY_BOTH) and by a minimal raw-socket client."""

import select
import socket
import struct
import threading
import time

import psycopg
import pytest

from fakepm import FakePostgres


@pytest.fixture
def pg():
    with FakePostgres() as server:
        yield server


# ---------------------------------------------------------------------------------- libpq
def recv_copy(pgc, timeout=10.0):
    """Next CopyData from the server (bytes), or None after its CopyDone; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        n, data = pgc.get_copy_data(1)
        if n > 0:
            return bytes(data)
        if n == -1:
            return None
        if n == -2:
            raise psycopg.OperationalError(pgc.error_message.decode())
        left = deadline - time.monotonic()
        assert left > 0, "no CopyData from fakepm in time"
        select.select([pgc.socket], [], [], left)
        pgc.consume_input()


def get_result(pgc, timeout=10.0):
    """PQgetResult without blocking forever: flush, then wait (bounded) until libpq is not busy."""
    deadline = time.monotonic() + timeout
    while pgc.flush() != 0:
        assert time.monotonic() < deadline, "could not send to fakepm in time"
        select.select([], [pgc.socket], [], 0.1)
    while pgc.is_busy():
        left = deadline - time.monotonic()
        assert left > 0, "no result from fakepm in time"
        select.select([pgc.socket], [], [], left)
        pgc.consume_input()
    return pgc.get_result()


def test_handler_channel_both_directions_with_libpq(pg):
    ticker_sent = threading.Event()

    @pg.on("COPY chat FROM STDIN").copy_both
    def chat(channel):
        channel.send(b"hello")  # the server speaks first
        # ... and from another thread, at any time
        threading.Thread(target=lambda: (channel.send(b"tick"), ticker_sent.set()), daemon=True).start()
        for msg in channel:  # until the client's CopyDone
            channel.send(msg.upper())
        channel.send(b"bye")

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        pgc = conn.pgconn
        pgc.send_query(b"COPY chat FROM STDIN")
        res = get_result(pgc)
        assert res.status == psycopg.pq.ExecStatus.COPY_BOTH
        got = [recv_copy(pgc), recv_copy(pgc)]
        assert sorted(got) == [b"hello", b"tick"]
        for word in (b"ping", b"pong"):
            assert pgc.put_copy_data(word) == 1
            pgc.flush()
            assert recv_copy(pgc) == word.upper()
        assert pgc.put_copy_end() == 1
        pgc.flush()
        assert recv_copy(pgc) == b"bye"
        assert recv_copy(pgc) is None  # server CopyDone
        res = get_result(pgc)
        assert (res.status, res.command_status) == (psycopg.pq.ExecStatus.COMMAND_OK, b"COPY 0")
        assert get_result(pgc) is None
        assert conn.execute("SELECT 1").fetchone() == (1,)
    rec = pg.copies[-1]
    assert (rec.direction, rec.rows, rec.error) == ("both", [b"ping", b"pong"], None)


def test_server_may_end_first_and_client_keeps_sending(pg):
    @pg.on("COPY feed FROM STDIN").copy_both
    def feed(channel):
        for i in range(3):
            channel.send(f"event {i}")

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        pgc = conn.pgconn
        pgc.send_query(b"COPY feed FROM STDIN")
        assert get_result(pgc).status == psycopg.pq.ExecStatus.COPY_BOTH
        assert [recv_copy(pgc) for _ in range(4)] == [b"event 0", b"event 1", b"event 2", None]
        pgc.put_copy_data(b"late ack")
        pgc.put_copy_end()
        pgc.flush()
        assert get_result(pgc).status == psycopg.pq.ExecStatus.COMMAND_OK
        assert get_result(pgc) is None
    assert pg.copies[-1].rows == [b"late ack"]


def test_handler_error_ends_the_copy_with_an_error_response(pg):
    @pg.on("COPY boom FROM STDIN").copy_both
    def boom(channel):
        channel.recv()
        raise ValueError("no thanks")

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        pgc = conn.pgconn
        pgc.send_query(b"COPY boom FROM STDIN")
        assert get_result(pgc).status == psycopg.pq.ExecStatus.COPY_BOTH
        pgc.put_copy_data(b"x")
        pgc.flush()
        assert recv_copy(pgc) is None  # libpq ends the COPY when an ErrorResponse arrives
        res = get_result(pgc)
        assert res.status == psycopg.pq.ExecStatus.FATAL_ERROR
        assert b"no thanks" in res.error_message
        while get_result(pgc) is not None:
            pass
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------------- raw socket
def _msg(t: bytes, body: bytes = b"") -> bytes:
    return t + struct.pack("!i", len(body) + 4) + body


class Raw:
    """A minimal frontend: startup, then framed messages; every read is bounded by the socket timeout."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        params = b"user\0postgres\0database\0postgres\0\0"
        self.sock.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
        while self.read()[0] != b"Z":
            pass

    def send(self, *msgs):
        self.sock.sendall(b"".join(msgs))

    def read(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!i", self.buf[1:5])[0]
                if len(self.buf) >= n + 1:
                    t, body, self.buf = self.buf[:1], self.buf[5:n + 1], self.buf[n + 1:]
                    return t, body
            chunk = self.sock.recv(65536)
            assert chunk, "fakepm closed the connection"
            self.buf += chunk

    def close(self):
        self.send(_msg(b"X"))
        self.sock.close()


def test_script_form_request_response_over_a_raw_socket(pg):
    pg.on("START_CHAT").copy_both(script=[
        {"send": "welcome"},
        {"recv": "ping", "send": ["pong", "pong again"]},
        ("status?", "ok"),
    ])
    c = Raw(pg.port)
    try:
        c.send(_msg(b"Q", b"START_CHAT\0"))
        assert c.read() == (b"W", b"\x00\x00\x00")  # CopyBothResponse: text, no columns
        assert c.read() == (b"d", b"welcome")
        c.send(_msg(b"d", b"ping"))
        assert [c.read(), c.read()] == [(b"d", b"pong"), (b"d", b"pong again")]
        c.send(_msg(b"d", b"status?"))
        assert c.read() == (b"d", b"ok")
        assert c.read() == (b"c", b"")  # the script is over: server CopyDone
        c.send(_msg(b"c"))
        assert [c.read(), c.read()] == [(b"C", b"COPY 0\0"), (b"Z", b"I")]
    finally:
        c.close()
    assert pg.copies[-1].rows == [b"ping", b"status?"]


def test_script_mismatch_is_an_error_naming_the_step(pg):
    pg.on("START_CHAT").copy_both(script=[{"recv": "ping", "send": "pong"}])
    c = Raw(pg.port)
    try:
        c.send(_msg(b"Q", b"START_CHAT\0"))
        assert c.read()[0] == b"W"
        c.send(_msg(b"d", b"hello?"))
        t, body = c.read()
        assert t == b"E" and b"COPY both script step 1 expected b'ping', got b'hello?'" in body
        assert c.read() == (b"Z", b"I")
    finally:
        c.close()


def test_copy_both_rejects_ambiguous_definitions(pg):
    with pytest.raises(ValueError, match="exactly one of handler= or script="):
        pg.on("X").copy_both()
    with pytest.raises(ValueError, match="step 1: unknown key"):
        pg.on("X").copy_both(script=[{"reply": "x"}])


def test_yaml_copy_both_script(tmp_path):
    path = tmp_path / "chat.yaml"
    path.write_text("rules:\n  - query: START_CHAT\n    copy:\n      both:\n        - send: welcome\n"
                    "        - recv: ping\n          send: pong\n")
    with FakePostgres(path) as pg:
        c = Raw(pg.port)
        try:
            c.send(_msg(b"Q", b"START_CHAT\0"))
            assert [c.read(), c.read()] == [(b"W", b"\x00\x00\x00"), (b"d", b"welcome")]
            c.send(_msg(b"d", b"ping"), _msg(b"c"))
            assert [c.read(), c.read(), c.read(), c.read()] == [
                (b"d", b"pong"), (b"c", b""), (b"C", b"COPY 0\0"), (b"Z", b"I")]
        finally:
            c.close()


def test_yaml_copy_both_errors_are_located(tmp_path):
    from fakepm.scenario import check_paths

    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - query: START_CHAT\n    copy:\n      both:\n        - reply: welcome\n")
    assert check_paths([str(path)]) == [
        f"{path}:4:7: copy: copy_both script step 1: unknown key(s) ['reply']; use recv/expect and send"]


def test_client_copy_done_mid_script_ends_the_exchange(pg):
    pg.on("START_CHAT").copy_both(script=[{"recv": "ping", "send": "pong"}, {"recv": "more"}])
    c = Raw(pg.port)
    try:
        c.send(_msg(b"Q", b"START_CHAT\0"))
        assert c.read()[0] == b"W"
        c.send(_msg(b"d", b"ping"), _msg(b"c"))
        assert [c.read() for _ in range(4)] == [(b"d", b"pong"), (b"c", b""), (b"C", b"COPY 0\0"), (b"Z", b"I")]
    finally:
        c.close()
    assert pg.copies[-1].rows == [b"ping"]
