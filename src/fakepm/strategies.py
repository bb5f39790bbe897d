"""Hypothesis strategies for fuzzing PostgreSQL clients and fakepm itself (no server needed).

    from fakepm import strategies as pgst
    pgst.values("numeric")                      # natural values a column of that type can hold
    pgst.rows({"id": "int4", "name": "text"})   # lists of rows for those columns
    pgst.fault_plans()                          # dicts accepted by pg.fault() / `fault:`
    pgst.backend_streams()                      # bytes a broken server might send
    pgst.frontend_bytes()                       # bytes a broken client might send

Types come from the one registry (protocol/types.py REGISTRY); `registered_type_names()`
lists the types `values()` knows (every registered type except pseudo-types).
Importing this module needs `hypothesis` (a test dependency), not a running server.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import struct

from hypothesis import strategies as st

from .faults.plan import AUTH_FAULTS, MALFORMED, parse_fault
from .protocol import malformed as bad
from .protocol import messages as m
from .protocol.errors import PgError
from .protocol.types import REGISTRY, PgType

__all__ = [
    "values", "rows", "registered_type_names", "fault_plans", "query_fault_plans", "backend_streams",
    "malformed_messages", "frontend_bytes", "frontend_messages",
]

# pseudo-types hold no user values
_SKIP = {"unknown", "void", "record", "_record", "cstring", "_cstring", "aclitem", "_aclitem"}

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_i32 = st.integers(-(2**31), 2**31 - 1)
_u32 = st.integers(0, 2**32 - 1)
_UTC = dt.timezone.utc


def _tz():
    return st.integers(-14 * 60, 14 * 60).map(lambda mins: dt.timezone(dt.timedelta(minutes=mins)))


def _json():
    # top level is a list or an object: a Python str is read as JSON text by the codec
    scalars = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | _text
    nested = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
                          max_leaves=8)
    return st.lists(nested, max_size=3) | st.dictionaries(_text, nested, max_size=3)


def _base(name: str):
    """A strategy for one scalar type name (None when the type is not covered)."""
    n = name
    if n == "bool":
        return st.booleans()
    if n == "int2":
        return st.integers(-(2**15), 2**15 - 1)
    if n == "int4":
        return _i32
    if n in ("int8", "xid8"):
        return st.integers(-(2**63), 2**63 - 1) if n == "int8" else st.integers(0, 2**63 - 1)
    if n in ("oid", "xid", "cid", "regclass", "regtype", "regproc", "regprocedure", "regoper",
             "regnamespace", "regrole"):
        return _u32
    if n == "float4":
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if n == "float8":
        return st.floats(allow_nan=True, allow_infinity=True)
    if n == "numeric":
        return st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**20),
                           max_value=10**20) | st.just(decimal.Decimal("NaN"))
    if n in ("text", "varchar", "bpchar", "xml"):
        return _text if n != "xml" else _text.map(lambda s: "<a>" + s.replace("<", "").replace("&", "") + "</a>")
    if n == "name":
        return st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=63)
    if n == "char":
        return st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    if n == "bytea":
        return st.binary(max_size=64)
    if n == "date":
        return st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
    if n == "time":
        return st.times()
    if n == "timetz":
        return st.builds(lambda t, z: t.replace(tzinfo=z), st.times(), _tz())
    if n == "timestamp":
        return st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30))
    if n == "timestamptz":
        return st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30), timezones=st.just(_UTC))
    if n == "interval":
        return st.timedeltas(dt.timedelta(days=-10**6), dt.timedelta(days=10**6))
    if n == "uuid":
        return st.uuids()
    if n in ("json", "jsonb"):
        return _json()
    if n == "inet":
        return st.ip_addresses()
    if n == "cidr":
        return st.builds(lambda a, p: ipaddress.ip_network(f"{a}/{p}", strict=False), st.ip_addresses(v=4),
                         st.integers(0, 32))
    if n == "pg_lsn":
        return st.integers(0, 2**64 - 1)
    if n in ("int2vector", "oidvector"):
        return st.lists(st.integers(0, 2**15 - 1), max_size=4)
    return None


def registered_type_names() -> list[str]:
    """The registered types `values()` generates (arrays included)."""
    out = []
    for t in REGISTRY:
        if t.name in _SKIP:
            continue
        base = t.elem if t.is_array else t
        if t.is_array and base.name in ("int2vector", "oidvector"):
            continue  # their values are lists already: arrays of them are ambiguous nested lists
        if base is not None and _base(base.name) is not None:
            out.append(t.name)
    return sorted(set(out))


def values(type_spec: "str | PgType", *, nulls: bool = False):
    """Natural Python values of a registered type (arrays: nested lists, 1-2 dimensions)."""
    t = type_spec if isinstance(type_spec, PgType) else REGISTRY.by_name(type_spec)
    if t.is_array:
        elem = t.elem
        inner = _base(elem.name)
        if inner is None:
            raise ValueError(f"no strategy for array element type {elem.name!r}")
        one = st.lists(inner | st.none(), max_size=4)
        two = st.integers(1, 3).flatmap(lambda w: st.lists(st.lists(inner, min_size=w, max_size=w), min_size=1,
                                                            max_size=3))
        s = one | two
    else:
        s = _base(t.name)
        if s is None:
            raise ValueError(f"no strategy for type {t.name!r}; covered: {', '.join(registered_type_names())}")
    return (s | st.none()) if nulls else s


def rows(columns, *, min_size: int = 0, max_size: int = 20, nulls: bool = True):
    """Lists of rows (tuples) for columns given as {name: type} or [(name, type)]."""
    items = list(columns.items()) if isinstance(columns, dict) else list(columns)
    row = st.tuples(*(values(t, nulls=nulls) for _, t in items))
    return st.lists(row, min_size=min_size, max_size=max_size)


# ------------------------------------------------------------------------------ fault plans
_SQLSTATES = ("40001", "40P01", "57P01", "53300", "08P01", "57014", "22012", "42P01")


def _trigger():
    return st.one_of(
        st.just({}),
        st.integers(1, 3).map(lambda n: {"first": n}),
        st.integers(1, 3).map(lambda n: {"nth": n}),
        st.integers(1, 3).map(lambda n: {"every": n}),
        st.tuples(st.floats(0, 1), st.integers(0, 99)).map(lambda x: {"probability": x[0], "seed": x[1]}),
    )


def query_fault_plans(*, max_delay: float = 0.05, max_hang: float = 0.3, exclude=()):
    """Plans (as dicts) that break the answer to a query: everything a driver should survive
    by raising an exception or returning rows; all waits bounded by max_delay/max_hang.
    `exclude`: action names to leave out (e.g. ("garbage",) for a driver that cannot take it)."""
    rows_at = st.integers(0, 3)
    action = st.one_of(
        st.just({"close": True}),
        st.just({"reset": True}),
        st.floats(0.01, max_hang).map(lambda s: {"hang": round(s, 3)}),
        st.floats(0, max_delay).map(lambda s: {"delay": round(s, 3)}),
        st.tuples(st.floats(0, max_delay), st.floats(0, max_delay)).map(
            lambda ab: {"delay": {"uniform": [round(min(ab), 3), round(max(ab), 3)]}}),
        st.floats(0, max_delay).map(lambda s: {"dribble": round(s, 3)}),
        st.floats(0, max_delay).map(lambda s: {"dribble": {"seconds": round(s, 3), "by": "bytes", "pieces": 4}}),
        st.lists(st.integers(1, 60), min_size=1, max_size=4).map(lambda o: {"slice": o}),
        st.integers(0, 80).map(lambda n: {"cut": n}),
        st.tuples(st.integers(1, 64), st.integers(0, 2**16)).map(lambda x: {"garbage": x[0], "seed": x[1]}),
        st.sampled_from([k for k in MALFORMED if k != "param_count"]).map(lambda k: {"malformed": k}),
        st.sampled_from(_SQLSTATES).map(lambda c: {"error": c}),
        st.sampled_from(_SQLSTATES).map(lambda c: {"fatal": c}),
        st.just({"notice": "fakepm surprise"}),
        st.just({"parameter_status": {"application_name": "surprise"}}),
        st.just({"notification": {"channel": "fakepm", "payload": "surprise"}}),
        st.floats(0.01, max_hang).map(lambda s: {"skip_ready": round(s, 3)}),
    )

    def place(d, r, trig):
        d = dict(d)
        if "seed" in d and "seed" in trig:
            trig = {k: v for k, v in trig.items() if k != "seed"}  # one seed: the garbage's
            trig.pop("probability", None)
        d.update(trig)
        if "error" in d or "fatal" in d or "notice" in d or "parameter_status" in d or "notification" in d:
            d["after_rows"] = r
        return d

    if exclude:
        action = action.filter(lambda d: not set(d) & set(exclude))
    return st.builds(place, action, rows_at, _trigger())


def fault_plans(*, max_delay: float = 0.05, max_hang: float = 0.3):
    """Any plan dict (query faults, plus startup and auth faults), valid for parse_fault()."""
    startup = st.one_of(
        st.sampled_from(["before_ssl_answer", "after_ssl_answer", "startup", "before_auth_ok",
                         "before_backend_key_data"]).flatmap(
            lambda at: st.sampled_from([{"close": True}, {"reset": True}, {"fatal": "57P01"},
                                        {"delay": min(0.01, max_delay)}]).map(lambda a: {**a, "at": at})),
        st.just({"too_many_clients": True}),
        st.sampled_from(AUTH_FAULTS).map(lambda k: {"auth": k}),
    )
    return query_fault_plans(max_delay=max_delay, max_hang=max_hang) | startup


def plans(strategy=None):
    """FaultPlan objects instead of dicts."""
    return (strategy or fault_plans()).map(lambda d: parse_fault(d, "strategy"))


# ------------------------------------------------------------------------------ byte streams
_I32 = struct.Struct("!i")


def _valid_backend_message():
    return st.one_of(
        st.just(m.READY["I"]),
        st.lists(st.binary(max_size=8) | st.none(), max_size=4).map(m.data_row),
        _text.map(lambda s: m.command_complete("SELECT " + str(len(s)))),
        st.sampled_from(_SQLSTATES).map(lambda c: m.error_response(PgError(c, "fuzz"))),
        st.tuples(_text, _text).map(lambda kv: m.parameter_status(*kv)),
    )


def malformed_messages():
    """One broken backend message of each MALFORMED kind (bytes)."""
    return st.tuples(st.sampled_from(MALFORMED), st.integers(0, 4)).map(
        lambda x: bad.build(x[0], ncolumns=x[1], type_oids=(23,) * x[1]))


def backend_streams():
    """A backend byte stream: valid messages with one malformed message or random bytes
    spliced in, optionally cut short."""
    return st.builds(
        lambda before, broken, after, cut: (b"".join(before) + broken + b"".join(after))[: cut or None],
        st.lists(_valid_backend_message(), max_size=4),
        malformed_messages() | st.binary(min_size=1, max_size=16),
        st.lists(_valid_backend_message(), max_size=3),
        st.none() | st.integers(1, 200),
    )


def _startup_packet():
    def build(params):
        body = _I32.pack(196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
        return _I32.pack(len(body) + 4) + body

    key = st.sampled_from(["user", "database", "application_name", "options", "replication", "client_encoding"])
    name = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)
    return st.lists(st.tuples(key, name), max_size=4).map(lambda ps: build([("user", "fuzz")] + ps))


def frontend_messages():
    """One tagged frontend message, well framed but with arbitrary content."""
    return st.one_of(
        _text.map(lambda s: m.frame(b"Q", s.encode() + b"\0")),
        st.tuples(st.sampled_from(b"QPBDESHCXFdcfp"), st.binary(max_size=40)).map(
            lambda x: m.frame(bytes([x[0]]), x[1])),
        st.just(m.frame(b"S", b"")),
        st.just(m.frame(b"P", b"\0SELECT 1\0\0\0")),
    )


def frontend_bytes():
    """What a broken client might send: raw bytes, or a real startup packet followed by
    messages with arbitrary content, arbitrary lengths and arbitrary splits."""
    tagged = st.lists(frontend_messages() | st.binary(max_size=24), max_size=6).map(b"".join)
    after_startup = st.builds(lambda sp, rest: sp + rest, _startup_packet(), tagged)
    raw = st.binary(max_size=64)
    special = st.sampled_from([
        _I32.pack(8) + _I32.pack(80877103),  # SSLRequest
        _I32.pack(8) + _I32.pack(80877104),  # GSSENCRequest
        _I32.pack(16) + _I32.pack(80877102) + b"\0\0\0\1\0\0\0\2",  # CancelRequest
        _I32.pack(0x7FFFFFFF),  # huge startup length
        _I32.pack(-1),
    ]).flatmap(lambda p: st.binary(max_size=24).map(lambda tail: p + tail))
    return st.one_of(raw, after_startup, special)
