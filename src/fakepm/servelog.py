"""`fakepm serve`'s log: one line per statement saying who answered it, connections, faults.

    12:00:01.234 #1 connected: user=postgres database=shop
    12:00:01.240 #1 SELECT id, name, price FROM products ORDER BY id -> rule shop.yaml:27 "list products"
    12:00:01.241 #1 SELECT version() -> built-in (version)
    12:00:01.250 #1 SELECT * FROM products -> NO RULE (FP000); nearest: ...
    12:00:01.251 #1 COMMIT -> built-in (commit); fault error@before_reply (admin API) fired
    12:00:01.300 #1 disconnected: client closed the connection

Who answered: `rule FILE:LINE "name"` (or where the rule came from: the test file's line,
`admin API`), `built-in (what)` (connection setup, transactions, SET/SHOW, version(), ...),
`engine` (backend mode: the real PostgreSQL), or `NO RULE` with the nearest rules and how
they differ. `--log-format json` writes the same as one JSON object per line. Every line
goes to stderr (stdout holds only the DSN, and the admin URL when asked for); `-q` keeps
only the NO RULE lines, which are always written.

The lines are made on the server's loop thread and written by a thread of their own through
a bounded queue: a reader that stops reading stderr never stalls the server (lines beyond
the queue are counted and the count is written when the server stops).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from typing import IO

from .admin.control import RuleIndex, who_answered
from .admin.values import to_json

QUEUE_LINES = 10_000
MAX_SQL = 300  # characters of a statement shown in a text line
QUIET_EVENTS = frozenset({"standby_status", "hot_standby_feedback", "notify"})


def _one_line(sql: str, limit: int = MAX_SQL) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ServeLog:
    """Observes a FakePostgres's journal and writes log lines (text or JSON) to a stream."""

    def __init__(self, pg, stream: IO[str] | None = None, *, fmt: str = "text", quiet: bool = False):
        if fmt not in ("text", "json"):
            raise ValueError(f"log format is text or json, got {fmt!r}")
        self.pg = pg
        self.stream = stream if stream is not None else sys.stderr
        self.fmt = fmt
        self.quiet = quiet
        self.index = RuleIndex(pg)
        self.dropped = 0
        self._q: queue.Queue = queue.Queue(QUEUE_LINES)
        self._thread = threading.Thread(target=self._write_loop, name="fakepm-log", daemon=True)
        self._thread.start()
        pg.journal.observers.append(self.observe)

    # ------------------------------------------------------------------ on the loop thread
    def observe(self, what: str, item) -> None:
        try:
            line = self._statement(item) if what == "statement" else self._event(item)
        except Exception as e:  # noqa: BLE001 - a log line must never break the server
            line = f"fakepm log: cannot describe a {what}: {type(e).__name__}: {e}"
        if line is not None:
            self.emit(line)

    def emit(self, line: str) -> None:
        try:
            self._q.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _stamp(self) -> str:
        now = time.time()
        if self.fmt == "json":
            return datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
        return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"

    def _who(self, e) -> tuple[str, dict]:
        kind = who_answered(e.rule)
        info: dict = {"answered_by": kind}
        if kind == "rule":
            r = self.index.find(e.rule)
            if r is not None:
                info["rule"] = {"id": r.seq, "name": r.name, "source": r.source or None}
                text = f"rule {r.source or '(no source)'}" + (f' "{r.name}"' if r.name else "")
            else:
                info["rule"] = {"label": e.rule}
                text = f"rule {e.rule}"
        elif kind == "builtin":
            what = e.rule.split(":", 1)[1] if ":" in e.rule else e.rule
            info["builtin"] = what
            text = f"built-in ({what})"
        elif kind == "engine":
            text = "engine"
        elif kind == "hook":
            text = "proxy hook"
        else:
            from .answers.result import Query

            near = self.pg.rules.nearest(Query(sql=e.sql, params=list(e.params)))
            info["nearest"] = near
            text = "NO RULE (FP000)" + ("; nearest: " + " | ".join(near) if near else "; no rules are defined")
        return text, info

    def _statement(self, e) -> str | None:
        matched = e.matched
        if self.quiet and matched:
            return None
        who, info = self._who(e)
        if self.fmt == "json":
            rec = {"time": self._stamp(), "event": "statement", "connection": e.connection, "pid": e.pid,
                   "user": e.user, "database": e.database, "protocol": e.protocol, "sql": e.sql,
                   "params": to_json(list(e.params)), **info}
            if e.error and matched:
                rec["error"] = e.error
            return json.dumps(rec, default=str)
        params = f" params={list(e.params)!r}" if e.params else ""
        err = f" -> ERROR {e.error}" if e.error and matched else ""
        return f"{self._stamp()} #{e.connection} {_one_line(e.sql)}{params} -> {who}{err}"

    def _event(self, ev: dict) -> str | None:
        kind = ev.get("kind")
        if self.quiet or kind in QUIET_EVENTS:
            return None
        if self.fmt == "json":
            return json.dumps({"time": self._stamp(), "event": kind, **to_json({k: v for k, v in ev.items()
                                                                                 if k != "kind"})}, default=str)
        conn = ev.get("connection")
        who = f"#{conn} " if conn is not None else ""
        if kind == "connect":
            text = f"connected: user={ev.get('user')} database={ev.get('database')}"
        elif kind == "disconnect":
            text = f"disconnected: {ev.get('reason')}"
        elif kind == "fault":
            text = f"fault {ev.get('plan')} fired at {ev.get('point')}"
        elif kind == "auth_failed":
            text = f"authentication failed for user {ev.get('user')!r}: {ev.get('error')}"
        else:
            rest = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("kind", "connection"))
            text = f"{kind}{': ' + rest if rest else ''}"
        return f"{self._stamp()} {who}{text}"

    # ------------------------------------------------------------------ the writer thread
    def _write_loop(self) -> None:
        while True:
            line = self._q.get()
            if line is None:
                return
            try:
                self.stream.write(line + "\n")
                if self._q.empty():
                    self.stream.flush()
            except (OSError, ValueError):
                return  # stderr closed: nothing more to say

    def close(self, timeout: float = 2.0) -> None:
        """Stop observing; write what is queued (within `timeout`) and how many lines were dropped."""
        try:
            self.pg.journal.observers.remove(self.observe)
        except ValueError:
            pass
        if self.dropped:
            try:
                self._q.put(f"fakepm log: {self.dropped} line(s) dropped (stderr was not read fast enough)",
                            timeout=timeout)
            except queue.Full:
                pass
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
