"""A tiny simple-query client over a raw socket, for comparing replication-command answers.

libpq's blocking calls (psycopg's pgconn.exec_) hold the GIL, so they cannot talk to a fake
running in this process; this client can, and sees every message as sent.
"""

from __future__ import annotations

import socket
import struct

from fakepm.protocol import messages as m


class RawClient:
    def __init__(self, host: str, port: int, user: str = "postgres", timeout: float = 10.0, **params: str):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.sock.sendall(m.StartupMessage(m.PROTOCOL_3_0, {"user": user, "database": "postgres", **params}).encode())
        self.startup = self.until_ready()

    def close(self) -> None:
        try:
            self.sock.sendall(m.Terminate().encode())
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def message(self) -> tuple[bytes, bytes]:
        while True:
            if len(self.buf) >= 5:
                (n,) = struct.unpack_from("!i", self.buf, 1)
                if len(self.buf) >= 1 + n:
                    t, body = self.buf[:1], self.buf[5:1 + n]
                    self.buf = self.buf[1 + n:]
                    return t, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buf += chunk

    def until_ready(self) -> list:
        """Messages up to ReadyForQuery. A CopyBoth is ended at once (CopyDone), a CopyIn refused (CopyFail)."""
        out = []
        while True:
            t, body = self.message()
            out.append((t, body))
            if t == b"Z":
                return out
            if t == b"G":
                self.sock.sendall(m.CopyFail("refused by the test").encode())
            if t == b"W":
                self.sock.sendall(m.CopyDone().encode())
                while True:
                    t2, b2 = self.message()
                    if t2 in (b"c", b"E"):
                        out.append((t2, b2))
                        break

    def query(self, sql: str) -> list:
        self.sock.sendall(m.Query(sql).encode())
        return self.until_ready()


def error_fields(body: bytes) -> dict:
    return {p[:1].decode(): p[1:].decode() for p in body.split(b"\0") if p}


def summary(msgs: list) -> dict:
    """What a reply says: columns (name, type OID, typmod), rows, tags, error (code, message), copy modes."""
    item: dict = {}
    for t, body in msgs:
        if t == b"T":
            (n,) = struct.unpack_from("!h", body)
            pos, cols = 2, []
            for _ in range(n):
                end = body.index(b"\0", pos)
                _tbl, _att, typ, _size, mod, _fmt = struct.unpack_from("!IhIhih", body, end + 1)
                cols.append((body[pos:end].decode(), typ, mod))
                pos = end + 1 + 18
            item["cols"] = cols
        elif t == b"D":
            (n,) = struct.unpack_from("!h", body)
            pos, row = 2, []
            for _ in range(n):
                (ln,) = struct.unpack_from("!i", body, pos)
                pos += 4
                row.append(None if ln < 0 else body[pos:pos + ln].decode(errors="replace"))
                pos += max(ln, 0)
            item.setdefault("rows", []).append(row)
        elif t == b"C":
            item.setdefault("tags", []).append(body[:-1].decode())
        elif t == b"E":
            f = error_fields(body)
            item["error"] = (f.get("C"), f.get("M"))
        elif t == b"W":
            item["copy_both"] = True
        elif t == b"G":
            item["copy_in"] = True
        elif t == b"H":
            item["copy_out"] = []
        elif t == b"d" and "copy_out" in item:
            item["copy_out"].append(body.decode(errors="replace"))
        elif t == b"Z":
            item["status"] = body.decode()
    return item
