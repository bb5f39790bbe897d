"""`fakepm` command line: serve a scenario for any client, check scenario files.

    fakepm serve [SCENARIO.yaml] [--host H] [--port P] [--tls] [--unix-socket-dir DIR]
                 [--max-message-size SIZE] [--authentication-timeout SECONDS] [--copy-keep-bytes SIZE]
                 [--backend postgres|postgres:15|URL] [--backend-password-file FILE]
                 [--admin HOST:PORT] [-q] [--log-format text|json]
    fakepm check FILE_OR_DIR...
    fakepm --version
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def _demo_rules(pg) -> None:
    """What `fakepm serve` answers without a scenario: a tiny shop to poke at with psql."""
    pg.on("SELECT id, name, price FROM products ORDER BY id").reply(
        columns={"id": "int4", "name": "text", "price": "numeric(10,2)"},
        rows=[[1, "Widget", "9.99"], [2, "Gadget", "24.50"], [3, "Doohickey", "3.75"]],
    )
    pg.on("SELECT id, name, price FROM products WHERE id = $1").reply(
        columns={"id": "int4", "name": "text", "price": "numeric(10,2)"}, rows=[[1, "Widget", "9.99"]]
    )
    pg.on(regex=r"^\s*INSERT\s+INTO\s+orders\b").reply(tag="INSERT 0 1")


def cmd_serve(args) -> int:
    from .server import FakePostgres

    kwargs = {"host": args.host, "port": args.port}
    if args.tls:
        kwargs["tls"] = True
    if args.unix_socket_dir:
        kwargs["unix_socket_dir"] = args.unix_socket_dir
    if args.version:
        kwargs["version"] = args.version
    if args.backend:
        from .scenario.loader import backend_spec_problem

        problem = backend_spec_problem(args.backend)
        if problem:
            print(f"fakepm: --backend: {problem.replace('server backend', 'it')}", file=sys.stderr)
            return 2
        kwargs["backend"] = args.backend
    limits = _limits(args)
    if isinstance(limits, str):
        print(f"fakepm: {limits}", file=sys.stderr)
        return 2
    kwargs.update(limits)
    try:
        pg = FakePostgres(**kwargs)
        if args.scenario:
            pg.load(args.scenario)
            for key, value in limits.items():  # the command line wins over the file's server: limits
                setattr(pg.config, key, value)
            if args.version:  # the command line wins over the file's server.version
                pg.config.version = args.version
            if args.backend:  # ... and over its server.backend
                pg.backend_spec = None if args.backend == "none" else args.backend
        else:
            _demo_rules(pg)
        spec = pg.backend_spec
        if isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://")):
            from .proxy.cli import _warn, resolve_upstream

            # the URL's password from --backend-password-file, $FAKEPM_UPSTREAM_PASSWORD, $PGPASSWORD or ~/.pgpass
            pg.backend_spec = resolve_upstream(spec, args.backend_password_file, what="--backend",
                                               warn=_warn if spec == args.backend else None)
        pg.start()
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: the engine (EngineError) in backend mode
        print(f"fakepm: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    from .servelog import ServeLog  # one line per statement, connection and fault (-q: unmatched only)

    log = ServeLog(pg, sys.stderr, fmt=args.log_format, quiet=args.quiet)
    admin = None
    if args.admin:  # the control API (fakepm/admin): off unless asked for
        from .admin.http import AdminServer

        try:
            admin = AdminServer(pg, *args.admin).start()
        except OSError as e:
            print(f"fakepm: --admin: {e}", file=sys.stderr)
            pg.stop()
            return 1
    print(pg.dsn, flush=True)
    if admin is not None:
        print(admin.url, flush=True)  # the second line of stdout: where the control API listens
        print(f"# admin API: {admin.url} (GET {admin.url}/openapi.json describes it)", file=sys.stderr, flush=True)
    if pg.ca_file:
        print(f"# TLS CA file: {pg.ca_file}", file=sys.stderr, flush=True)
    if pg.unix_socket_dir:
        print(f"# Unix socket: {pg.unix_socket_dir} (port {pg.port})", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if admin is not None:
            admin.stop()
        pg.stop()
        log.close()
    return 0


def _admin_address(text: str):
    from .admin.http import parse_address

    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _limits(args) -> dict | str:
    """--max-message-size / --authentication-timeout / --copy-keep-bytes as FakePostgres
    keyword arguments, or the problem as text."""
    from .scenario.loader import parse_seconds, parse_size

    out: dict = {}
    try:
        if args.max_message_size is not None:
            out["max_message_size"] = parse_size(args.max_message_size, "max_message_size")
        if args.authentication_timeout is not None:
            out["authentication_timeout"] = parse_seconds(args.authentication_timeout)
        if args.copy_keep_bytes is not None:
            out["copy_keep_bytes"] = parse_size(args.copy_keep_bytes, "copy_keep_bytes")
    except ValueError as e:
        return str(e)
    return out


def cmd_check(args) -> int:
    from .scenario import check_paths

    files: list = []
    problems = check_paths(args.paths, files_read=files)
    for p in problems:
        print(p)
    n = len(files)
    if not problems:
        print(f"ok: {n} file{'' if n == 1 else 's'} checked", file=sys.stderr)
    else:
        print(f"{len(problems)} problem{'' if len(problems) == 1 else 's'} in {n} file{'' if n == 1 else 's'} "
              f"checked", file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="fakepm", description="A fake PostgreSQL server for tests.")
    p.add_argument("--version", action="version", version=f"fakepm {__version__}",
                   help="print fakepm's version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("serve", help="serve a scenario until SIGINT/SIGTERM; prints the DSN once ready")
    s.add_argument("scenario", nargs="?", help="scenario YAML file (default: a built-in demo)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on for PostgreSQL clients (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    s.add_argument("--tls", action="store_true", help="accept TLS with a throwaway CA (its file is printed)")
    s.add_argument("--unix-socket-dir", help="also listen on DIR/.s.PGSQL.<port>")
    s.add_argument("--version", dest="version", help="server_version to report (e.g. 16.4)")
    s.add_argument("--backend", help="backend mode: a real PostgreSQL answers what no rule answers: postgres "
                                     "(managed; needs fakepm[postgres] or a local install), postgres:15, or a "
                                     "postgresql:// URL of an existing server (none: the pure fake)")
    s.add_argument("--backend-password-file", metavar="FILE",
                   help="backend mode with a URL: read its password from the first line of FILE (else "
                        "$FAKEPM_UPSTREAM_PASSWORD, $PGPASSWORD or ~/.pgpass, as libpq), when the URL has none")
    s.add_argument("--max-message-size", metavar="SIZE",
                   help="largest message a client may send (a Query, a Bind, one CopyData): bytes or 512kB, "
                        "64MB, 1GB; default 64MB, at most 1GB (PostgreSQL's own limit)")
    s.add_argument("--authentication-timeout", metavar="SECONDS",
                   help="close connections that have not authenticated after this long (60s, 1min, 500ms); "
                        "default 60, as PostgreSQL; 0: never")
    s.add_argument("--copy-keep-bytes", metavar="SIZE",
                   help="COPY FROM STDIN data whose rows the journal keeps per COPY (default 8MB); the "
                        "rest is loaded, counted and checksummed, not kept")
    s.add_argument("--admin", metavar="HOST:PORT", type=_admin_address,
                   help="also serve the control API (HTTP + JSON: rules, faults, state, journal, verify, reset) "
                        "on HOST:PORT (:0 for a free port on 127.0.0.1); its URL is printed on the second line")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="log only the statements no rule answered (always written to stderr)")
    s.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="stderr log: one line per statement (who answered it), connection and fault; "
                        "json: one JSON object per line (default text)")
    s.set_defaults(func=cmd_serve)
    c = sub.add_parser("check", help="validate scenario files; prints file:line:col: message per problem")
    c.add_argument("paths", nargs="+", metavar="FILE_OR_DIR",
                   help="scenario files, or directories whose *.yaml / *.yml files are checked (includes too)")
    c.set_defaults(func=cmd_check)
    from .proxy.cli import add_subcommands as _proxy_subcommands  # record | drift | proxy

    _proxy_subcommands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
