"""A small Python client of the control API (what FakePostgres(subprocess=True) speaks).

    api = AdminClient("http://127.0.0.1:8080/__admin")
    api.post("/rules", {"query": "SELECT 1", "columns": {"x": "int4"}, "rows": [[1]]})
    api.post("/verify", expect=(200, 409))

Each thread keeps its own keep-alive connection. Failures raise AdminRequestError with the
status and the API's JSON body (its `error` and `problems`).
"""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit


class AdminRequestError(Exception):
    def __init__(self, method: str, path: str, status: int, body):
        self.status = status
        self.body = body
        msg = body.get("error") if isinstance(body, dict) else str(body)
        problems = body.get("problems") if isinstance(body, dict) else None
        if problems:
            msg += "\n" + "\n".join(f"  {p.get('field') + ': ' if p.get('field') else ''}{p.get('message')}"
                                    for p in problems)
        super().__init__(f"{method} {path}: {status} {msg}")


class AdminClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._local.conn = c
            with self._lock:
                self._all.append(c)
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def request(self, method: str, path: str, body=None, *, expect=(200, 201), timeout: float | None = None):
        """(status, JSON body); AdminRequestError unless the status is one of `expect`."""
        timeout = self.timeout if timeout is None else timeout
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json", "Host": f"{self.host}:{self.port}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more, afresh
            c = self._conn(timeout)
            try:
                c.request(method, self.prefix + path, body=data, headers=headers)
                resp = c.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                c.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        try:
            out = json.loads(raw) if raw else None
        except ValueError:
            out = {"error": raw.decode("utf-8", "replace")}
        if resp.status not in expect:
            raise AdminRequestError(method, path, resp.status, out)
        return resp.status, out

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)[1]

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body, **kw)[1]

    def put(self, path: str, body=None, **kw):
        return self.request("PUT", path, body, **kw)[1]

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)[1]

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
