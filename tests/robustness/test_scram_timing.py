"""An unknown user fails SCRAM exactly as slowly as a known user with a wrong password.

PostgreSQL runs a mock exchange for unknown users (a mock salt, a full proof check) so a client
cannot learn which users exist from how fast the verdict comes. fakepm used to answer an unknown
user's client-final ~35% sooner (0.065 vs 0.101 ms median: separable over 200 tries, p ~ 1e-30).
The verdict time is measured from sending the client-final message to reading the ErrorResponse,
known and unknown tries interleaved in a random (seeded) order so neither gets warmer caches,
and compared with a Mann-Whitney U test."""

from __future__ import annotations

import math
import random
import socket
import statistics
import struct
import time

import scramp

from fakepm import FakePostgres


def _msg(t: bytes, body: bytes) -> bytes:
    return t + struct.pack("!i", len(body) + 4) + body


def _read(sock: socket.socket) -> tuple[bytes, bytes]:
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            raise EOFError
        head += chunk
    n = struct.unpack("!i", head[1:])[0] - 4
    body = b""
    while len(body) < n:
        body += sock.recv(n - len(body))
    return head[:1], body


def verdict_seconds(port: int, user: str, password: str) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0\0"
        s.sendall(struct.pack("!i", len(body) + 4) + body)
        t, b = _read(s)
        assert t == b"R" and struct.unpack("!i", b[:4])[0] == 10  # AuthenticationSASL: the same for both
        client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
        first = client.get_client_first().encode()
        s.sendall(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
        t, b = _read(s)
        assert t == b"R" and struct.unpack("!i", b[:4])[0] == 11
        client.set_server_first(b[4:].decode())
        final = client.get_client_final().encode()
        t0 = time.perf_counter()
        s.sendall(_msg(b"p", final))
        t, b = _read(s)
        elapsed = time.perf_counter() - t0
    assert t == b"E" and f'password authentication failed for user "{user}"'.encode() in b
    return elapsed


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, ties averaged)."""
    values = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1][0] == values[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(a), len(b)
    u = sum(r for r, (_, g) in zip(ranks, values) if g == 0) - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return math.erfc(abs(z) / math.sqrt(2))


def test_scram_verdict_time_does_not_tell_unknown_users():
    rng = random.Random(16)
    with FakePostgres(users={"alice": "right-password"}) as pg:
        for _ in range(20):  # warm up both paths (the first exchange of each computes its keys)
            verdict_seconds(pg.port, "alice", "wrong")
            verdict_seconds(pg.port, "mallory", "wrong")
        known, unknown = [], []
        for _ in range(200):
            pair = [("alice", known), ("mallory", unknown)]
            rng.shuffle(pair)
            for user, out in pair:
                out.append(verdict_seconds(pg.port, user, "wrong"))
    p = mann_whitney_p(known, unknown)
    summary = (f"known {statistics.median(known) * 1e3:.3f} ms, unknown {statistics.median(unknown) * 1e3:.3f} ms "
               f"median; Mann-Whitney p = {p:.3g}")
    assert p > 0.001, "an unknown user's verdict time is distinguishable: " + summary
