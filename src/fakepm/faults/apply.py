"""Applying fault plans inside a Session (message level, sans-I/O).

The session calls `SessionFaults.at(session, point, ...)` at each named point (a generator:
delays and hangs yield an Await the I/O loop serves with a timer) or `at_plain(...)` where
the session cannot wait (ReadyForQuery; a wait becomes a byte-level delay). What a point's
caller does with the outcome:

  None       go on;
  a PgError  the statement fails with it (FATAL ends the connection, as PostgreSQL does);
  REPLACED   the fault sent its own message in place of the one due here (wrong tag, bad
             ReadyForQuery status, missing ReadyForQuery, lying ParameterDescription).

Ending the connection raises SessionAbort, which the session turns into a close after
its output is flushed (`session.abort_with_rst` makes the loop reset instead).
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading

from ..answers.shape import shape_of
from ..answers.unify import unify
from ..protocol import malformed
from ..protocol import messages as m
from ..protocol.errors import PgError, fatal
from .plan import MALFORMED_KEEPS_CONNECTION, STARTUP_POINTS, FaultPlan
from .wire import WireShaper

REPLACED = "replaced"
DIRECT_POINTS = frozenset(STARTUP_POINTS + ("message", "describe"))


class SessionAbort(Exception):
    """A fault ends the connection (after the output queued so far is flushed)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def plans_of(fault) -> tuple:
    if fault is None:
        return ()
    if isinstance(fault, FaultPlan):
        return (fault,)
    return tuple(fault)


