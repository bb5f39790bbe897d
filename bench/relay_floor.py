"""The floor of any relay written in Python: bytes moved between a client and the engine with
nothing looked at (one epoll loop, recv + sendall, no framing, no journal). bench_backend.py
runs it as a target beside fakepm, so the ratio fakepm could reach on this machine with its
second hop in Python is measured, not guessed.

    python bench/relay_floor.py LISTEN_DIR PORT ENGINE_SOCKET_DIR ENGINE_PORT   # prints "ready"
"""

from __future__ import annotations

import os
import select
import socket
import sys


def serve(listen_dir: str, port: int, engine_dir: str, engine_port: int) -> None:
    path = os.path.join(listen_dir, f".s.PGSQL.{port}")
    if os.path.exists(path):
        os.unlink(path)
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(64)
    lsock.setblocking(False)
    ep = select.epoll()
    ep.register(lsock.fileno(), select.EPOLLIN)
    socks: dict[int, socket.socket] = {}
    peer: dict[int, socket.socket] = {}
    print("ready", flush=True)
    while True:  # ends when the bench kills the process
        for fd, _ in ep.poll(1.0):
            if fd == lsock.fileno():
                c, _ = lsock.accept()
                u = socket.socket(socket.AF_UNIX)
                u.connect(os.path.join(engine_dir, f".s.PGSQL.{engine_port}"))
                for s in (c, u):
                    s.setblocking(False)
                    socks[s.fileno()] = s
                    ep.register(s.fileno(), select.EPOLLIN)
                peer[c.fileno()], peer[u.fileno()] = u, c
                continue
            s = socks.get(fd)
            if s is None:
                continue
            try:
                data = s.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                peer[fd].setblocking(True)  # the floor: no write buffering logic either
                peer[fd].sendall(data)
                peer[fd].setblocking(False)
                continue
            for x in (s, peer.pop(fd, None)):
                if x is not None and x.fileno() >= 0:
                    ep.unregister(x.fileno())
                    socks.pop(x.fileno(), None)
                    peer.pop(x.fileno(), None)
                    x.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
