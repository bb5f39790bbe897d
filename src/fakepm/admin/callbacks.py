"""Rules answered by the control API's client: handlers living in another process.

A rule added with `callback: true` answers through its client: when it matches, the call is
queued (GET /__admin/callbacks long-polls for it, with the statement, its parameters and its
connection) and the worker thread serving the statement waits until the client posts the answer
(POST /__admin/callbacks/{id}: the answer keys of a YAML rule) or `timeout` passes. Other
connections go on meanwhile: handlers run on the loop's worker threads, never on the loop.

`callback: "copy_both"` answers a statement with CopyBothResponse and hands the client the
channel (GET .../channels/{id}/recv, POST .../channels/{id}/send and .../done) until it posts
the call's answer ({"done": true}, or an error).

This is how `FakePostgres(subprocess=True)` runs Python handlers in the test's process.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Any

from ..protocol.errors import PgError
from .values import to_json

DEFAULT_TIMEOUT = 60.0  # a callback unanswered this long fails its statement with XX000
MAX_WAIT = 30.0  # the longest one long poll waits


class Call:
    __slots__ = ("id", "kind", "payload", "done", "answer", "taken")

    def __init__(self, cid: int, kind: str, payload: dict):
        self.id = cid
        self.kind = kind
        self.payload = payload
        self.done = threading.Event()
        self.answer: Any = None
        self.taken = False


def query_json(query) -> dict:
    c = query.connection
    conn = None
    if c is not None:
        conn = {"id": c.id, "pid": c.pid, "user": c.user, "database": c.database,
                "application_name": c.application_name, "parameters": dict(c.parameters or {}), "tls": c.tls,
                "replication": c.replication}
    return {"sql": query.sql, "params": to_json(list(query.params)), "protocol": query.protocol,
            "statement": query.statement, "connection": conn, "transaction_status": query.transaction_status,
            "settings": to_json(dict(query.settings or {}))}


class Callbacks:
    """Pending calls and open channels of one server's callback rules."""

    def __init__(self, pg, timeout: float = DEFAULT_TIMEOUT):
        self.pg = pg
        self.timeout = timeout
        self._cond = threading.Condition()
        self._queue: deque[Call] = deque()
        self._calls: dict[int, Call] = {}
        self._channels: dict[int, Any] = {}
        self._ids = itertools.count(1)
        self.closed = False
        self.last_poll = 0.0

    # ------------------------------------------------------------------ the server's side
    def _submit(self, kind: str, payload: dict) -> Call:
        with self._cond:
            call = Call(next(self._ids), kind, payload)
            self._calls[call.id] = call
            self._queue.append(call)
            self._cond.notify_all()
        return call

    def _finish(self, call: Call) -> None:
        with self._cond:
            self._calls.pop(call.id, None)
            try:
                self._queue.remove(call)
            except ValueError:
                pass

    def handler(self, rule, columns_spec):
        """A handler for Rule.handler: queue the call, wait for the client's answer."""
        from .jsonspec import SpecError, parse_answer

        def run(query):
            call = self._submit("query", {"rule": {"id": rule.seq, "label": rule.label}, "query": query_json(query)})
            try:
                deadline = time.monotonic() + self.timeout
                while not call.done.wait(0.25):
                    if self.closed or time.monotonic() > deadline:
                        why = "the server stopped" if self.closed else f"no answer within {self.timeout:g} s"
                        raise PgError("XX000", f"fakepm: the callback for {rule.label} was not answered: {why}")
            finally:
                self._finish(call)
            body = call.answer
            if isinstance(body, PgError):
                raise body
            body = dict(body or {})
            failure = body.pop("failure", None)
            if failure:  # the client's handler raised: verify() reports it, as for a local handler
                self.pg.rules.handler_failures.append(f"handler for {rule.label} raised:\n{failure}")
            if "rows" in body and "columns" not in body and columns_spec is not None:
                body["columns"] = columns_spec
            try:
                return parse_answer(body, "answer")
            except SpecError as e:
                raise PgError("XX000", f"fakepm: the callback's answer for {rule.label} is invalid: {e}") from None

        run.callback = True
        return run

    def copy_handler(self, holder: dict):
        """A COPY-both handler(channel) whose channel the client drives (holder["rule"]: its Rule)."""

        def run(channel):
            rule = holder.get("rule")
            with self._cond:
                chan_id = next(self._ids)
                self._channels[chan_id] = channel
            call = self._submit("copy_both", {"rule": {"id": rule.seq if rule else None,
                                                       "label": rule.label if rule else None},
                                              "channel": chan_id})
            try:
                closed_at = None
                while not call.done.wait(0.25):
                    if self.closed:
                        raise PgError("XX000", "fakepm: the server stopped during the COPY both callback")
                    if channel.closed:  # the client went away: give the handler a few seconds to notice
                        closed_at = closed_at or time.monotonic()
                        if not call.taken or time.monotonic() - closed_at > 5.0:
                            return
            finally:
                self._finish(call)
                with self._cond:
                    self._channels.pop(chan_id, None)
            body = call.answer
            if isinstance(body, PgError):
                raise body
            if isinstance(body, dict) and body.get("error") is not None:
                raise _error(body["error"])

        run.callback = True
        return run

    # ------------------------------------------------------------------ the client's side (HTTP threads)
    def fetch(self, wait: float) -> list[dict]:
        """Calls not yet handed out; waits up to `wait` seconds for one."""
        wait = max(0.0, min(float(wait), MAX_WAIT))
        deadline = time.monotonic() + wait
        with self._cond:
            self.last_poll = time.monotonic()
            while not self._queue and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            out = []
            while self._queue:
                call = self._queue.popleft()
                call.taken = True
                out.append({"id": call.id, "kind": call.kind, **call.payload})
            return out

    def answer(self, call_id: int, body) -> bool:
        with self._cond:
            call = self._calls.get(call_id)
        if call is None:
            return False
        call.answer = body
        call.done.set()
        return True

    def channel(self, chan_id: int):
        with self._cond:
            return self._channels.get(chan_id)

    def forget_failures(self) -> None:
        pass  # handler failures live in pg.rules (cleared by reset)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _error(spec) -> PgError:
    from ..protocol.errors import resolve_sqlstate

    if isinstance(spec, str):
        return PgError(resolve_sqlstate(spec), "error")
    if not isinstance(spec, dict) or "code" not in spec:
        raise ValueError('an error is {"code": SQLSTATE, "message": ...}')
    d = dict(spec)
    code = resolve_sqlstate(str(d.pop("code")))
    return PgError(code, str(d.pop("message", "error")), **{k: v for k, v in d.items() if v is not None})
