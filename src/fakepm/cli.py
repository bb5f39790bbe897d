"""`fakepm` command line: serve a scenario for any client, check scenario files.

    fakepm serve [SCENARIO.yaml] [--host H] [--port P] [--tls] [--unix-socket-dir DIR]
    fakepm check FILE_OR_DIR...
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
    try:
        pg = FakePostgres(**kwargs)
        if args.scenario:
            pg.load(args.scenario)
            if args.version:  # the command line wins over the file's server.version
                pg.config.version = args.version
            if args.backend:  # ... and over its server.backend
                pg.backend_spec = None if args.backend == "none" else args.backend
        else:
            _demo_rules(pg)
        pg.start()
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: the engine (EngineError) in backend mode
        print(f"fakepm: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(pg.dsn, flush=True)
    if pg.ca_file:
        print(f"# TLS CA file: {pg.ca_file}", file=sys.stderr, flush=True)
    if pg.unix_socket_dir:
        print(f"# Unix socket: {pg.unix_socket_dir} (port {pg.port})", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        pg.stop()
    return 0


def cmd_check(args) -> int:
    from .scenario import check_paths

    problems = check_paths(args.paths)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(args.paths)} path(s) checked", file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakepm", description="A fake PostgreSQL server for tests.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a scenario until SIGINT/SIGTERM; prints the DSN once ready")
    s.add_argument("scenario", nargs="?", help="scenario YAML file (default: a built-in demo)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    s.add_argument("--tls", action="store_true", help="accept TLS with a throwaway CA (its file is printed)")
    s.add_argument("--unix-socket-dir", help="also listen on DIR/.s.PGSQL.<port>")
    s.add_argument("--version", dest="version", help="server_version to report (e.g. 16.4)")
    s.add_argument("--backend", help="backend mode: a real PostgreSQL answers what no rule answers: postgres "
                                     "(managed; needs fakepm[postgres] or a local install), postgres:15, or a "
                                     "postgresql:// URL of an existing server (none: the pure fake)")
    s.set_defaults(func=cmd_serve)
    c = sub.add_parser("check", help="validate scenario files; prints file:line:col: message per problem")
    c.add_argument("paths", nargs="+")
    c.set_defaults(func=cmd_check)
    from .proxy.cli import add_subcommands as _proxy_subcommands  # record | drift | proxy

    _proxy_subcommands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
