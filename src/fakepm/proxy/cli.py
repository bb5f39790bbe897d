"""`fakepm record | drift | proxy` (registered into fakepm/cli.py's parser).

    fakepm record --upstream postgresql://user@host:port/db --out FILE.yaml [--listen HOST:PORT]
                  [--mode once|new|all] [--redact REGEX]... [--user NAME:PASSWORD[:METHOD]]...
    fakepm drift FILE.yaml --upstream URL
    fakepm proxy --upstream URL [--plugin module:obj]... [--listen HOST:PORT]

Secrets stay off the command line (where every local user sees them in the process list):
the upstream URL may come from $FAKEPM_UPSTREAM, and when it has no password, the password
comes from --upstream-password-file FILE, $FAKEPM_UPSTREAM_PASSWORD, $PGPASSWORD or the
password file libpq reads ($PGPASSFILE, ~/.pgpass), in that order; client users from
--user-file FILE or $FAKEPM_USERS (one NAME:PASSWORD[:METHOD] a line) as well as --user.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

from .secrets import pgpass_password as _pgpass_password, resolve_upstream  # noqa: F401 (re-exported)


def _listen(text: str | None) -> tuple[str, int]:
    if not text:
        return "127.0.0.1", 0
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise SystemExit(f"fakepm: --listen {text!r}: expected HOST:PORT or PORT") from None


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    while not stop.wait(0.5):
        pass


def load_plugin(spec: str):
    """'module:obj' -> a hook instance (obj may be a ProxyHooks instance, class or factory)."""
    from .hooks import ProxyHooks

    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"--plugin {spec!r}: expected module:object")
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"--plugin {spec!r}: cannot import {mod_name!r}: {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"--plugin {spec!r}: module {mod_name!r} has no attribute {attr!r}") from None
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, ProxyHooks)):
        obj = obj()
    if not isinstance(obj, ProxyHooks) and not any(
            hasattr(obj, n) for n in ("on_query", "on_row", "on_change", "on_exchange")):
        raise ValueError(f"--plugin {spec!r}: {obj!r} is not a ProxyHooks (no on_query/on_row/on_change/on_exchange)")
    return obj


# ------------------------------------------------------------------------------ secrets
def _warn(text: str) -> None:
    print(f"fakepm: warning: {text}", file=sys.stderr, flush=True)


def _user_lines(text: str, where: str) -> list[str]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            if ":" not in line:
                raise ValueError(f"{where}, line {n}: expected NAME:PASSWORD[:METHOD]")  # never the line itself
            out.append(line)
    return out


def client_user_specs(args, env=os.environ) -> list[str]:
    """--user values, then the lines of --user-file and of $FAKEPM_USERS."""
    specs = list(getattr(args, "user", None) or ())
    if getattr(args, "user_file", None):
        try:
            with open(args.user_file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise ValueError(f"--user-file {args.user_file}: cannot read it ({e.strerror or type(e).__name__})") \
                from None
        specs += _user_lines(text, f"--user-file {args.user_file}")
    if env.get("FAKEPM_USERS"):
        specs += _user_lines(env["FAKEPM_USERS"], "$FAKEPM_USERS")
    if getattr(args, "user", None) and any(":" in u for u in args.user):
        _warn("--user carries a password: every local user can read it in the process list; prefer --user-file "
              "FILE or $FAKEPM_USERS")
    return specs


def _client_users(specs) -> dict | None:
    """--user NAME:PASSWORD[:METHOD] (repeatable) -> users for local client authentication."""
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, rest = spec.partition(":")
        if not sep or not name:
            raise ValueError(f"--user {spec!r}: expected NAME:PASSWORD[:METHOD]")
        password, _, method = rest.rpartition(":") if rest.count(":") and rest.rsplit(":", 1)[1] in (
            "trust", "password", "md5", "scram-sha-256") else (rest, "", "")
        out[name] = {"password": password, "auth": method or "scram-sha-256"}
    return out


def cmd_record(args) -> int:
    from .record import RecordError, Recording
    from .upstream import UpstreamURL

    host, port = _listen(args.listen)
    try:
        upstream = resolve_upstream(args.upstream, args.upstream_password_file, warn=_warn)
        rec = Recording(upstream, args.out, mode=args.mode, redact=args.redact or (), host=host, port=port,
                        users=_client_users(client_user_specs(args)))
        rec.start()
    except (RecordError, ValueError, OSError) as e:
        print(f"fakepm record: {e}", file=sys.stderr)
        return 1
    print(rec.dsn, flush=True)
    print(f"# recording {UpstreamURL.redacted_text(upstream)} into {args.out}; stop with Ctrl-C",
          file=sys.stderr, flush=True)
    try:
        _wait_for_signal()
    finally:
        path = rec.stop()
        print(f"# wrote {path}", file=sys.stderr, flush=True)
    return 0


def cmd_drift(args) -> int:
    from .drift import drift
    from .upstream import UpstreamError

    try:
        report = drift(args.file, resolve_upstream(args.upstream, args.upstream_password_file, warn=_warn))
    except (OSError, UpstreamError, ValueError) as e:
        print(f"fakepm drift: {e}", file=sys.stderr)
        return 2
    for line in report:
        print(line)
    if not report:
        print(f"no drift: {args.file} matches the server", file=sys.stderr)
    return 1 if report else 0


def cmd_proxy(args) -> int:
    from .relay import Proxy

    host, port = _listen(args.listen)
    try:
        hooks = [load_plugin(p) for p in args.plugin or ()]
        upstream = resolve_upstream(args.upstream, args.upstream_password_file, warn=_warn)
        px = Proxy(upstream, hooks=hooks, host=host, port=port, users=_client_users(client_user_specs(args))).start()
    except (ValueError, OSError) as e:
        print(f"fakepm proxy: {e}", file=sys.stderr)
        return 1
    print(px.dsn, flush=True)
    try:
        _wait_for_signal()
    finally:
        px.stop()
    return 0


_UPSTREAM_HELP = ("postgresql://user@host:port/db of the real server (default: $FAKEPM_UPSTREAM); keep its "
                  "password out of it: see --upstream-password-file")
_PASSWORD_FILE_HELP = ("read the upstream password from the first line of FILE (else $FAKEPM_UPSTREAM_PASSWORD, "
                       "$PGPASSWORD or ~/.pgpass, as libpq), when the URL has none")
_USER_HELP = ("clients must log in as this user (method scram-sha-256 by default); default: trust. The password "
              "shows in the process list: prefer --user-file or $FAKEPM_USERS")
_USER_FILE_HELP = "users as --user takes them, one NAME:PASSWORD[:METHOD] a line (# comments); also $FAKEPM_USERS"


def add_subcommands(sub) -> None:
    r = sub.add_parser("record", help="relay clients to a real PostgreSQL and record a scenario YAML")
    r.add_argument("--upstream", help=_UPSTREAM_HELP)
    r.add_argument("--upstream-password-file", metavar="FILE", help=_PASSWORD_FILE_HELP)
    r.add_argument("--out", required=True, help="scenario file to write")
    r.add_argument("--listen", help="HOST:PORT to accept clients on (default 127.0.0.1 and a free port)")
    r.add_argument("--mode", default="once", choices=["once", "new", "all"],
                   help="once: refuse if FILE exists (default); new: append unseen exchanges; all: re-record")
    r.add_argument("--redact", action="append", metavar="REGEX",
                   help="replace matches in literals, parameters and values with [REDACTED] (repeatable)")
    r.add_argument("--user", action="append", metavar="NAME:PASSWORD[:METHOD]", help=_USER_HELP)
    r.add_argument("--user-file", metavar="FILE", help=_USER_FILE_HELP)
    r.set_defaults(func=cmd_record)
    d = sub.add_parser("drift", help="replay a recording's queries on a real server and report differences")
    d.add_argument("file", help="the scenario file (a recording) to compare with the upstream server")
    d.add_argument("--upstream", help=_UPSTREAM_HELP)
    d.add_argument("--upstream-password-file", metavar="FILE", help=_PASSWORD_FILE_HELP)
    d.set_defaults(func=cmd_drift)
    p = sub.add_parser("proxy", help="a pass-through proxy to a real PostgreSQL with Python hooks")
    p.add_argument("--upstream", help=_UPSTREAM_HELP)
    p.add_argument("--upstream-password-file", metavar="FILE", help=_PASSWORD_FILE_HELP)
    p.add_argument("--plugin", action="append", metavar="MODULE:OBJ", help="a ProxyHooks object/class (repeatable)")
    p.add_argument("--listen", help="HOST:PORT (default 127.0.0.1 and a free port)")
    p.add_argument("--user", action="append", metavar="NAME:PASSWORD[:METHOD]", help=_USER_HELP)
    p.add_argument("--user-file", metavar="FILE", help=_USER_FILE_HELP)
    p.set_defaults(func=cmd_proxy)