class FaultSet:
    """The server's fault plans plus the counters every plan keeps (shared by all connections)."""

    def __init__(self) -> None:
        self.plans: tuple[FaultPlan, ...] = ()  # copy-on-write: read by the loop thread without a lock
        self._counts: dict = {}
        self._rngs: dict = {}
        self._lock = threading.Lock()
        self.fired: list = []  # (plan label, connection id, point) for tests and reports

    def add(self, plan: FaultPlan) -> FaultPlan:
        with self._lock:
            self.plans = self.plans + (plan,)
        return plan

    def remove(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plans = tuple(p for p in self.plans if p is not plan)

    def clear(self) -> None:
        with self._lock:
            self.plans = ()
            self._counts.clear()
            self._rngs.clear()

    def rng(self, plan: FaultPlan) -> random.Random:
        r = self._rngs.get(plan)
        if r is None:
            r = self._rngs[plan] = random.Random(plan.trigger.seed)
        return r

    def count(self, plan: FaultPlan) -> int:
        """How many times the plan's filters matched so far."""
        return self._counts.get(plan, 0)

    def fires(self, plan: FaultPlan, session, sql: str | None = None, msg_type: bytes | None = None) -> bool:
        t = plan.trigger
        if t.connection is not None and session.id != t.connection:
            return False
        if t.user is not None and session.user != t.user:
            return False
        if t.message is not None and (msg_type is None or msg_type.decode("latin-1") != t.message):
            return False
        if t.query is not None or t.regex is not None:
            if sql is None:
                return False
            if t.regex is not None and not re.search(t.regex, sql, re.IGNORECASE | re.DOTALL):
                return False
            if t.query is not None and unify(shape_of(t.query), shape_of(sql), []) is None:
                return False
        n = self._counts.get(plan, 0) + 1
        self._counts[plan] = n
        if t.first is not None:
            ok = n <= t.first
        elif t.nth:
            ok = n in t.nth
        elif t.every is not None:
            ok = n % t.every == 0
        elif t.after is not None:
            ok = n > t.after
        elif t.probability is not None:
            ok = self.rng(plan).random() < t.probability
        else:
            ok = True
        if ok:
            self.fired.append((plan.label, session.id, plan.at))
            del self.fired[:-1000]
        return ok


class SessionFaults:
    """One connection's view of the fault plans (created by the server for every session)."""

    __slots__ = ("fs", "stmt", "row_mark", "repl_done")

    def __init__(self, fs: FaultSet):
        self.fs = fs
        self.stmt: tuple = ()  # plans firing for the current statement
        self.row_mark = None  # callable(count) -> bool: call at("after_rows") after this row
        self.repl_done: set = set()  # "replication" plans already applied on this connection

    def armed(self, result=None) -> bool:
        return bool(self.fs.plans) or (result is not None and result.fault is not None)

    # -- per statement ----------------------------------------------------------------
    def begin_statement(self, session, result, sql: str):
        """Decide which plans fire for this statement; returns the Result to send (COPY plans
        become the COPY's own fault seam)."""
        fs = self.fs
        fired = [p for p in plans_of(result.fault) if p.at not in DIRECT_POINTS and fs.fires(p, session, sql)]
        fired += [p for p in fs.plans if p.at not in DIRECT_POINTS and fs.fires(p, session, sql)]
        self.stmt = tuple(fired)
        marks = {p.rows for p in fired if p.at == "after_rows" and p.action != "dribble"}
        if any(p.action == "dribble" and p.value.get("by") == "rows" for p in fired):
            self.row_mark = lambda n: True
        else:
            self.row_mark = marks.__contains__ if marks else None
        copy_plans = [p for p in fired if p.at in ("copy_out", "copy_in")
                      or (p.at == "after_rows" and result.copy is not None)]
        if copy_plans and result.copy is not None:
            from ..answers.copyspec import CopyFault

            p = copy_plans[0]
            err = p.value if isinstance(p.value, PgError) else None
            if p.action == "reset":
                session.abort_with_rst = True
            cf = CopyFault(after_rows=p.rows, disconnect=p.action in ("close", "reset"), error=err)
            session.hub.journal.event("fault", connection=session.id, action=p.action, point="copy", plan=p.label)
            result = dataclasses.replace(result, copy=dataclasses.replace(result.copy, fault=cf))
        return result

    def end_statement(self) -> None:
        self.stmt = ()
        self.row_mark = None

    # -- points -----------------------------------------------------------------------
    def _plans_at(self, session, point, sql, msg_type, rows):
        if point in DIRECT_POINTS:
            return [p for p in self.fs.plans if p.at == point and self.fs.fires(p, session, sql, msg_type)]
        out = []
        for p in self.stmt:
            if p.at == point and (point != "after_rows" or p.rows == rows or p.action == "dribble"):
                out.append(p)
            elif point == "after_row_description" and p.at == "after_rows" and p.rows == 0:
                out.append(p)
        return out

    def at(self, session, point: str, result=None, sql: str | None = None, *, rows: int = 0,
           msg_type: bytes | None = None, type_oids=()):
        """Generator: apply the plans firing at `point`; returns None, a PgError or REPLACED."""
        outcome = None
        for p in self._plans_at(session, point, sql, msg_type, rows):
            o = _apply(self.fs, session, p, point, result, type_oids)
            if isinstance(o, tuple):  # ("wait", seconds[, then])
                yield from _wait(session, o[1])
                if len(o) > 2:
                    raise SessionAbort(o[2])
                continue
            outcome = outcome if isinstance(outcome, PgError) else (o or outcome)
        return outcome

    def replication(self, session, messages_sent: int):
        """Generator: plans at "replication" whose `rows` (messages) the stream has reached.
        Errors end the stream: ErrorResponse, then the connection closes."""
        for p in self.fs.plans:
            if p.at != "replication" or p in self.repl_done or messages_sent < p.rows:
                continue
            self.repl_done.add(p)
            if not self.fs.fires(p, session):
                continue
            o = _apply(self.fs, session, p, "replication", None, ())
            if isinstance(o, tuple):
                yield from _wait(session, o[1])
                if len(o) > 2:
                    raise SessionAbort(o[2])
            elif isinstance(o, PgError):
                session.send_error(o)
                raise SessionAbort(f"fakepm fault {p.label}: {o.code} in the replication stream")

    def at_plain(self, session, point: str, result=None, sql: str | None = None):
        """Like at() where the session cannot wait: waits become byte-level delays."""
        outcome = None
        for p in self._plans_at(session, point, sql, None, 0):
            o = _apply(self.fs, session, p, point, result, ())
            if isinstance(o, tuple):
                if len(o) > 2:
                    session.wire_shaper = WireShaper("close_after", o[1])
                else:
                    session.wire_shaper = WireShaper("delay", o[1])
                continue
            outcome = outcome or o
        if point == "before_ready_for_query":
            self.end_statement()  # the statement's cycle ends here
        return outcome


def _wait(session, seconds: float):
    from ..answers.result import Deferred
    from ..session.waits import Await

    token = session.new_token()
    value = yield Await(Deferred(delay=max(0.0, seconds), label="fault"), token)
    return value


def _apply(fs: FaultSet, s, p: FaultPlan, point: str, result, type_oids):
    """One plan's action. Returns None / PgError / REPLACED / ("wait", s[, abort reason])."""
    a, v = p.action, p.value
    why = f"fakepm fault {p.label}"
    s.transcript.append(("S", f"fault {p.action} at {point}"))
    s.hub.journal.event("fault", connection=s.id, action=a, point=point, plan=p.label)
    if a == "close":
        raise SessionAbort(f"{why}: close")
    if a == "reset":
        s.abort_with_rst = True
        raise SessionAbort(f"{why}: reset")
    if a == "hang":
        return ("wait", v, f"{why}: hang ended after {v} s")
    if a == "delay":
        return ("wait", v.sample(fs.rng(p)))
    if a == "dribble":
        if v["by"] == "bytes":
            s.wire_shaper = WireShaper("dribble", (v["seconds"], v["pieces"]))
            return None
        n = len(result.rows) if result is not None and isinstance(result.rows, (list, tuple)) else v["pieces"]
        return ("wait", v["seconds"] / max(1, n))
    if a == "slice":
        s.wire_shaper = WireShaper("slice", v)
        return None
    if a == "cut":
        s.wire_shaper = WireShaper("cut", v, then="reset" if p.then == "reset" else "close")
        return None
    if a == "garbage":
        s.send(fs.rng(p).randbytes(v))
        raise SessionAbort(f"{why}: {v} random bytes")
    if a == "send":
        s.send(v)
        if p.then != "continue":
            raise SessionAbort(f"{why}: sent {len(v)} raw bytes")
        return None
    if a == "too_many_clients":
        s.send_error(fatal("53300", "sorry, too many clients already"))
        raise SessionAbort(f"{why}: too many clients")
    if a in ("error", "fatal"):
        if point in DIRECT_POINTS or point == "before_ready_for_query":
            s.send_error(v)
            if v.is_fatal:
                raise SessionAbort(f"{why}: FATAL {v.code}")
            return None
        # a fresh error per firing: the session raises it, and raising the plan's own object
        # again and again chained every traceback (and every session's frames) onto it -- a leak
        return dataclasses.replace(v)
    if a == "notice":
        s.send(m.notice_response(v))
        return None
    if a == "parameter_status":
        s.send(m.parameter_status(*v))
        return None
    if a == "notification":
        s.send(m.NotificationResponse(s.pid, v[0], v[1]).encode())
        return None
    if a == "skip_ready":
        if p.then == "continue":
            return REPLACED
        s.wire_shaper = WireShaper("close_after", v)
        return REPLACED
    if a == "malformed":
        ncols = len(result.columns) if result is not None and result.columns else 1
        s.send(malformed.build(v, ncolumns=ncols, type_oids=type_oids))
        then = p.then or ("continue" if v in MALFORMED_KEEPS_CONNECTION else "close")
        if then == "close":
            raise SessionAbort(f"{why}: malformed {v}")
        return REPLACED if v in ("wrong_tag", "bad_ready_status", "param_count") else None
    if a == "auth":
        opts = s.auth_options = dict(s.auth_options)
        for k in v:
            if k == "unsupported_method":
                s.send(m.Authentication(99, b"").encode())
                raise SessionAbort(f"{why}: unsupported authentication method 99")
            if k == "fixed_nonce":
                opts["nonce"] = "fakepmfixednonce0123456789"
            elif k == "fixed_salt":
                opts["salt"] = b"fakepm-fixed-salt"
            else:
                opts[k] = True
        return None
    if a == "refuse_new":
        return None  # applied by the server when the plan is added (Loop.refuse_new)
    raise PgError("XX000", f"fakepm: fault action {a!r} is not applicable at {point}")  # pragma: no cover
