"""A pass-through PostgreSQL proxy: clients connect here, every message is relayed to a real server.

    with Proxy("postgresql://app:secret@db:5432/shop", hooks=[Anonymize(email=pseudonym)]) as px:
        psycopg.connect(px.dsn) ...

The proxy is backend mode with a server the user names and no rules: a FakePostgres whose
engine is `PassThrough(url)` and whose `hooks` program the traffic (proxy/hooks.py). So the
proxy, the recorder (a hook) and backend mode share one relay (proxy/backend.py over
proxy/link.py, on the server's I/O loop):
1. startup: SSLRequest/GSSENCRequest get 'N'; a CancelRequest carrying an upstream session's
   key (the client sees the upstream's pid and key) is forwarded to the upstream;
2. the client is authenticated locally (protocol/auth.py: any method `users` gives; trust by
   default) -- its password never goes upstream;
3. fakepm's own session upstream logs in with the URL's credentials (upstream.py) to the
   URL's database; the client sees that session's ParameterStatus values and BackendKeyData;
4. messages are relayed both ways; with hooks they are decoded with the shared codecs so
   hooks can rewrite queries, rows and replication tuples, and a Tracker attributes replies
   to statements (for on_exchange and the recorder). Hooks run on the I/O thread.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterable

from ..protocol.auth import user_auths
from .hooks import ProxyHooks
from .upstream import UpstreamURL


class PassThrough:
    """The engine of `fakepm proxy` and `fakepm record`: a server the user runs. fakepm logs in
    with the URL's own credentials to the URL's database and creates nothing there."""

    def __init__(self, url: UpstreamURL):
        self.url = url
        self.version = ""

    def start(self) -> None:
        pass

    def ensure_roles(self, roles: dict) -> None:
        pass  # the clients' users are fakepm's (local authentication), not the server's

    def acquire_database(self, setup, owner: str | None = None) -> str:
        return self.url.database or self.url.user

    def release_database(self, name: str) -> None:
        pass

    def upstream_url(self, user: str, database: str, password: str | None = None) -> UpstreamURL:
        return self.url


class Proxy:
    """Listen on host:port (a free port by default) and relay every client to `upstream`."""

    def __init__(self, upstream: str | UpstreamURL, *, hooks: Iterable[ProxyHooks] = (), host: str = "127.0.0.1",
                 port: int = 0, users: dict | None = None, max_connections: int = 100):
        self.upstream = upstream if isinstance(upstream, UpstreamURL) else UpstreamURL.parse(upstream)
        self.hooks = list(hooks)
        self.host = host
        self._requested_port = port
        self.port = 0
        self.users = user_auths(users)
        self.max_connections = max_connections
        self.server = None  # the FakePostgres doing the work, while started

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Proxy":
        if self.server is not None:
            return self
        from ..server import FakePostgres

        pg = FakePostgres(host=self.host, port=self._requested_port, users=self.users,
                          max_connections=self.max_connections, user=self.upstream.user,
                          database=self.upstream.database or self.upstream.user,
                          backend=PassThrough(self.upstream), hooks=self.hooks)
        pg.start()
        self.server = pg
        self.port = pg.port
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    close = stop

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def errors(self) -> list[str]:
        """Connection failures and failing hooks, for tests and logs."""
        pg = self.server
        if pg is None:
            return []
        out = list(pg.backend.errors) if pg.backend is not None else []
        if pg._loop is not None:
            out += pg._loop.errors
        return out

    @property
    def dsn(self) -> str:
        """Where clients connect: postgresql://<upstream user>@host:port/<upstream db>."""
        return self.url()

    def url(self, user: str | None = None, password: str | None = None, **params) -> str:
        auth = urllib.parse.quote(user or self.upstream.user, safe="")
        if password is not None:
            auth += ":" + urllib.parse.quote(password, safe="")
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{auth}@{host}:{self.port}/{self.upstream.database or self.upstream.user}{q}"
