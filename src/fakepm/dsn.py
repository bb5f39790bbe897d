"""Connection strings clients are given: the libpq URI and the key/value form, in one place
(FakePostgres, the child-process server and the proxy all hand them out)."""

from __future__ import annotations

import re
import urllib.parse


def libpq_url(host: str, port: int, user: str, database: str, password: str | None = None, /, *,
              tls: bool = False, **params: str) -> str:
    """postgresql://user[:password]@host:port/database[?params] (sslmode=require when tls)."""
    auth = urllib.parse.quote(user, safe="")
    if password is not None:
        auth += ":" + urllib.parse.quote(password, safe="")
    where = f"[{host}]" if ":" in host else host
    if tls and "sslmode" not in params:
        params = {"sslmode": "require", **params}
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    return f"postgresql://{auth}@{where}:{port}/{urllib.parse.quote(database, safe='')}{query}"


def conninfo(host: str, port: int, user: str, database: str, /, *, tls: bool = False, **kw) -> str:
    """The key/value form (host=... port=...), for tools that prefer it; `kw` adds or overrides keys."""
    parts = {"host": host, "port": str(port), "user": user, "dbname": database}
    if tls:
        parts["sslmode"] = "require"
    parts.update({k: str(v) for k, v in kw.items()})
    return " ".join(f"{k}={_kv(v)}" for k, v in parts.items())


def _kv(v: str) -> str:
    if v == "" or re.search(r"[\s'\\]", v):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return v


class Addresses:
    """`dsn`, `url()` and `conninfo()` for a started server that has `host`, `port`, `user`,
    `config` (its `database` and `tls`) and `_require_started()` (FakePostgres, ChildPostgres)."""

    @property
    def dsn(self) -> str:
        """A libpq URI every driver accepts (postgresql://user@127.0.0.1:port/db)."""
        return self.url()

    def url(self, user: str | None = None, password: str | None = None, database: str | None = None,
            **params: str) -> str:
        self._require_started()
        return libpq_url(self.host, self.port, user or self.user, database or self.config.database or "postgres",
                         password, tls=self.config.tls, **params)

    def conninfo(self, **kw) -> str:
        """Key/value form (host=... port=...), for tools that prefer it."""
        self._require_started()
        return conninfo(self.host, self.port, self.user, self.config.database or "postgres", tls=self.config.tls, **kw)
