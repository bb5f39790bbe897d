"""Secrets off the command line: where the real server's password comes from when its URL has
none (as libpq looks for it), for `fakepm record | drift | proxy | serve --backend` and the relay.

Order: a password file given on the command line, $FAKEPM_UPSTREAM_PASSWORD, $PGPASSWORD, then
the password file libpq reads ($PGPASSFILE, else ~/.pgpass). The whole URL may come from
$FAKEPM_UPSTREAM. Nothing here prints a password or a secrets file's contents.
"""

from __future__ import annotations

import os
import urllib.parse

def _first_line(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline()
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot read it ({e.strerror or type(e).__name__})") from None
    return line.rstrip("\r\n")


def pgpass_password(host: str, port: int, database: str, user: str, env=os.environ) -> str | None:
    """The password libpq would take from its password file ($PGPASSFILE or ~/.pgpass): the first
    line host:port:database:user:password matching (* matches anything, \\ escapes : and \\)."""
    path = env.get("PGPASSFILE") or os.path.join(os.path.expanduser("~"), ".pgpass")
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    want = (host if not host.startswith("/") else "localhost", str(port), database, user)
    for line in lines:
        if not line or line.startswith("#"):
            continue
        fields, cur, esc = [], "", False
        for ch in line:
            if esc:
                cur += ch
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == ":" and len(fields) < 4:
                fields.append(cur)
                cur = ""
            else:
                cur += ch
        fields.append(cur)
        if len(fields) == 5 and all(f in ("*", w) for f, w in zip(fields[:4], want)):
            return fields[4]
    return None


def resolve_upstream(url: str | None, password_file: str | None = None, *, what: str = "--upstream",
                     env=os.environ, warn=None) -> str:
    """The real server's URL with its password filled in when it has none (see the module
    docstring for where it comes from). Warns (through `warn`) when the password was given on
    the command line."""
    if not url:
        url = env.get("FAKEPM_UPSTREAM")
        if not url:
            raise ValueError(f"{what}: give the real server's postgresql:// URL (or set $FAKEPM_UPSTREAM)")
    elif warn is not None and urllib.parse.urlsplit(url).password is not None:
        warn(f"{what} carries a password: every local user can read it in the process list; prefer "
             f"{what}-password-file FILE, $FAKEPM_UPSTREAM_PASSWORD or ~/.pgpass")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or parts.password is not None:
        return url
    password = None
    if password_file:
        password = _first_line(password_file, f"{what}-password-file")
    if password is None:
        password = env.get("FAKEPM_UPSTREAM_PASSWORD") or env.get("PGPASSWORD")
    user = urllib.parse.unquote(parts.username) if parts.username else "postgres"
    if password is None:
        from .upstream import UpstreamURL

        try:
            u = UpstreamURL.parse(url)
        except ValueError:
            return url  # the caller reports what is wrong with it
        password = pgpass_password(u.host, u.port, u.database or user, user, env)
    if password is None:
        return url
    hostpart = parts.netloc.rpartition("@")[2]
    netloc = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{hostpart}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_pgpass_password = pgpass_password  # the name relay.py first used
