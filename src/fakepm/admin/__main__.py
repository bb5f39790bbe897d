"""`python -m fakepm.admin`: the child side of FakePostgres(subprocess=True).

Reads one JSON line from stdin ({"kwargs": FakePostgres keyword arguments, "scenarios": [paths],
"token": the control API's bearer token}), starts the server and its control API on loopback,
prints one JSON line ({"dsn", "admin", "port", ...} or {"error", "problems"}) and serves until
stdin ends (the parent closed it, or died) or SIGTERM. Statements no rule answered are logged
on stderr (the test's captured output).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading


def main() -> int:
    line = sys.stdin.readline()
    if not line:
        return 2
    cfg = json.loads(line)
    from ..scenario.context import ScenarioError
    from ..server import FakePostgres
    from ..servelog import ServeLog
    from .http import AdminServer
    from .values import from_json

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the parent's to handle
    try:
        pg = FakePostgres(**from_json(cfg.get("kwargs") or {}))
        for path in cfg.get("scenarios") or ():
            pg.load(path)
        pg.start()
        admin = AdminServer(pg, "127.0.0.1", 0, token=cfg.get("token")).start()
    except ScenarioError as e:
        print(json.dumps({"error": str(e), "kind": "ScenarioError",
                          "problems": [[p.file, p.line, p.col, p.message] for p in e.problems]}), flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - the parent raises it with the child's words
        print(json.dumps({"error": f"{e}", "kind": type(e).__name__}), flush=True)
        return 1
    log = ServeLog(pg, sys.stderr, fmt=cfg.get("log_format", "text"), quiet=cfg.get("quiet", True))
    print(json.dumps({"dsn": pg.dsn, "admin": admin.url, "host": pg.host, "port": pg.port, "user": pg.user,
                      "database": pg.config.database, "version": pg.config.version, "ca_file": pg.ca_file,
                      "unix_socket_dir": pg.unix_socket_dir, "pid": os.getpid()}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())

    def warm_up():  # what the first rule added over the API imports (~0.1 s), while the test sets up
        from ..scenario import registry

        registry.load_plugins()

    threading.Thread(target=warm_up, name="fakepm-warm-up", daemon=True).start()

    def watch_stdin():
        try:
            while sys.stdin.readline():
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="fakepm-parent", daemon=True).start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        admin.stop()
        pg.stop()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
