"""Protocol 3.2 (PostgreSQL 18) next to the real servers, message by message.

* The kept captures (tests/data/pg18_protocol32.jsonl, pg15_protocol32.jsonl; made by
  tests/data/capture_protocol32.py): libpq 18 asking for 3.2, `SELECT pg_sleep(5)`, a cancel on a
  new connection. Their client bytes are replayed against fakepm announcing the captured version
  (the CancelRequest carrying fakepm's own pid and key), and fakepm's answers must be the captured
  ones: types in order, every byte equal except the pid, the key's bytes (its length must be equal)
  and the error's file/line/routine fields.
* Live, against each real server (`oracle_pg`: PostgreSQL 15 and 18) and fakepm announcing its
  version: raw startup packets for 3.0, 3.1, 3.2, 3.3, 3.99, `_pq_.` options, 2.0 and 4.0; cancel
  keys of the right and of wrong lengths; psycopg 3 (libpq 18) with `max_protocol_version=3.2` and
  `latest`: what libpq says was negotiated, and a cancel that works.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.protocol import messages as m

DATA = Path(__file__).parents[1] / "data"


# ------------------------------------------------------------------------------ wire helpers

def recv_messages(sock: socket.socket, until=lambda msgs: False, timeout: float = 5.0) -> tuple[list, bool]:
    """Read backend messages (raw bytes each) until `until(msgs)` or EOF; (messages, eof)."""
    sock.settimeout(timeout)
    buf, msgs, eof = b"", [], False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            eof = True
            break
        buf += chunk
        while True:
            if buf[:1] == b"E" and buf[1:6] == b"FATAL":  # the pre-3.0 error format
                msgs.append(buf)
                buf = b""
                break
            if len(buf) < 5:
                break
            (n,) = struct.unpack_from("!i", buf, 1)
            if len(buf) < 1 + n:
                break
            msgs.append(buf[:1 + n])
            buf = buf[1 + n:]
        if until(msgs):
            break
    return msgs, eof


def ready(msgs) -> bool:
    return bool(msgs) and msgs[-1][:1] in (b"Z", b"E")


def canonical(msg: bytes, version_of: str | None = None):
    """A message as compared: BackendKeyData -> key length; errors -> S/V/C/M; the rest byte for byte."""
    t, body = msg[:1], msg[5:]
    if t == b"K":
        return ("K", len(body) - 4)
    if t == b"E" and not msg.startswith(b"EFATAL"):
        fields = {p[:1]: p[1:] for p in body.split(b"\0") if p}
        return ("E", tuple((k, fields.get(k)) for k in (b"S", b"V", b"C", b"M")))
    if t == b"S" and version_of is not None:
        name, value = body.split(b"\0")[:2]
        if name == b"server_version":
            return ("S", name, version_of)
        if name == b"TimeZone":
            return ("S", name, "a zone")  # the oracle's zone comes from its environment, fakepm's is UTC
    return msg


def key_of(msgs) -> tuple[int, bytes]:
    body = next(x for x in msgs if x[:1] == b"K")[5:]
    return struct.unpack_from("!i", body)[0], body[4:]


def startup_packet(minor_or_code: int, params: dict) -> bytes:
    return m.StartupMessage(minor_or_code, params).encode()


# ------------------------------------------------------------------------------ the kept captures

def load_capture(name: str):
    lines = [json.loads(x) for x in (DATA / name).read_text().splitlines()]
    header, rest = lines[0], lines[1:]
    return header, rest


@pytest.mark.parametrize("name", ["pg18_protocol32.jsonl", "pg15_protocol32.jsonl"])
def test_captured_startup_and_cancel_replayed_against_fakepm(name):
    """fakepm, announcing the captured server's version, answers the captured client bytes as it did."""
    header, lines = load_capture(name)
    expected = {1: [bytes.fromhex(x["hex"]) for x in lines if x["conn"] == 1 and x["dir"] == "S" and "hex" in x],
                2: [bytes.fromhex(x["hex"]) for x in lines if x["conn"] == 2 and x["dir"] == "S" and "hex" in x]}
    client = {1: [bytes.fromhex(x["hex"]) for x in lines if x["conn"] == 1 and x["dir"] == "C" and "hex" in x],
              2: [bytes.fromhex(x["hex"]) for x in lines if x["conn"] == 2 and x["dir"] == "C" and "hex" in x]}
    assert client[1][0][4:8] == struct.pack("!i", m.PROTOCOL_3_2)  # what libpq 18 asked for
    assert [x[:1] for x in client[1][1:]] == [b"Q", b"X"] and len(client[2]) == 1
    cancel_key_len = len(client[2][0]) - 12
    with FakePostgres(version=header["server"]) as pg:
        with socket.create_connection((pg.host, pg.port)) as main:
            main.sendall(client[1][0])
            got, _ = recv_messages(main, ready)
            n = len(got)
            assert [canonical(x) for x in got] == [canonical(x) for x in expected[1][:n]]
            pid, key = key_of(got)
            assert len(key) == cancel_key_len  # what the client sends back is the key it was given
            main.sendall(client[1][1])  # SELECT pg_sleep(5)
            more, _ = recv_messages(main, lambda msgs: any(x[:1] == b"T" for x in msgs), timeout=0.5)
            with socket.create_connection((pg.host, pg.port)) as side:
                side.sendall(m.CancelRequest(pid, key if len(key) != 4 else struct.unpack("!i", key)[0]).encode())
                answer, eof = recv_messages(side, timeout=5)
                assert answer == expected[2] == [] and eof  # the server just closes the cancel connection
            rest, _ = recv_messages(main, lambda msgs: bool(msgs) and msgs[-1][:1] == b"Z")
            got_after = more + rest
            assert [canonical(x) for x in got_after] == [canonical(x) for x in expected[1][n:]]
            main.sendall(client[1][2])  # Terminate
            tail, eof = recv_messages(main, timeout=5)
            assert tail == [] and eof
        assert [e["kind"] for e in pg.events if e["kind"].startswith("cancel")] == ["cancel"]


