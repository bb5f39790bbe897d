"""protocol/framing: the same frames come out whatever way the byte stream is cut (every byte
boundary, one byte at a time, arbitrary chunks), and the size limits reject bad length words
as soon as the header arrives, naming the message."""

import re
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakepm.protocol import messages as m
from fakepm.protocol.framing import MAX_STARTUP_PACKET, FrameReader

STARTUP = [m.SSLRequest().encode(), m.StartupMessage(m.PROTOCOL_3_0, {"user": "alice", "database": "db"}).encode()]
TAGGED = [
    m.Query("SELECT 1; SELECT 2").encode(),
    m.Parse("", "SELECT $1", (23,)).encode(),
    m.Bind("", "", (1,), (b"\x00\x00\x00\x07",), (1,)).encode(),
    m.Describe("P", "").encode(),
    m.Execute("", 0).encode(),
    m.Sync().encode(),
    m.CopyData(b"x" * 300).encode(),
    m.Terminate().encode(),
]
EXPECTED = [(None, s[4:]) for s in STARTUP] + [(t[:1], t[5:]) for t in TAGGED]


def frames_of(chunks, n_untagged=len(STARTUP)):
    """Feed chunks; switch to tagged framing after n_untagged startup packets, as the session does."""
    reader = FrameReader()
    out = []
    for chunk in chunks:
        reader.feed(chunk)
        while True:
            if len(out) == n_untagged:
                reader.expect_tagged()
            frame = reader.next_frame()
            if frame is None:
                break
            out.append(frame)
    assert reader.buffered == 0
    return out


STREAM = b"".join(STARTUP + TAGGED)


def test_whole_stream_at_once():
    assert frames_of([STREAM]) == EXPECTED


def test_one_byte_at_a_time():
    assert frames_of([STREAM[i:i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_every_byte_boundary(cut):
    assert frames_of([STREAM[:cut], STREAM[cut:]]) == EXPECTED


@given(st.lists(st.integers(0, len(STREAM)), max_size=40))
def test_arbitrary_chunks(cuts):
    points = sorted(set(cuts) | {0, len(STREAM)})
    assert frames_of([STREAM[a:b] for a, b in zip(points, points[1:])]) == EXPECTED


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=20), st.data())
def test_arbitrary_copy_data_and_chunks(payloads, data):
    stream = b"".join(m.CopyData(p).encode() for p in payloads)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    points = sorted(set(cuts) | {0, len(stream)})
    got = frames_of([stream[a:b] for a, b in zip(points, points[1:])], n_untagged=0)
    assert got == [(b"d", p) for p in payloads]


def test_incomplete_frame_waits():
    reader = FrameReader()
    reader.expect_tagged()
    q = m.Query("SELECT 1").encode()
    reader.feed(q[:4])  # not even a full header
    assert reader.next_frame() is None
    reader.feed(q[4:-1])
    assert reader.next_frame() is None
    assert reader.buffered == len(q) - 1
    reader.feed(q[-1:])
    assert reader.next_frame() == (b"Q", b"SELECT 1\x00")
    assert reader.next_frame() is None


def test_take_raw_returns_unframed_bytes():
    reader = FrameReader()
    reader.feed(m.SSLRequest().encode() + b"\x16\x03\x01")  # TLS ClientHello bytes right behind
    assert reader.next_frame() == (None, m.SSLRequest().encode()[4:])
    assert reader.take_raw() == b"\x16\x03\x01"
    assert reader.buffered == 0


def test_back_to_untagged():
    reader = FrameReader()
    reader.expect_tagged()
    reader.expect_untagged()
    reader.feed(STARTUP[1])
    assert reader.next_frame() == (None, STARTUP[1][4:])


# ---------------------------------------------------------------------------- limits

@pytest.mark.parametrize("length", [0, 4, 7, MAX_STARTUP_PACKET + 1, 2**31 - 1, -1])
def test_startup_length_limits(length):
    reader = FrameReader()
    reader.feed(struct.pack("!i", length))  # the length word alone is enough to refuse
    with pytest.raises(m.ProtocolViolation, match=f"invalid length of startup packet: {length}$"):
        reader.next_frame()


def test_startup_packet_at_the_limit_is_accepted():
    body = struct.pack("!i", m.PROTOCOL_3_0) + b"user\x00" + b"u" * (MAX_STARTUP_PACKET - 4 - 4 - 5 - 2) + b"\x00\x00"
    packet = struct.pack("!i", len(body) + 4) + body
    assert len(packet) == MAX_STARTUP_PACKET
    reader = FrameReader()
    reader.feed(packet)
    assert reader.next_frame() == (None, body)


@pytest.mark.parametrize("type_byte, length, name", [
    (b"Q", 3, "Query"),
    (b"P", -5, "Parse"),
    (b"d", 1025, "CopyData"),
    (b"?", 2000, "type b'?'"),
])
def test_tagged_length_limits(type_byte, length, name):
    reader = FrameReader(max_message=1024)
    reader.expect_tagged()
    reader.feed(type_byte + struct.pack("!i", length))
    with pytest.raises(m.ProtocolViolation, match=re.escape(f"invalid message length {length} in {name} message")):
        reader.next_frame()


def test_message_at_the_limit_is_accepted():
    reader = FrameReader(max_message=1024)
    reader.expect_tagged()
    msg = m.CopyData(b"z" * (1024 - 4)).encode()
    reader.feed(msg)
    assert reader.next_frame() == (b"d", b"z" * 1020)


def test_huge_announced_length_is_refused_before_the_body():
    reader = FrameReader()  # default limit: PostgreSQL's 1 GiB
    reader.expect_tagged()
    reader.feed(b"Q" + struct.pack("!i", 2**31 - 1))
    with pytest.raises(m.ProtocolViolation, match="invalid message length 2147483647 in Query message"):
        reader.next_frame()


def test_buffer_is_compacted_as_frames_are_consumed():
    reader = FrameReader()
    reader.expect_tagged()
    one = m.CopyData(b"y" * 1000).encode()
    for _ in range(200):
        reader.feed(one)
        assert reader.next_frame() == (b"d", b"y" * 1000)
    assert len(reader._buf) < 4 * len(one)  # consumed bytes do not pile up
