"""Capture a real server's startup and cancel exchange with a libpq 18 client asking for protocol 3.2.

    python tests/data/capture_protocol32.py 18 > tests/data/pg18_protocol32.jsonl
    python tests/data/capture_protocol32.py 15 > tests/data/pg15_protocol32.jsonl

A logging proxy sits between psycopg 3 (its binary wheel's libpq 18, `max_protocol_version=3.2`,
`sslmode=disable gssencmode=disable`) and a throwaway server (tests/realpg.py; timezone UTC).
The client connects, runs `SELECT pg_sleep(5)`, and cancels it from another thread; libpq 18
sends the CancelRequest on a new connection. Every message of both directions is one JSON line:
`{"conn": n, "dir": "C"|"S", "hex": ..., "what": ...}` in arrival order (per connection), after one
header line naming the versions. tests/test_protocol_oracle.py replays the client's side against
fakepm and compares fakepm's answers message by message.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def split_client(buf: bytes, startup: bool):
    """Complete client messages at the start of buf: [(bytes, summary)], rest, still-in-startup."""
    out = []
    while True:
        if startup:
            if len(buf) < 4:
                break
            (n,) = struct.unpack_from("!i", buf)
            if len(buf) < n:
                break
            msg, buf = buf[:n], buf[n:]
            (code,) = struct.unpack_from("!i", msg, 4)
            if code == 80877103:
                out.append((msg, "SSLRequest"))
            elif code == 80877104:
                out.append((msg, "GSSENCRequest"))
            elif code == 80877102:
                (pid,) = struct.unpack_from("!i", msg, 8)
                out.append((msg, f"CancelRequest pid={pid} key={len(msg) - 12}B"))
            else:
                parts = msg[8:].split(b"\0")
                params = dict(zip(parts[0::2], parts[1::2]))
                params = {k.decode(): v.decode() for k, v in params.items() if k}
                out.append((msg, f"StartupMessage {code >> 16}.{code & 0xFFFF} {params}"))
                startup = False
        else:
            if len(buf) < 5:
                break
            (n,) = struct.unpack_from("!i", buf, 1)
            if len(buf) < 1 + n:
                break
            msg, buf = buf[:1 + n], buf[1 + n:]
            summary = msg[:1].decode()
            if msg[:1] == b"Q":
                summary += " " + msg[5:-1].decode()
            out.append((msg, summary))
    return out, buf, startup


def split_server(buf: bytes, first: bool):
    out = []
    while buf:
        if first and buf[:1] in (b"N", b"S") and (len(buf) == 1 or buf[1:2] not in (b"\0",)):
            if len(buf) == 1 or buf[:1] == b"N":
                out.append((buf[:1], "single byte " + buf[:1].decode()))
                buf = buf[1:]
                continue
        if len(buf) < 5:
            break
        (n,) = struct.unpack_from("!i", buf, 1)
        if len(buf) < 1 + n:
            break
        msg, buf = buf[:1 + n], buf[1 + n:]
        out.append((msg, describe_server(msg)))
    return out, buf


def describe_server(msg: bytes) -> str:
    t, body = msg[:1], msg[5:]
    if t == b"S":
        k, v = body.split(b"\0")[:2]
        return f"ParameterStatus {k.decode()}={v.decode()}"
    if t == b"K":
        return f"BackendKeyData pid={struct.unpack_from('!i', body)[0]} key={len(body) - 4}B"
    if t == b"v":
        minor, n = struct.unpack_from("!ii", body)
        return f"NegotiateProtocolVersion {minor >> 16}.{minor & 0xFFFF} options={n}"
    if t == b"E":
        fields = {p[:1].decode(): p[1:].decode() for p in body.split(b"\0") if p}
        return f"ErrorResponse {fields.get('C')} {fields.get('M')}"
    if t == b"Z":
        return f"ReadyForQuery {body.decode()}"
    if t == b"R":
        return f"Authentication {struct.unpack_from('!i', body)[0]}"
    return {b"T": "RowDescription", b"C": "CommandComplete", b"D": "DataRow"}.get(t, t.decode())


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.lines: list = []
        self.lock = threading.Lock()
        self.conns = 0
        self.threads: list = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns += 1
            u = socket.create_connection(self.upstream)
            n = self.conns
            for src, dst, d in ((c, u, "C"), (u, c, "S")):
                t = threading.Thread(target=self.pump, args=(n, src, dst, d), daemon=True)
                t.start()
                self.threads.append(t)

    def pump(self, n, src, dst, d):
        buf, startup, first = b"", True, True
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.lock:
                    self.lines.append({"conn": n, "dir": d, "eof": True})
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            buf += data
            if d == "C":
                msgs, buf, startup = split_client(buf, startup)
            else:
                msgs, buf = split_server(buf, first)
                first = False if msgs and not msgs[-1][1].startswith("single byte") else first
            with self.lock:
                for raw, what in msgs:
                    self.lines.append({"conn": n, "dir": d, "hex": raw.hex(), "what": what})
            dst.sendall(data)


def main(version: str) -> None:
    import psycopg

    from realpg import real_postgres

    with real_postgres(version=version, settings={"timezone": "UTC"}) as server:
        proxy = Proxy((server.host, server.port))
        dsn = (f"host=127.0.0.1 port={proxy.port} user={server.user} dbname=postgres sslmode=disable "
               f"gssencmode=disable max_protocol_version=3.2")
        with psycopg.connect(dsn, autocommit=True) as conn:
            timer = threading.Timer(0.5, conn.cancel_safe)
            timer.start()
            try:
                conn.execute("SELECT pg_sleep(5)")
            except psycopg.errors.QueryCanceled:
                pass
            timer.join()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(1 for x in proxy.lines if x.get("eof")) < 2 * proxy.conns:
            time.sleep(0.05)
        header = {"server": server.server_version, "client": f"psycopg {psycopg.__version__}, libpq "
                  f"{psycopg.pq.version()}", "dsn": dsn.replace(str(proxy.port), "PORT")}
        print(json.dumps(header))
        for line in proxy.lines:
            print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "18")
