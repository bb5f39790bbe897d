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
3. its session upstream logs in as the client's own user (local `users` and `user_map` entries
   log in as the user they map to) to the client's own database (a missing one is refused with
   the upstream's own FATAL) with the URL's password, the map's, or the password file's
   (upstream.py speaks trust, password, md5 and SCRAM); the client sees that session's
   ParameterStatus values and BackendKeyData;
4. messages are relayed both ways; with hooks they are decoded with the shared codecs so
   hooks can rewrite queries, rows and replication tuples, and a Tracker attributes replies
   to statements (for on_exchange and the recorder). Hooks run on the I/O thread.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable

from ..dsn import libpq_url
from ..protocol.auth import user_auths
from .hooks import ProxyHooks
from .secrets import pgpass_password
from .upstream import UpstreamURL


class PassThrough:
    """The engine of `fakepm proxy` and `fakepm record`: a server the user runs. Each client's
    session upstream is its own: the database it asked for (a missing one is refused as
    PostgreSQL refuses it) and its own user -- except fakepm's local users (`users=`, which
    authenticate to fakepm, not upstream) and users named in `user_map`, who log in as the
    user the map (or the URL) names. Passwords: the URL's for the URL's user, a user map's,
    else the password file ($PGPASSFILE, ~/.pgpass; `passfile=`) as libpq reads it, else none
    (trust, peer). fakepm creates nothing upstream."""

    def __init__(self, url: UpstreamURL, user_map: dict | None = None, local_users=(), passfile: str | None = None):
        self.url = url
        self.version = ""
        # client user -> (upstream user, password or None)
        self.user_map = {k: (v if isinstance(v, tuple) else (v, None)) for k, v in (user_map or {}).items()}
        self.local_users = set(local_users)
        self.passfile = passfile

    def start(self) -> None:
        pass

    def ensure_roles(self, roles: dict) -> None:
        pass  # the clients' users are fakepm's (local authentication), not the server's

    def acquire_database(self, setup, owner: str | None = None) -> str:
        return self.url.database or self.url.user

    def release_database(self, name: str) -> None:
        pass

    def upstream_url(self, user: str, database: str, password: str | None = None) -> UpstreamURL:
        url = self.url
        if user in self.user_map:
            user, password = self.user_map[user]
        elif user in self.local_users:
            user, password = url.user, url.password
        else:
            password = None
        if password is None and user == url.user:
            password = url.password
        if password is None:
            env = dict(os.environ, PGPASSFILE=self.passfile) if self.passfile else os.environ
            password = pgpass_password(url.host, url.port, database or user, user, env)
        return dataclasses.replace(url, user=user, password=password, database=database or url.database)


class Proxy:
    """Listen on host:port (a free port by default) and relay every client to `upstream`."""

    def __init__(self, upstream: str | UpstreamURL, *, hooks: Iterable[ProxyHooks] = (), host: str = "127.0.0.1",
                 port: int = 0, users: dict | None = None, max_connections: int = 100, user_map: dict | None = None,
                 passfile: str | None = None):
        self.upstream = upstream if isinstance(upstream, UpstreamURL) else UpstreamURL.parse(upstream)
        self.hooks = list(hooks)
        self.host = host
        self._requested_port = port
        self.port = 0
        self.users = user_auths(users)
        self.max_connections = max_connections
        self.user_map = dict(user_map or {})
        self.passfile = passfile
        self.server = None  # the FakePostgres doing the work, while started

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Proxy":
        if self.server is not None:
            return self
        from ..server import FakePostgres

        pg = FakePostgres(host=self.host, port=self._requested_port, users=self.users,
                          max_connections=self.max_connections, user=self.upstream.user,
                          database=self.upstream.database or self.upstream.user,
                          backend=PassThrough(self.upstream, self.user_map, self.users or (), self.passfile),
                          hooks=self.hooks)
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

    def url(self, user: str | None = None, password: str | None = None, database: str | None = None,
            **params) -> str:
        return libpq_url(self.host, self.port, user or self.upstream.user,
                         database or self.upstream.database or self.upstream.user, password, **params)