# ------------------------------------------------------------------------------ live, both oracles

STARTUPS = [
    ("3.0", m.PROTOCOL_3_0, {}),
    ("3.1", (3 << 16) | 1, {}),
    ("3.2", m.PROTOCOL_3_2, {}),
    ("3.3", (3 << 16) | 3, {}),
    ("3.99", (3 << 16) | 99, {}),
    ("3.2+_pq_", m.PROTOCOL_3_2, {"_pq_.foo": "1", "_pq_.bar": "x"}),
    ("3.0+_pq_", m.PROTOCOL_3_0, {"_pq_.": "1"}),
    ("3.2 replication", m.PROTOCOL_3_2, {"replication": "database"}),
    ("2.0", 2 << 16, {}),
    ("4.0", 4 << 16, {}),
]


def exchange(host, port, packet: bytes) -> list:
    with socket.create_connection((host, port)) as s:
        s.sendall(packet)
        msgs, _ = recv_messages(s, ready)
        if msgs and msgs[-1][:1] == b"Z":
            s.sendall(m.Terminate().encode())
    return msgs


@pytest.fixture(scope="module")
def fake_like(oracle_pg):
    with FakePostgres(version=oracle_pg.server_version) as pg:
        yield pg


@pytest.mark.parametrize("label, code, extra", STARTUPS, ids=[s[0] for s in STARTUPS])
def test_startup_answers_equal_the_real_servers(oracle_pg, fake_like, label, code, extra):
    params = {"user": oracle_pg.user, "database": "postgres", **extra}
    want = exchange(oracle_pg.host, oracle_pg.port, startup_packet(code, params))
    got = exchange(fake_like.host, fake_like.port, startup_packet(code, params))
    version = oracle_pg.server_version
    assert [canonical(x, version) for x in got] == [canonical(x, version) for x in want]


def _session(host, port, user, minor=2):
    s = socket.create_connection((host, port))
    s.sendall(startup_packet((3 << 16) | minor, {"user": user, "database": "postgres"}))
    msgs, _ = recv_messages(s, ready)
    assert msgs[-1] == b"Z\x00\x00\x00\x05I", msgs
    return s, key_of(msgs)


