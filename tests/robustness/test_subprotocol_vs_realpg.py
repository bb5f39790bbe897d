"""Malformed messages inside sub-protocols: fakepm answers what PostgreSQL 15 and 18 answer
(each oracle in turn, fakepm announcing its version).

The same raw bytes go to a real PostgreSQL and to fakepm; the answers (severity, SQLSTATE,
message of each ErrorResponse, CommandComplete tags, ReadyForQuery, or the connection closing)
must be the same. test_subprotocol_malformed.py pins these answers for runs without PostgreSQL.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from fakepm import FakePostgres
from fakepm.fuzz import error_fields

pytestmark = pytest.mark.realpg

_I32 = struct.Struct("!i")


def frame(t: bytes, body: bytes = b"") -> bytes:
    return t + _I32.pack(len(body) + 4) + body


def query(sql: str) -> bytes:
    return frame(b"Q", sql.encode() + b"\0")


def _startup(**params) -> bytes:
    params = {"user": "postgres", "database": "postgres", **params}
    body = _I32.pack(196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return _I32.pack(len(body) + 4) + body


class Conn:
    def __init__(self, port: int, **params):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.sock.sendall(_startup(**params))
        self.until({b"Z"})

    def until(self, stop: set, timeout: float = 3.0) -> list[str]:
        """Answers until a message of a type in `stop`, the end of the connection, or the timeout."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buf) >= 5:
                t, n = self.buf[:1], _I32.unpack_from(self.buf, 1)[0]
                if len(self.buf) < 1 + n:
                    break
                body, self.buf = self.buf[5:1 + n], self.buf[1 + n:]
                if t == b"E":
                    f = error_fields(body)
                    out.append(f"{f['S']} {f['C']} {f['M']}")
                elif t == b"Z":
                    out.append("Z" + body.decode())
                elif t == b"C":
                    out.append("C " + body[:-1].decode())
                elif t in (b"G", b"W"):
                    out.append(t.decode())
                if t in stop:
                    return out
            left = deadline - time.monotonic()
            if left <= 0:
                return out + ["(no answer)"]
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return out + ["(closed)"]
            self.buf += chunk

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def real(oracle_pg):
    return oracle_pg.port


@pytest.fixture(scope="module")
def fake(oracle_pg):
    with FakePostgres(version=oracle_pg.server_version) as pg:
        pg.on(regex=r"(?i)^create temp table").reply(tag="CREATE TABLE")
        pg.table("t", {"a": "int4", "b": "text"})
        yield pg.port


_ROW = frame(b"d", b"1\tx\n")
COPY_IN_CASES = {
    "CopyFail without its terminator": [_ROW, frame(b"f", b"oops")],
    "CopyFail with bytes after the terminator": [_ROW, frame(b"f", b"oops\0extra")],
    "CopyFail with invalid UTF-8": [frame(b"f", b"\xff\xfe\0")],
    "CopyFail with an empty body": [frame(b"f")],
    "CopyDone with a body": [_ROW, frame(b"c", b"zz")],
    "Sync and Flush with bodies": [_ROW, frame(b"S", b"zz"), frame(b"H", b"z"), frame(b"c")],
    "Query during COPY": [_ROW, query("SELECT 2")],
    "an unknown message type during COPY": [_ROW, frame(b"z")],
    "Parse during COPY": [frame(b"P", b"\0SELECT 1\0\0\0")],
    "a CopyData length below 4": [b"d" + _I32.pack(2)],
}


@pytest.mark.parametrize("case", list(COPY_IN_CASES))
def test_copy_in(case, real, fake):
    answers = []
    for port in (real, fake):
        c = Conn(port)
        try:
            c.sock.sendall(query("CREATE TEMP TABLE t (a int, b text)"))
            c.until({b"Z"})
            c.sock.sendall(query("COPY t FROM STDIN"))
            assert c.until({b"G"}) == ["G"]
            c.sock.sendall(b"".join(COPY_IN_CASES[case]))
            answers.append(c.until({b"Z"}))
        finally:
            c.close()
    assert answers[1] == answers[0], f"fakepm {answers[1]} PostgreSQL {answers[0]}"


