"""The control API over HTTP: a loopback server of the standard library, JSON in and out.

    admin = AdminServer(pg, "127.0.0.1", 0).start()     # admin.url: http://127.0.0.1:PORT/__admin
    ...
    admin.stop()

Conventions (WireMock's and Toxiproxy's): resources under /__admin (rules, faults, state,
queries, events, copies, connections, replication, callbacks), POST adds, GET lists, DELETE
removes; errors are {"error": message, "problems": [{"field", "message"}]} with a 4xx status;
POST /__admin/verify answers 200 or 409 with the report verify() gives. The whole API is
described by openapi.json (GET /__admin/openapi.json).

Safety: it listens on loopback unless told otherwise, refuses requests a web browser could
send across origins (an Origin header, a body that is not JSON), and can require a bearer
token (FakePostgres(subprocess=True) gives its child one).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from .control import AdminError, Control

PREFIX = "/__admin"
MAX_BODY = 64 << 20  # a request body (rules with many rows) larger than this is refused (413)
IDLE_TIMEOUT = 120.0  # a keep-alive connection idle this long is closed
OPENAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.json")


def _flag(q: dict, name: str, default: bool = False) -> bool:
    v = q.get(name)
    if v is None:
        return default
    return v[-1].lower() not in ("0", "false", "no", "off", "")


def _num(q: dict, name: str, default: float | None, cast=float):
    v = q.get(name)
    if v is None:
        return default
    try:
        return cast(v[-1])
    except ValueError:
        raise AdminError(400, f"query parameter {name}: expected a number, got {v[-1]!r}") from None


Route = tuple[str, "re.Pattern", Callable[..., Any]]


def _routes(server: "AdminServer") -> list[Route]:
    def r(method: str, path: str, fn):
        return (method, re.compile("^" + PREFIX + path + "/?$"), fn)

    def channel(m):
        ch = server.callbacks.channel(int(m.group(1))) if server.callbacks is not None else None
        if ch is None:
            raise AdminError(404, f"no open COPY channel {m.group(1)}")
        return ch

    def recv(c, m, q, body):
        import base64

        ch = channel(m)
        timeout = min(max(_num(q, "timeout", 10.0), 0.0), 30.0)
        try:
            data = ch.recv(timeout)
        except TimeoutError:
            return 200, {"timeout": True}
        if data is None:
            return 200, {"done": True}
        return 200, {"data": base64.b64encode(data).decode("ascii")}

    def send(c, m, q, body):
        import base64

        ch = channel(m)
        if not isinstance(body, dict) or not isinstance(body.get("data", body.get("text")), str):
            raise AdminError(400, 'send: expected {"data": "<base64>"} or {"text": "..."}')
        data = body["text"].encode("utf-8") if "text" in body else base64.b64decode(body["data"])
        try:
            ch.send(data)
        except ConnectionError as e:
            raise AdminError(409, str(e)) from None
        return 200, {"sent": len(data)}

    def done(c, m, q, body):
        channel(m).done()
        return 200, {"done": True}

    def callbacks_fetch(c, m, q, body):
        if server.callbacks is None:
            raise AdminError(404, "this server has no callback rules")
        return 200, {"calls": server.callbacks.fetch(_num(q, "wait", 0.0))}

    def callbacks_answer(c, m, q, body):
        if server.callbacks is None or not server.callbacks.answer(int(m.group(1)), body):
            raise AdminError(404, f"no pending call {m.group(1)} (answered already, or timed out)")
        return 200, {"answered": True}

    def openapi(c, m, q, body):
        with open(OPENAPI, encoding="utf-8") as fh:
            return 200, json.load(fh)

    def index(c, m, q, body):
        return 200, {"fakepm": c.health()["fakepm"], "openapi": PREFIX + "/openapi.json",
                     "endpoints": sorted({f"{meth} {_readable(pat.pattern)}" for meth, pat, _ in server.routes})}

    return [
        r("GET", "", index),
        r("GET", "/health", lambda c, m, q, b: (200, c.health())),
        r("GET", "/openapi.json", openapi),
        r("GET", "/server", lambda c, m, q, b: (200, c.server())),
        r("GET", "/rules", lambda c, m, q, b: (200, c.list_rules())),
        r("POST", "/rules", lambda c, m, q, b: (201, c.add_rules(b))),
        r("DELETE", "/rules", lambda c, m, q, b: (200, c.remove_all_rules())),
        r("POST", "/rules/reset", lambda c, m, q, b: (200, c.reset_rules())),
        r("GET", r"/rules/([^/]+)", lambda c, m, q, b: (200, c.get_rule(m.group(1)))),
        r("DELETE", r"/rules/([^/]+)", lambda c, m, q, b: (200, c.remove_rule(m.group(1)))),
        r("GET", "/faults", lambda c, m, q, b: (200, c.list_faults())),
        r("POST", "/faults", lambda c, m, q, b: (201, c.add_faults(b))),
        r("DELETE", "/faults", lambda c, m, q, b: (200, c.clear_faults())),
        r("GET", r"/faults/([^/]+)", lambda c, m, q, b: (200, c.get_fault(m.group(1)))),
        r("DELETE", r"/faults/([^/]+)", lambda c, m, q, b: (200, c.remove_fault(m.group(1)))),
        r("GET", "/state", lambda c, m, q, b: (200, c.get_state())),
        r("PUT", "/state", lambda c, m, q, b: (200, c.set_state(b))),
        r("GET", "/queries", lambda c, m, q, b: (200, c.queries(since=int(_num(q, "since", 0, int)),
                                                                limit=_num(q, "limit", None, int),
                                                                unmatched=_flag(q, "unmatched")))),
        r("GET", "/unmatched", lambda c, m, q, b: (200, c.unmatched())),
        r("GET", "/events", lambda c, m, q, b: (200, c.events(q.get("kind", [None])[-1]))),
        r("GET", "/copies", lambda c, m, q, b: (200, c.copies(rows=_flag(q, "rows", True)))),
        r("DELETE", "/journal", lambda c, m, q, b: (200, c.clear_journal())),
        r("POST", "/verify", lambda c, m, q, b: c.verify()),
        r("GET", "/verify", lambda c, m, q, b: c.verify()),
        r("POST", "/reset", lambda c, m, q, b: (200, c.reset(b))),
        r("GET", "/connections", lambda c, m, q, b: (200, c.connections())),
        r("POST", "/connections/refuse", lambda c, m, q, b: (200, c.refuse(True))),
        r("POST", "/connections/accept", lambda c, m, q, b: (200, c.refuse(False))),
        r("POST", "/connections/disconnect", lambda c, m, q, b: (200, c.disconnect())),
        r("GET", "/transcripts", lambda c, m, q, b: (200, c.transcripts())),
        r("POST", "/notify", lambda c, m, q, b: (200, c.notify(b))),
        r("GET", "/tables", lambda c, m, q, b: (200, c.tables())),
        r("POST", "/tables", lambda c, m, q, b: (201, c.add_tables(b))),
        r("POST", "/load", lambda c, m, q, b: (200, c.load(b))),
        r("GET", "/replication", lambda c, m, q, b: (200, c.replication())),
        r("POST", "/replication", lambda c, m, q, b: (200, c.emit(b))),
        r("POST", "/replication/wait", lambda c, m, q, b: (200, c.wait_for(
            (b or {}).get("field", "flush"), (b or {}).get("lsn"), min(float((b or {}).get("timeout", 5)), 60.0)))),
        r("GET", "/callbacks", callbacks_fetch),
        r("POST", r"/callbacks/(\d+)", callbacks_answer),
        r("GET", r"/channels/(\d+)/recv", recv),
        r("POST", r"/channels/(\d+)/send", send),
        r("POST", r"/channels/(\d+)/done", done),
    ]


def _readable(pattern: str) -> str:
    return pattern[1:].replace("/?$", "").replace(r"(\d+)", "{id}").replace("([^/]+)", "{id}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    server_version = "fakepm-admin"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them
    timeout = IDLE_TIMEOUT

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # requests are not logged (the serve log shows what they did)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body, default=str).encode("utf-8") + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        admin: AdminServer = self.server.admin
        try:
            status, body = self._dispatch(admin)
        except AdminError as e:
            status, body = e.status, e.body()
        except Exception as e:  # noqa: BLE001 - a bug answers 500 with its name, never a hung client
            import traceback

            status, body = 500, {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
        self._send(status, body)

    def _dispatch(self, admin: "AdminServer"):
        if self.headers.get("Origin"):
            raise AdminError(403, "requests from web pages (an Origin header) are refused")
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if admin.loopback and host and host not in ("localhost", "127.0.0.1", "::1") and not host.startswith("127."):
            raise AdminError(403, f"Host {host!r} is not a loopback name")
        if admin.token is not None and self.headers.get("Authorization") != f"Bearer {admin.token}":
            raise AdminError(401, "a bearer token is required (Authorization: Bearer ...)")
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        body = None
        length = self.headers.get("Content-Length")
        if length:
            try:
                n = int(length)
            except ValueError:
                raise AdminError(400, "bad Content-Length") from None
            if n > MAX_BODY:
                raise AdminError(413, f"request body larger than {MAX_BODY >> 20} MiB")
            raw = self.rfile.read(n)
            if raw.strip():
                ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
                if ctype not in ("application/json", "text/json"):
                    raise AdminError(415, f"the body must be JSON (Content-Type: application/json), got {ctype}")
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise AdminError(400, f"the body is not JSON: {e}") from None
        elif self.headers.get("Transfer-Encoding"):
            raise AdminError(411, "send the body with a Content-Length")
        path = url.path.rstrip("/") or "/"
        allowed = []
        for method, pattern, fn in admin.routes:
            m = pattern.match(path)
            if m is None:
                continue
            if method != self.command:
                allowed.append(method)
                continue
            return fn(admin.control, m, query, body)
        if allowed:
            raise AdminError(405, f"{self.command} {path}: use {', '.join(sorted(set(allowed)))}")
        raise AdminError(404, f"no such endpoint: {path} (GET {PREFIX} lists them)")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, addr, admin: "AdminServer"):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.admin = admin
        self.open_sockets: set = set()
        self._lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address):
        with self._lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or self.admin._stopping:
            return  # a client that went away, or the server stopping under an idle keep-alive connection
        super().handle_error(request, client_address)

    def shutdown_request(self, request):
        with self._lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class AdminServer:
    """The control API of one FakePostgres on host:port (port 0: a free one)."""

    def __init__(self, pg, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 callbacks: bool = True):
        from .callbacks import Callbacks

        self.pg = pg
        self.host = host
        self.port = port
        self.token = token
        self.loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
        self.callbacks = Callbacks(pg) if callbacks else None
        self.control = Control(pg, callbacks=self.callbacks)
        self.routes = _routes(self)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = None
        self._stopping = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PREFIX}"

    def start(self) -> "AdminServer":
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="fakepm-admin", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """Accept until stop(): a selector over the listener and a wake socket (no polling
        interval, so stop() returns at once)."""
        srv = self._server
        with selectors.DefaultSelector() as sel:
            sel.register(srv.socket, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    srv._handle_request_noblock()

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping = True
        if self.callbacks is not None:
            self.callbacks.close()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(5)
        srv, self._server = self._server, None
        with srv._lock:
            socks = list(srv.open_sockets)
        for s in socks:  # idle keep-alive connections: their threads end now
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        srv.server_close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    def __enter__(self) -> "AdminServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` (loopback), `[::1]:PORT`; ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        return "127.0.0.1", int(text)
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", text) or re.match(r"^([^:\[\]]*):(\d+)$", text)
    if m is None:
        raise ValueError(f"expected HOST:PORT (such as 127.0.0.1:8080, or :0 for a free port), got {text!r}")
    host, port = m.group(1) or "127.0.0.1", int(m.group(2))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return host, port