def _cancel_outcome(host, port, user, minor, key_for):
    """Start pg_sleep(1) on a session asking for 3.`minor`, send `key_for(pid, key)` as a CancelRequest
    on a new connection; return ('canceled' | 'ran', what the cancel connection got, was it the key)."""
    s, (pid, key) = _session(host, port, user, minor)
    try:
        s.sendall(m.Query("SELECT pg_sleep(1)").encode())
        time.sleep(0.2)
        sent = key_for(pid, key)
        with socket.create_connection((host, port)) as c:
            c.sendall(sent)
            answer, _ = recv_messages(c, timeout=3)
        msgs, _ = recv_messages(s, lambda x: bool(x) and x[-1][:1] == b"Z", timeout=6)
        errors = [canonical(x) for x in msgs if x[:1] == b"E"]
        outcome = "canceled" if errors and errors[0][1][2] == (b"C", b"57014") else "ran"
        return outcome, answer, sent == _raw_cancel(pid, key)  # exactly its key?
    finally:
        s.close()


def _raw_cancel(pid: int, key: bytes) -> bytes:
    return struct.pack("!iii", 12 + len(key), m.CANCEL_REQUEST_CODE, pid) + key


CANCELS = [
    ("3.2 its key", 2, lambda pid, key: _raw_cancel(pid, key)),
    ("3.2 first 4 bytes", 2, lambda pid, key: _raw_cancel(pid, key[:4])),
    ("3.2 key + 1 byte", 2, lambda pid, key: _raw_cancel(pid, key + b"\0")),
    ("3.0 its key", 0, lambda pid, key: _raw_cancel(pid, key)),
    ("3.0 key + 4 bytes", 0, lambda pid, key: _raw_cancel(pid, key + b"\0\0\0\0")),
    ("3.0 wrong key", 0, lambda pid, key: _raw_cancel(pid, bytes(b ^ 1 for b in key))),
]


@pytest.mark.parametrize("label, minor, key_for", CANCELS, ids=[c[0] for c in CANCELS])
def test_cancel_keys_of_each_length_as_the_real_servers(oracle_pg, fake_like, label, minor, key_for):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # both at once: a key that does not cancel waits out pg_sleep(1)
        real = pool.submit(_cancel_outcome, oracle_pg.host, oracle_pg.port, oracle_pg.user, minor, key_for)
        fake = pool.submit(_cancel_outcome, fake_like.host, fake_like.port, "postgres", minor, key_for)
        want, got = real.result(), fake.result()
    assert got == want
    assert want[0] == ("canceled" if want[2] else "ran")  # PostgreSQL compares the key and its length


def _libpq_facts(dsn: str, max_protocol: str) -> dict:
    """What libpq 18 says after connecting with max_protocol_version, and a cancel (psycopg's cancel_safe)."""
    with psycopg.connect(dsn + f" max_protocol_version={max_protocol}", autocommit=True) as conn:
        pgconn = conn.pgconn
        facts = {"protocol": pgconn.protocol_version, "server_version": pgconn.server_version}
        if hasattr(pgconn, "full_protocol_version"):
            facts["full_protocol"] = pgconn.full_protocol_version
        facts["version_num"] = conn.execute("SHOW server_version_num").fetchone()[0]
        timer = threading.Timer(0.3, conn.cancel_safe)
        timer.start()
        try:
            conn.execute("SELECT pg_sleep(5)")
            facts["cancel"] = "not canceled"
        except psycopg.errors.QueryCanceled as e:
            facts["cancel"] = (e.sqlstate, str(e).strip())
        finally:
            timer.join()
        facts["after"] = conn.execute("SELECT 1").fetchone()[0]
    return facts


@pytest.mark.parametrize("max_protocol", ["3.2", "latest", "3.0"])
def test_psycopg_with_libpq_18_negotiates_and_cancels_as_with_the_real_server(oracle_pg, fake_like, max_protocol):
    dsn = f"host={{}} port={{}} user={oracle_pg.user} dbname=postgres sslmode=disable gssencmode=disable"
    want = _libpq_facts(dsn.format(oracle_pg.host, oracle_pg.port), max_protocol)
    got = _libpq_facts(dsn.format(fake_like.host, fake_like.port), max_protocol)
    assert got == want
    if "full_protocol" in want:
        assert want["full_protocol"] == (30002 if oracle_pg.major >= 18 and max_protocol != "3.0" else 30000)
