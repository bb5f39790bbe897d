"""protocol/replication: the CopyBoth sub-protocol (w/k/r/h), LSN and time helpers.

Reference: /work/shared/reference/walsender-behavior.md section 4 and the wal-* captures.
The captures print these messages decoded (field values + length), not as hex, so the
byte-level checks rebuild each message from the printed fields and compare with the
layout of section 4 and the printed length.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakepm.protocol.replication import (
    PG_EPOCH,
    HotStandbyFeedback,
    PrimaryKeepalive,
    StandbyStatusUpdate,
    XLogData,
    decode_replication_message,
    format_lsn,
    from_pg_timestamp,
    parse_lsn,
    to_pg_timestamp,
)

U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
U32 = st.integers(0, 2**32 - 1)


def ts(text: str) -> int:
    return to_pg_timestamp(datetime.fromisoformat(text))


# --------------------------------------------------------------------------- LSNs


@pytest.mark.parametrize(
    "lsn, text",
    [
        (0, "0/0"),
        (0x16B374D848, "16/B374D848"),
        (0x154BC48, "0/154BC48"),  # wal-a1 line 66 walEnd=0/154BC48
        (0xFFFFFFFFFFFFFFFF, "FFFFFFFF/FFFFFFFF"),
        (1 << 32, "1/0"),
    ],
)
def test_format_lsn(lsn, text):
    assert format_lsn(lsn) == text
    assert parse_lsn(text) == lsn


@pytest.mark.parametrize(
    "text, lsn",
    [
        ("0/0", 0),
        ("0/00000000", 0),  # psycopg2's START_REPLICATION form (walsender-behavior.md section 3)
        ("16/b374d848", 0x16B374D848),
        ("16/B374D848", 0x16B374D848),
        ("00000016/0000000A", 0x160000000A),
    ],
)
def test_parse_lsn_accepts(text, lsn):
    assert parse_lsn(text) == lsn


@pytest.mark.parametrize(
    "bad", ["", "0", "/0", "0/", "0//0", " 0/0", "0/0 ", "0x1/0", "123456789/0", "0/123456789", "g/0", "-1/0", "0/0/0"]
)
def test_parse_lsn_rejects(bad):
    with pytest.raises(ValueError, match="pg_lsn"):
        parse_lsn(bad)


def test_lsn_type_and_range_errors():
    with pytest.raises(ValueError):
        format_lsn(-1)
    with pytest.raises(ValueError):
        format_lsn(2**64)
    with pytest.raises(TypeError):
        format_lsn("0/0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_lsn(0)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(U64)
def test_lsn_round_trip(lsn):
    text = format_lsn(lsn)
    assert parse_lsn(text) == lsn
    assert parse_lsn(text.lower()) == lsn
    hi, lo = text.split("/")
    assert hi == hi.upper() and (hi == "0" or not hi.startswith("0"))
    assert lo == "0" or not lo.startswith("0")


# --------------------------------------------------------------------------- times


def test_pg_epoch():
    assert PG_EPOCH == datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert to_pg_timestamp(PG_EPOCH) == 0
    assert to_pg_timestamp(946_684_800) == 0
    assert to_pg_timestamp(946_684_800.5) == 500_000
    assert to_pg_timestamp(datetime(2000, 1, 1)) == 0  # naive = UTC
    assert from_pg_timestamp(0) == PG_EPOCH
    assert from_pg_timestamp(-1) == PG_EPOCH - timedelta(microseconds=1)


def test_capture_commit_time():
    # wal-a1 lines 71-72: Begin commit_time=2026-11-21T23:06:40.628372+00:00 is 00 03 03 d0 2e a2 b6 94
    raw = int.from_bytes(bytes.fromhex("000303d02ea2b694"), "big")
    assert from_pg_timestamp(raw) == datetime(2026, 11, 21, 23, 6, 40, 628372, tzinfo=timezone.utc)
    assert ts("2026-11-21T23:06:40.628372+00:00") == raw
    other_tz = datetime(2026, 11, 22, 1, 6, 40, 628372, tzinfo=timezone(timedelta(hours=2)))
    assert to_pg_timestamp(other_tz) == raw


def test_time_errors():
    with pytest.raises(ValueError, match="outside the range"):
        from_pg_timestamp(2**63 - 1)  # PostgreSQL 'infinity'
    with pytest.raises(TypeError):
        to_pg_timestamp("2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_pg_timestamp(True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_pg_timestamp(1.5)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_time_round_trip(dt):
    assert from_pg_timestamp(to_pg_timestamp(dt)) == dt


# --------------------------------------------------------------------------- messages from the captures


def test_keepalive_from_capture():
    # wal-a1 line 66: 'k' PrimaryKeepalive walEnd=0/154BC48 sendTime=2026-11-21T23:06:38.622827+00:00 replyRequested=0 [len 18]
    msg = PrimaryKeepalive(parse_lsn("0/154BC48"), ts("2026-11-21T23:06:38.622827+00:00"), False)
    data = msg.encode()
    assert len(data) == 18
    assert data[:9] == bytes.fromhex("6b000000000154bc48")
    assert data[-1] == 0
    assert decode_replication_message(data) == msg
    # wal-a1 line 260: the ping at wal_sender_timeout/2 has replyRequested=1
    ping = PrimaryKeepalive(parse_lsn("0/155A6D0"), ts("2026-11-21T23:06:43.627057+00:00"), True)
    assert ping.encode()[-1] == 1
    assert decode_replication_message(ping.encode()).reply_requested is True


def test_standby_status_update_from_capture():
    # wal-d1 line 24: 'r' write=0/3000000 flush=0/3000000 apply=0/3000000 clock=2026-11-21T23:11:28.473046+00:00 replyRequested=0 [len 34]
    lsn = parse_lsn("0/3000000")
    clock = ts("2026-11-21T23:11:28.473046+00:00")
    msg = StandbyStatusUpdate(lsn, lsn, lsn, clock)
    data = msg.encode()
    assert len(data) == 34
    assert data == b"r" + (bytes.fromhex("0000000003000000") * 3) + clock.to_bytes(8, "big", signed=True) + b"\x00"
    assert decode_replication_message(data) == msg


def test_hot_standby_feedback_from_capture():
    # wal-d1 line 25: 'h' clock=2026-11-21T23:11:28.473197+00:00 xmin=802 epoch=0 catalog_xmin=0 catalog_epoch=0 [len 25]
    clock = ts("2026-11-21T23:11:28.473197+00:00")
    msg = HotStandbyFeedback(clock, 802, 0, 0, 0)
    data = msg.encode()
    assert len(data) == 25
    assert data == b"h" + clock.to_bytes(8, "big", signed=True) + bytes.fromhex("00000322" "00000000" "00000000" "00000000")
    assert decode_replication_message(data) == msg


def test_xlogdata_from_capture():
    # wal-a1 lines 70-72: 'w' walStart=0/154BC48 walEnd=0/154BC48 sendTime=2026-11-21T23:06:40.629389+00:00 [payload 21B]
    # carrying the Begin whose hex is on line 72.
    begin = bytes.fromhex("42 00 00 00 00 01 54 bd b0 00 03 03 d0 2e a2 b6 94 00 00 02 de")
    send = ts("2026-11-21T23:06:40.629389+00:00")
    msg = XLogData(parse_lsn("0/154BC48"), parse_lsn("0/154BC48"), send, begin)
    data = msg.encode()
    assert len(data) == 25 + 21
    assert data[:17] == bytes.fromhex("77" "000000000154bc48" "000000000154bc48")
    assert data[17:25] == send.to_bytes(8, "big", signed=True)
    assert data[25:] == begin
    assert decode_replication_message(data) == msg
    # wal-a1 line 73: Relation messages go out with walStart = walEnd = 0/0
    assert XLogData(0, 0, send, b"R").encode()[1:17] == bytes(16)


def test_xlogdata_physical_and_payload_types():
    # wal-d2 line 83: physical walStart=0/3020000 walEnd=0/30263C8 (walEnd = flush position)
    msg = XLogData(parse_lsn("0/3020000"), parse_lsn("0/30263C8"), 0, bytearray(b"\x10\xd1"))
    assert msg.payload == b"\x10\xd1" and isinstance(msg.payload, bytes)
    assert decode_replication_message(memoryview(msg.encode())) == msg
    assert decode_replication_message(XLogData(1, 2, 3).encode()) == XLogData(1, 2, 3, b"")
    with pytest.raises(TypeError):
        XLogData(0, 0, 0, "text")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty"),
        (b"x" + bytes(17), r"unknown replication message type byte b'x' \(0x78\)"),
        (b"d", "unknown replication message type"),
        (b"k" + bytes(16), r"primary keepalive 'k' must be 18 bytes long, got 17"),
        (b"k" + bytes(18), r"must be 18 bytes long, got 19"),
        (b"r" + bytes(32), r"standby status update 'r' must be 34 bytes long, got 33"),
        (b"h" + bytes(25), r"hot standby feedback 'h' must be 25 bytes long, got 26"),
        (b"w" + bytes(23), r"XLogData 'w' is too short: 24 bytes, need at least 25"),
    ],
)
def test_decode_errors(data, match):
    with pytest.raises(ValueError, match=match):
        decode_replication_message(data)


def test_nonzero_reply_requested_byte_is_true():
    data = PrimaryKeepalive(1, 2).encode()[:-1] + b"\x07"
    assert decode_replication_message(data).reply_requested is True


@pytest.mark.parametrize(
    "msg, field",
    [
        (PrimaryKeepalive(-1, 0), "wal_end"),
        (PrimaryKeepalive(0, 2**63), "send_time"),
        (XLogData(2**64, 0, 0), "wal_start"),
        (StandbyStatusUpdate(0, 0, -5, 0), "apply"),
        (HotStandbyFeedback(0, 2**32, 0, 0, 0), "xmin"),
    ],
)
def test_encode_range_errors(msg, field):
    with pytest.raises(ValueError, match=field):
        msg.encode()


# --------------------------------------------------------------------------- round trips

messages = st.one_of(
    st.builds(XLogData, U64, U64, I64, st.binary(max_size=64)),
    st.builds(PrimaryKeepalive, U64, I64, st.booleans()),
    st.builds(StandbyStatusUpdate, U64, U64, U64, I64, st.booleans()),
    st.builds(HotStandbyFeedback, I64, U32, U32, U32, U32),
)


@settings(max_examples=200)
@given(messages)
def test_round_trip(msg):
    data = msg.encode()
    assert data[:1] == msg.TYPE
    assert decode_replication_message(data) == msg
    if not isinstance(msg, XLogData):
        assert len(data) == msg.SIZE


@settings(max_examples=200)
@given(st.binary(max_size=40))
def test_decoder_never_crashes_unexpectedly(data):
    try:
        decode_replication_message(data)
    except ValueError:
        pass
