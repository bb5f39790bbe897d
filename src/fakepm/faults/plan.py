"""Fault plans: a fault is data (what, where, when), never a branch inside an encoder.

A FaultPlan says
  * what happens (`action` + `value`): close, reset, hang, delay, dribble, slice, cut,
    garbage, malformed, error, notice, parameter_status, notification, skip_ready,
    too_many_clients, refuse_new, auth, send (raw backend bytes);
  * where (`at`, a named point of the conversation, see POINTS; `rows` = N for the
    "after N rows / COPY rows / replication messages" points);
  * when (`Trigger`): a SQL filter (query/regex), a frontend message type, the Nth
    connection, a user; then which of the matching occasions fire: first N, the Nth,
    every Nth, after N, or a seeded probability.

`parse_fault(data, where)` builds a plan from the plain mapping used by YAML (`fault:` on a
rule, server-level `faults:`) and Python (`pg.fault(...)`, `.reply(..., fault=...)`). Bad
input raises FaultSpecError naming `where` and the key.

    parse_fault({"error": "40001", "first": 2}, "rule COMMIT")        # first 2 fail
    parse_fault({"close": True, "after_rows": 500}, "copy rule")        # COPY OUT cut at row 500
    parse_fault({"delay": 0.2, "every": 10}, "faults[0]")               # every 10th query
    parse_fault({"delay": 0.2, "probability": 0.1, "seed": 3}, "x")     # seeded coin
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..protocol.errors import PgError

# Named points, in the order a connection meets them.
STARTUP_POINTS = (
    "before_ssl_answer",  # an SSLRequest arrived; 'S'/'N' not sent yet
    "after_ssl_answer",  # 'N' sent (or the TLS handshake done)
    "startup",  # the StartupMessage was read (user known), nothing answered yet
    "auth",  # the first authentication request was sent, the client's answer not read
    "before_auth_ok",  # AuthenticationOk is next (a delay here is "slow start")
    "before_backend_key_data",  # ParameterStatus sent, BackendKeyData next
)
STATEMENT_POINTS = (
    "before_reply",  # the answer was chosen; nothing of it sent
    "after_row_description",  # RowDescription sent (simple protocol) / before the first DataRow
    "after_rows",  # after `rows` DataRows
    "before_command_complete",
    "before_ready_for_query",
    "describe",  # Describe of a statement: ParameterDescription next
    "copy_out",  # COPY TO STDOUT: after `rows` rows
    "copy_in",  # COPY FROM STDIN: after `rows` rows received
)
OTHER_POINTS = (
    "message",  # a frontend message of type Trigger.message arrived (server-level plans)
    "replication",  # a replication stream: after `rows` messages
)
POINTS = STARTUP_POINTS + STATEMENT_POINTS + OTHER_POINTS

MALFORMED = (
    "unknown_type",  # a message with a type byte no client knows
    "length_short",  # a length smaller than the body
    "length_long",  # a length larger than the body (the client waits for bytes that never come)
    "length_negative",
    "length_huge",  # 0x7fffffff
    "field_count",  # a DataRow with one field more than RowDescription
    "field_past_end",  # a DataRow field length pointing past the message end
    "bad_utf8",  # a DataRow with invalid UTF-8 in every text field
    "bad_ready_status",  # ReadyForQuery with status 'X'
    "wrong_tag",  # CommandComplete with a tag that does not fit the statement
    "param_count",  # ParameterDescription with one parameter more than the statement has
)
# where a malformed message goes when `at` is not given
MALFORMED_POINT = {
    "field_count": "after_row_description",
    "field_past_end": "after_row_description",
    "bad_utf8": "after_row_description",
    "bad_ready_status": "before_ready_for_query",
    "wrong_tag": "before_command_complete",
    "param_count": "describe",
}
# framing stays valid after these: the connection goes on
MALFORMED_KEEPS_CONNECTION = frozenset({"bad_utf8", "wrong_tag", "param_count", "field_count"})

AUTH_FAULTS = ("bad_server_signature", "skip_sasl_final", "unsupported_method", "fixed_nonce", "fixed_salt")

ACTIONS = (
    "close", "reset", "hang", "delay", "dribble", "slice", "cut", "garbage", "malformed", "error",
    "fatal", "notice", "parameter_status", "notification", "skip_ready", "too_many_clients",
    "refuse_new", "auth", "send",
)
TRIGGER_KEYS = ("query", "regex", "message", "connection", "user", "first", "nth", "every", "after",
                "probability", "seed")
OTHER_KEYS = ("at", "rows", "after_rows", "then", "name")

# frontend message names accepted by `message:` (type letters are accepted too)
MESSAGE_TYPES = {
    "query": "Q", "parse": "P", "bind": "B", "describe": "D", "execute": "E", "sync": "S", "flush": "H",
    "close": "C", "terminate": "X", "copydata": "d", "copydone": "c", "copyfail": "f", "functioncall": "F",
}


class FaultSpecError(ValueError):
    """A fault plan that cannot be understood; the message names where and which key."""


@dataclass(frozen=True)
class Delay:
    """fixed seconds, uniform [low, high], or lognormal (mu, sigma of the underlying normal, in seconds)."""

    kind: str = "fixed"
    a: float = 0.0
    b: float = 0.0

    def sample(self, rng) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return rng.lognormvariate(self.a, self.b)
        return self.a


@dataclass(frozen=True)
class Trigger:
    query: str | None = None
    regex: str | None = None
    message: str | None = None  # a frontend type letter
    connection: int | None = None  # the Nth connection of the server (1-based)
    user: str | None = None
    first: int | None = None
    nth: tuple = ()
    every: int | None = None
    after: int | None = None
    probability: float | None = None
    seed: int | None = None

    @property
    def counted(self) -> bool:
        return bool(self.first or self.nth or self.every or self.after is not None or self.probability is not None)


@dataclass(frozen=True, eq=False)
class FaultPlan:
    """One fault: `action` (+ `value`) at point `at` (after `rows` rows) when `trigger` fires.

    eq=False: each plan keeps its own counters (two equal-looking plans count separately).
    """

    action: str
    value: Any = True
    at: str = "before_reply"
    rows: int = 0
    trigger: Trigger = field(default_factory=Trigger)
    then: str | None = None  # after a malformed message / missing ReadyForQuery: "close" | "continue"
    name: str | None = None
    source: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.action}@{self.at}" + (f"({self.source})" if self.source else "")


def _int(v, key: str, where: str, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise FaultSpecError(f"{where}: `{key}` must be an integer >= {minimum}, got {v!r}")
    return v


def _num(v, key: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise FaultSpecError(f"{where}: `{key}` must be a number of seconds >= 0, got {v!r}")
    return float(v)


def _error(v, where: str, severity: str) -> PgError:
    if isinstance(v, PgError):
        return v
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        code = _sqlstate(str(v), where)
        return PgError(code, _DEFAULT_MESSAGES.get(code, f"fakepm fault {code}"), severity=severity)
    if isinstance(v, dict):
        d = dict(v)
        if "code" not in d:
            raise FaultSpecError(f"{where}: an error needs `code` (a SQLSTATE such as 40001), got {v!r}")
        d.setdefault("severity", severity)
        code = _sqlstate(str(d.pop("code")), where)
        msg = d.pop("message", _DEFAULT_MESSAGES.get(code, f"fakepm fault {code}"))
        try:
            return PgError(code, msg, **d)
        except TypeError as e:
            raise FaultSpecError(f"{where}: bad error fields {v!r}: {e}") from None
    raise FaultSpecError(f"{where}: an error is a SQLSTATE string or a mapping with code/message, got {v!r}")


def _sqlstate(code: str, where: str) -> str:
    from ..protocol.errors import resolve_sqlstate

    try:
        return resolve_sqlstate(code)
    except ValueError as e:
        raise FaultSpecError(f"{where}: {e}") from None


# PostgreSQL's wording for the errors a fault is most often asked for
_DEFAULT_MESSAGES = {
    "40001": "could not serialize access due to concurrent update",
    "40P01": "deadlock detected",
    "57P01": "terminating connection due to administrator command",
    "53300": "sorry, too many clients already",
    "08P01": "protocol violation",
    "57014": "canceling statement due to user request",
    "08006": "connection failure",
}


def _delay(v, where: str) -> Delay:
    if isinstance(v, Delay):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return Delay("fixed", _num(v, "delay", where))
    if isinstance(v, dict) and len(v) == 1:
        (kind, arg), = v.items()
        if kind == "fixed":
            return Delay("fixed", _num(arg, "delay.fixed", where))
        if kind == "uniform" and isinstance(arg, (list, tuple)) and len(arg) == 2:
            lo, hi = (_num(x, "delay.uniform", where) for x in arg)
            if hi < lo:
                raise FaultSpecError(f"{where}: delay.uniform [low, high] has high < low: {arg!r}")
            return Delay("uniform", lo, hi)
        if kind == "lognormal" and isinstance(arg, dict) and set(arg) <= {"mu", "sigma"}:
            mu, sigma = arg.get("mu", -3.0), arg.get("sigma", 0.5)
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (mu, sigma)) or sigma < 0:
                raise FaultSpecError(f"{where}: delay.lognormal needs numbers mu and sigma >= 0, got {arg!r}")
            return Delay("lognormal", float(mu), float(sigma))
    raise FaultSpecError(
        f"{where}: `delay` is seconds, {{fixed: s}}, {{uniform: [low, high]}} or {{lognormal: {{mu, sigma}}}}, got {v!r}"
    )


def _action_value(action: str, v, where: str, data: dict):
    if action in ("close", "reset", "too_many_clients", "refuse_new"):
        if v is not True:
            raise FaultSpecError(f"{where}: `{action}` takes `true`, got {v!r}")
        return True
    if action == "hang":
        return _num(v, "hang", where) if v is not True else 5.0
    if action == "skip_ready":
        return _num(v, "skip_ready", where) if v is not True else 2.0  # how long to hang before closing
    if action == "delay":
        return _delay(v, where)
    if action == "dribble":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"seconds": _num(v, "dribble", where), "by": "rows"}
        if isinstance(v, dict) and set(v) <= {"seconds", "by", "pieces"}:
            by = v.get("by", "rows")
            if by not in ("rows", "bytes"):
                raise FaultSpecError(f"{where}: dribble.by is rows or bytes, got {by!r}")
            return {"seconds": _num(v.get("seconds", 1.0), "dribble.seconds", where), "by": by,
                    "pieces": _int(v.get("pieces", 16), "dribble.pieces", where, 1)}
        raise FaultSpecError(f"{where}: `dribble` is seconds or {{seconds, by: rows|bytes, pieces}}, got {v!r}")
    if action == "slice":
        if isinstance(v, (list, tuple)) and v:
            offs = sorted({_int(x, "slice", where, 1) for x in v})
            return {"offsets": tuple(offs)}
        if isinstance(v, dict) and set(v) <= {"every", "limit"}:
            return {"every": _int(v.get("every", 1), "slice.every", where, 1),
                    "limit": _int(v.get("limit", 4096), "slice.limit", where, 1)}
        raise FaultSpecError(f"{where}: `slice` is a list of byte offsets or {{every: n, limit: bytes}}, got {v!r}")
    if action == "cut":
        return _int(v, "cut", where, 0)
    if action == "garbage":
        return _int(v if v is not True else 64, "garbage", where, 1)
    if action == "malformed":
        if v not in MALFORMED:
            raise FaultSpecError(f"{where}: unknown malformed kind {v!r}; one of {', '.join(MALFORMED)}")
        return v
    if action == "error":
        return _error(v, where, "ERROR")
    if action == "fatal":
        return _error(v, where, "FATAL")
    if action == "notice":
        if isinstance(v, str):
            return PgError("00000", v, severity="NOTICE")
        e = _error(v, where, "NOTICE")
        return e
    if action == "parameter_status":
        if isinstance(v, dict) and len(v) == 1:
            (k, val), = v.items()
            return (str(k), str(val))
        raise FaultSpecError(f"{where}: `parameter_status` is one {{name: value}}, got {v!r}")
    if action == "notification":
        if isinstance(v, str):
            return (v, "")
        if isinstance(v, dict) and "channel" in v and set(v) <= {"channel", "payload", "pid"}:
            return (str(v["channel"]), str(v.get("payload", "")))
        raise FaultSpecError(f"{where}: `notification` is a channel or {{channel, payload}}, got {v!r}")
    if action == "send":  # raw backend bytes (a hex string in YAML), then close unless `then: continue`
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        if isinstance(v, str):
            try:
                return bytes.fromhex(v)
            except ValueError:
                raise FaultSpecError(f"{where}: `send` is bytes or a hex string, got {v!r}") from None
        raise FaultSpecError(f"{where}: `send` is bytes or a hex string, got {v!r}")
    if action == "auth":
        kinds = v if isinstance(v, (list, tuple)) else [v]
        for k in kinds:
            if k not in AUTH_FAULTS:
                raise FaultSpecError(f"{where}: unknown auth fault {k!r}; one of {', '.join(AUTH_FAULTS)}")
        return tuple(kinds)
    raise FaultSpecError(f"{where}: unknown action {action!r}")  # pragma: no cover


def _default_point(action: str, value, trig: Trigger, rows_given: bool) -> str:
    if rows_given:
        return "after_rows"
    if action in ("auth", "too_many_clients", "refuse_new"):
        return "startup"
    if action == "malformed":
        return MALFORMED_POINT.get(value, "before_reply")
    if action == "skip_ready":
        return "before_ready_for_query"
    if action == "dribble":
        return "after_rows" if value["by"] == "rows" else "before_reply"
    if trig.message is not None:
        return "message"
    if action in ("notice", "parameter_status", "notification"):
        return "after_rows"
    return "before_reply"


def parse_fault(data: Any, where: str = "fault") -> FaultPlan:
    """A FaultPlan from its plain mapping form (YAML / keyword arguments). FaultPlans pass through."""
    if isinstance(data, FaultPlan):
        return data
    if isinstance(data, str):
        data = {data: True}  # `fault: close` / `fault: reset`
    if not isinstance(data, dict):
        raise FaultSpecError(f"{where}: a fault is a mapping such as {{error: '40001', first: 2}}, got {data!r}")
    known = set(ACTIONS) | set(TRIGGER_KEYS) | set(OTHER_KEYS)
    for k in data:
        if k not in known:
            import difflib

            close = difflib.get_close_matches(str(k), sorted(known), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else f" (actions: {', '.join(ACTIONS)})"
            raise FaultSpecError(f"{where}: unknown fault key {k!r}{hint}")
    actions = [k for k in data if k in ACTIONS]
    if len(actions) != 1:
        what = "no action" if not actions else f"several actions ({', '.join(actions)})"
        raise FaultSpecError(f"{where}: a fault needs exactly one action, got {what}; actions: {', '.join(ACTIONS)}")
    action = actions[0]
    value = _action_value(action, data[action], where, data)
    trig = _trigger(data, where)
    rows_given = "rows" in data or "after_rows" in data
    rows = _int(data.get("after_rows", data.get("rows", 0)), "after_rows", where, 0)
    at = data.get("at")
    if at is None:
        at = _default_point(action, value, trig, rows_given)
    elif at not in POINTS:
        import difflib

        close = difflib.get_close_matches(str(at), POINTS, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else f"; points: {', '.join(POINTS)}"
        raise FaultSpecError(f"{where}: unknown point `at: {at}`{hint}")
    if at == "message" and trig.message is None:
        raise FaultSpecError(f"{where}: `at: message` needs `message:` (a frontend message type such as Sync or Q)")
    then = data.get("then")
    if then not in (None, "close", "continue"):
        raise FaultSpecError(f"{where}: `then` is close or continue, got {then!r}")
    name = data.get("name")
    return FaultPlan(action=action, value=value, at=at, rows=rows, trigger=trig, then=then,
                     name=str(name) if name is not None else None, source=where)


def _trigger(data: dict, where: str) -> Trigger:
    kw: dict = {}
    for k in ("query", "regex", "user"):
        if k in data:
            if not isinstance(data[k], str) or not data[k].strip():
                raise FaultSpecError(f"{where}: `{k}` must be a non-empty string, got {data[k]!r}")
            kw[k] = data[k]
    if "regex" in kw:
        try:
            re.compile(kw["regex"])
        except re.error as e:
            raise FaultSpecError(f"{where}: bad regex {kw['regex']!r}: {e}") from None
    if "message" in data:
        mt = data["message"]
        letter = MESSAGE_TYPES.get(str(mt).lower().replace("_", ""), mt if isinstance(mt, str) and len(mt) == 1 else None)
        if letter is None:
            raise FaultSpecError(f"{where}: unknown frontend message type {mt!r}; "
                                 f"one of {', '.join(sorted(MESSAGE_TYPES))} or a type letter")
        kw["message"] = letter
    for k in ("connection", "first", "every", "after"):
        if k in data:
            kw[k] = _int(data[k], k, where, 0 if k == "after" else 1)
    if "nth" in data:
        v = data["nth"]
        items = v if isinstance(v, (list, tuple)) else [v]
        kw["nth"] = tuple(sorted({_int(x, "nth", where, 1) for x in items}))
    if "probability" in data:
        p = data["probability"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise FaultSpecError(f"{where}: `probability` must be between 0 and 1, got {p!r}")
        kw["probability"] = float(p)
    if "seed" in data:
        kw["seed"] = _int(data["seed"], "seed", where, 0)
    counters = [k for k in ("first", "nth", "every", "after", "probability") if k in kw]
    if len(counters) > 1:
        raise FaultSpecError(f"{where}: use one of first/nth/every/after/probability, got {', '.join(counters)}")
    return Trigger(**kw)