MAIN_CASES = {
    "FunctionCall with an empty body": frame(b"F"),
    "FunctionCall cut after the OID": frame(b"F", _I32.pack(1598)),
    "FunctionCall with bytes after it": frame(b"F", struct.pack("!ihhh", 89, 0, 0, 0) + b"xx"),
    "Query without its terminator": frame(b"Q", b"SELECT 1"),
    "Query with bytes after the terminator": frame(b"Q", b"SELECT 1\0xx"),
    "Query with invalid UTF-8": frame(b"Q", b"SELECT '\xff'\0"),
    "Parse cut short": frame(b"P", b"\0SELECT 1\0") + frame(b"S"),
    "Parse with bytes after it": frame(b"P", b"\0SELECT 1\0\0\0zz") + frame(b"S"),
    "Describe of an unknown kind": frame(b"D", b"Z\0") + frame(b"S"),
    "Execute cut short": frame(b"E", b"\0") + frame(b"S"),
    "Close without its terminator": frame(b"C", b"S") + frame(b"S"),
    "Sync with a body": frame(b"S", b"x"),
    "Flush with a body": frame(b"H", b"x") + frame(b"S"),
}


@pytest.mark.parametrize("case", list(MAIN_CASES))
def test_function_call_and_main_loop(case, real, fake):
    answers = []
    for port in (real, fake):
        c = Conn(port)
        try:
            c.sock.sendall(MAIN_CASES[case])
            got = c.until({b"Z"})
            c.sock.sendall(query("SELECT 1"))
            answers.append(got + c.until({b"Z"}))
        finally:
            c.close()
    assert answers[1] == answers[0], f"fakepm {answers[1]} PostgreSQL {answers[0]}"


# ---------------------------------------------------------------------------------- replication
@pytest.fixture(scope="module")
def real_logical(oracle_pg):
    """The oracle (logical decoding on, see tests/conftest.py), with a publication of its own."""
    oracle_pg.psql("DROP PUBLICATION IF EXISTS p")
    oracle_pg.psql("CREATE PUBLICATION p FOR ALL TABLES")
    yield oracle_pg.port
    oracle_pg.psql("DROP PUBLICATION IF EXISTS p")


_STATUS = b"r" + struct.pack("!qqqqB", 1, 1, 1, 0, 0)
REPLICATION_CASES = {
    "a standby status update cut short": frame(b"d", _STATUS[:11]),
    "a hot standby feedback cut short": frame(b"d", b"h" + bytes(5)),
    "an empty CopyData": frame(b"d"),
    "an unknown standby message": frame(b"d", b"z123"),
    "CopyFail": frame(b"f", b"boom\0"),
    "Query during the stream": query("SELECT 1"),
    "an unknown message type": frame(b"z"),
    "a CopyData length below 4": b"d" + _I32.pack(2),
}


@pytest.mark.parametrize("case", list(REPLICATION_CASES))
def test_replication_stream(case, real_logical, fake):
    answers = []
    for n, port in enumerate((real_logical, fake)):
        c = Conn(port, replication="database")
        slot = f"mal_{n}_{abs(hash(case)) % 10**6}"
        try:
            c.sock.sendall(query(f"CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput"))
            c.until({b"Z"}, 10)
            c.sock.sendall(query(f"START_REPLICATION SLOT {slot} LOGICAL 0/0 "
                                 "(proto_version '1', publication_names 'p')"))
            assert c.until({b"W", b"E"}, 10) == ["W"]
            c.sock.sendall(REPLICATION_CASES[case])
            answers.append(c.until({b"Z"}, 3))
        finally:
            c.close()
    assert answers[1] == answers[0], f"fakepm {answers[1]} PostgreSQL {answers[0]}"
