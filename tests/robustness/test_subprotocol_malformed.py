"""Malformed frontend messages inside every sub-protocol get PostgreSQL's answer, never XX000.

Each case drives an in-process Session into a sub-protocol -- COPY IN, COPY both (a scripted
rule), a replication stream (START_REPLICATION), the main loop with FunctionCall -- then feeds
frames hypothesis makes: the messages that sub-protocol takes, cut short, padded, without
their string terminator, with invalid UTF-8, with absurd lengths, and other message types.
No internal error may be journaled, no ErrorResponse may carry XX000, and a connection fakepm
ends is ended the way PostgreSQL ends it (a FATAL, or -- for the walsender's unknown standby
messages and unreadable lengths -- no word, as PostgreSQL's COMMERROR).

The exact answers for the cases PostgreSQL 15 was asked about (tests/robustness/
test_subprotocol_vs_realpg.py compares them live) are pinned at the end.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.fuzz import backend_messages, error_fields

_I32 = struct.Struct("!i")


def frame(t: bytes, body: bytes) -> bytes:
    return t + _I32.pack(len(body) + 4) + body


def startup(**params) -> bytes:
    params = {"user": "fuzz", "database": "postgres", **params}
    body = _I32.pack(196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return _I32.pack(len(body) + 4) + body


def query(sql: str) -> bytes:
    return frame(b"Q", sql.encode() + b"\0")


def _server() -> FakePostgres:
    pg = FakePostgres()  # never started: sessions are driven in-process
    pg.table("t", {"a": "int4", "b": "text"})
    pg.on("COPY both_t FROM STDIN").copy_both(script=[{"recv": None}, {"send": b"hello"}, {"recv": None}])
    return pg


_PG = _server()

# -- what hypothesis sends inside a sub-protocol -----------------------------------------------
_junk = st.binary(max_size=40)
_text_bytes = st.one_of(st.just(b""), st.just(b"oops"), st.just(b"\xff\xfe"), st.just(b"caf\xc3\xa9"),
                        st.just(b"\xe2\x28\xa1"), _junk)


def _with_terminator(b: bytes, how: int) -> bytes:
    return (b + b"\0", b, b + b"\0" + b"tail", b"\0" + b)[how]


_string_body = st.builds(_with_terminator, _text_bytes, st.integers(0, 3))
_standby = st.one_of(
    st.builds(lambda n, extra: b"r" + bytes(n) + extra, st.integers(0, 40), _junk),
    st.builds(lambda n, extra: b"h" + bytes(n) + extra, st.integers(0, 30), _junk),
    st.sampled_from([b"", b"z", b"k" + bytes(17), b"w" + bytes(30)]),
    _junk,
)
_function_call = st.one_of(
    _junk,
    st.builds(lambda oid, nf, na, rest: struct.pack("!ih", oid, nf) + struct.pack("!h", na) + rest,
              st.integers(-(2**31), 2**31 - 1), st.integers(-2, 3), st.integers(-2, 3), _junk),
)


def _message(types: bytes, bodies):
    return st.tuples(st.sampled_from([bytes([t]) for t in types]), bodies).map(lambda x: frame(*x))


def _bad_length():
    """A header whose length PostgreSQL refuses (below 4, or beyond the limit)."""
    return st.tuples(st.sampled_from([b"d", b"f", b"c", b"F", b"Q"]),
                     st.sampled_from([0, 1, 3, -1, 2**31 - 1])).map(lambda x: x[0] + _I32.pack(x[1]))


_copy_in_frames = st.lists(st.one_of(
    _message(b"d", st.sampled_from([b"1\tx\n", b"2\ty", b"\n", b"\\.\n", b"x\ty\tz\n", b"\xff\n"]) | _junk),
    _message(b"f", _string_body),
    _message(b"cSH", st.just(b"") | _junk),
    _message(b"QPBEXz\x00F", _junk),
    _bad_length(),
), max_size=6)

_copy_both_frames = st.lists(st.one_of(
    _message(b"d", _junk),
    _message(b"f", _string_body),
    _message(b"cSH", st.just(b"") | _junk),
    _message(b"QPz", _junk),
    _bad_length(),
), max_size=6)

_replication_frames = st.lists(st.one_of(
    _message(b"d", _standby),
    _message(b"c", st.just(b"") | _junk),
    _message(b"fQSHz", _junk),
    _bad_length(),
), max_size=5)

_main_loop_frames = st.lists(st.one_of(
    _message(b"F", _function_call),
    _message(b"QPBDECSH", _string_body | _junk),
), max_size=5)

# -- checking ----------------------------------------------------------------------------------
_END_REASONS = ("client sent Terminate", "client sent Terminate during COPY", "check over")


def _drive(setup: list[bytes], frames: list[bytes], splits: list[int], *, silent_ok: bool = False) -> list:
    """Feed setup then frames (cut at `splits`); assert fakepm answered like PostgreSQL would."""
    pg = _PG
    pg.journal.clear()
    s = pg._make_session(("127.0.0.1", 5432), False)
    out = []
    try:
        for part in setup:
            s.receive(part, 0.0)
            out.append(s.data_to_send())
        assert not s.closed, f"setup failed: {s.close_reason}: {b''.join(out)[-300:]!r}"
        data = b"".join(frames)
        pos = 0
        for cut in sorted(splits) + [len(data)]:
            if cut > pos:
                s.receive(data[pos:cut], 0.0)
                out.append(s.data_to_send())
                pos = cut
            if s.closed:
                break
        internal = [e for e in pg.journal.events if e["kind"] == "internal_error"]
        assert not internal, internal[0]["error"]
        msgs = backend_messages(b"".join(out)[1:] if out and out[0][:1] in (b"N", b"S") else b"".join(out))
        for t, body in msgs:
            if t in (b"E", b"N"):
                f = error_fields(body)
                assert f.get("C") != "XX000" and "Traceback" not in f.get("M", ""), f
                assert f.get("S") in ("ERROR", "FATAL", "NOTICE", "WARNING", "INFO", "LOG", "DEBUG"), f
        if s.closed and s.close_reason not in _END_REASONS:
            if silent_ok and (not msgs or msgs[-1][0] != b"E"):
                return msgs
            assert msgs and msgs[-1][0] == b"E", f"closed ({s.close_reason}) without an ErrorResponse"
            assert error_fields(msgs[-1][1]).get("S") == "FATAL", error_fields(msgs[-1][1])
        return msgs
    finally:
        s.close("check over")


_COPY_IN = [startup(), query("COPY t FROM STDIN")]
_COPY_BOTH = [startup(), query("COPY both_t FROM STDIN")]
_REPLICATION = [startup(replication="database"), query("CREATE_REPLICATION_SLOT fz TEMPORARY LOGICAL pgoutput"),
                query("START_REPLICATION SLOT fz LOGICAL 0/0 (proto_version '1', publication_names 'p')")]
_MAIN = [startup()]
_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_splits = st.lists(st.integers(0, 120), max_size=3)


@_settings
@given(frames=_copy_in_frames, splits=_splits)
def test_copy_in_malformed_messages(frames, splits):
    _drive(_COPY_IN, frames, splits)


@_settings
@given(frames=_copy_both_frames, splits=_splits)
def test_copy_both_malformed_messages(frames, splits):
    _drive(_COPY_BOTH, frames, splits)


@_settings
@given(frames=_replication_frames, splits=_splits)
def test_replication_feedback_malformed_messages(frames, splits):
    _drive(_REPLICATION, frames, splits, silent_ok=True)


@_settings
@given(frames=_main_loop_frames, splits=_splits)
def test_function_call_and_main_loop_malformed_messages(frames, splits):
    _drive(_MAIN, frames, splits)


# -- what PostgreSQL 15 answers (asked with raw sockets; see the module docstring) --------------
def _answer(setup, frames, silent_ok=False) -> list[str]:
    msgs = _drive(setup, frames, [], silent_ok=silent_ok)
    start = sum(1 for _ in backend_messages(b"".join(_setup_output(setup))))
    out = []
    for t, body in msgs[start:]:
        if t == b"E":
            f = error_fields(body)
            out.append(f"{f['S']} {f['C']} {f['M']}" + (f" [{f['W']}]" if "W" in f else ""))
        elif t == b"Z":
            out.append("Z" + body.decode())
        elif t == b"C":
            out.append("C " + body[:-1].decode())
    return out


def _setup_output(setup) -> list[bytes]:
    pg = _PG
    s = pg._make_session(("127.0.0.1", 5432), False)
    out = []
    try:
        for part in setup:
            s.receive(part, 0.0)
            out.append(s.data_to_send())
    finally:
        s.close("check over")
    return out


def test_copy_in_answers_match_postgresql_15():
    row = frame(b"d", b"1\tx\n")
    cases = [
        ([row, frame(b"f", b"oops")], ["ERROR 08P01 invalid string in message [COPY t, line 2]", "ZI"]),
        ([row, frame(b"f", b"oops\0extra")], ["ERROR 57014 COPY from stdin failed: oops [COPY t, line 2]", "ZI"]),
        ([frame(b"f", b"\xff\xfe\0")],
         ['ERROR 22021 invalid byte sequence for encoding "UTF8": 0xff [COPY t, line 1]', "ZI"]),
        ([frame(b"f", b"")], ["ERROR 08P01 invalid string in message [COPY t, line 1]", "ZI"]),
        ([row, frame(b"c", b"zz")], ["C COPY 1", "ZI"]),
        ([row, frame(b"S", b"zz"), frame(b"c", b"")], ["C COPY 1", "ZI"]),
        ([row, query("SELECT 2")],
         ["ERROR 08P01 unexpected message type 0x51 during COPY from stdin [COPY t, line 2]",
          "FATAL 08P01 terminating connection because protocol synchronization was lost"]),
        ([b"d" + _I32.pack(2)],
         ["ERROR 08006 unexpected EOF on client connection with an open transaction [COPY t, line 1]",
          "FATAL 08P01 terminating connection because protocol synchronization was lost"]),
    ]
    for frames, want in cases:
        assert _answer(_COPY_IN, frames) == want, frames


def test_function_call_and_main_loop_answers_match_postgresql_15():
    cases = [
        (frame(b"F", b""), ["ERROR 08P01 insufficient data left in message", "ZI"]),
        (frame(b"F", _I32.pack(1598)), ["ERROR 08P01 insufficient data left in message", "ZI"]),
        (frame(b"F", struct.pack("!ihhh", 89, 0, 0, 0) + b"xx"), ["ERROR 08P01 invalid message format", "ZI"]),
        (frame(b"Q", b"SELECT 1"), ["ERROR 08P01 invalid string in message", "ZI"]),
        (frame(b"Q", b"SELECT '\xff'\0"), ['ERROR 22021 invalid byte sequence for encoding "UTF8": 0xff', "ZI"]),
        (frame(b"P", b"\0SELECT 1\0") + frame(b"S", b""), ["ERROR 08P01 insufficient data left in message", "ZI"]),
        (frame(b"D", b"Z\0") + frame(b"S", b""), ["ERROR 08P01 invalid DESCRIBE message subtype 90", "ZI"]),
        (frame(b"S", b"x"), ["ERROR 08P01 invalid message format", "ZI"]),
    ]
    for data, want in cases:
        assert _answer(_MAIN, [data]) == want, data


def test_replication_answers_match_postgresql_15():
    status = b"r" + struct.pack("!qqqqB", 1, 1, 1, 0, 0)
    cases = [
        (frame(b"d", status[:11]), ["ERROR 08P01 insufficient data left in message", "ZI"]),
        (frame(b"d", b"h" + bytes(5)), ["ERROR 08P01 insufficient data left in message", "ZI"]),
        (frame(b"d", b""), ["ERROR 08P01 no data left in message", "ZI"]),
        (frame(b"d", b"z123"), []),  # PostgreSQL hangs up without a word
        (frame(b"f", b"boom\0"), ['FATAL 08P01 invalid standby message type "f"']),
        (frame(b"Q", b"SELECT 1\0"), ['FATAL 08P01 invalid standby message type "Q"']),
        (b"d" + _I32.pack(2), []),
    ]
    for data, want in cases:
        got = [x for x in _answer(_REPLICATION, [data], silent_ok=True)]
        assert got == want, data
    # a status update with bytes after it is taken (PostgreSQL never checks the end)
    assert _answer(_REPLICATION, [frame(b"d", status + b"zz")], silent_ok=True) == []
