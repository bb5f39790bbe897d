"""Protocol 3.2 (PostgreSQL 18) at startup, sans-I/O: what a fake announcing 18 or 15 answers.

The real servers' answers are compared on the wire in tests/test_protocol_oracle.py; these pin the
rules: the granted minor is min(asked, latest) (latest: 2 for 18+, 0 before), NegotiateProtocolVersion
only for a newer minor than ours or `_pq_.` options, a 32-byte key for 3.2, cancel by key length.
"""

import struct

import pytest

from fakepm.protocol import messages as m
from fakepm.session.config import ServerConfig, reported_names

from test_session import Harness, feed


def startup(version, minor, **params):
    s = Harness(version=version).session()
    out = feed(s, m.StartupMessage((3 << 16) | minor, {"user": "u", **params}).encode())
    return s, out


@pytest.mark.parametrize("minor, negotiated, key_len", [(0, None, 4), (1, None, 4), (2, None, 32), (3, 2, 32),
                                                        (99, 2, 32)])
def test_version_18_grants_up_to_3_2(minor, negotiated, key_len):
    s, out = startup("18.6", minor)
    got = [x for x in out if isinstance(x, m.NegotiateProtocolVersion)]
    assert got == ([] if negotiated is None else [m.NegotiateProtocolVersion((3 << 16) | negotiated, ())])
    key = [x for x in out if isinstance(x, m.BackendKeyData)][0]
    assert len(m.cancel_key_bytes(key.secret)) == key_len and key.secret == s.secret
    assert s.protocol_minor == min(minor, 2)


@pytest.mark.parametrize("minor", [0, 1, 2, 3])
def test_version_15_speaks_3_0_only(minor):
    s, out = startup("15.18", minor)
    got = [x for x in out if isinstance(x, m.NegotiateProtocolVersion)]
    assert got == ([] if minor == 0 else [m.NegotiateProtocolVersion(m.PROTOCOL_3_0, ())])
    assert isinstance(s.secret, int) and s.protocol_minor == 0


def test_pq_options_are_listed_in_order_byte_for_byte():
    _, out = startup("18.6", 2, **{"_pq_.foo": "1", "_pq_.bar": "x"})
    # captured from PostgreSQL 18.6: v, int32 3.2, int32 2, the names
    assert out[0].encode() == b"v" + struct.pack("!ii", 30, (3 << 16) | 2) + b"\x00\x00\x00\x02_pq_.foo\x00_pq_.bar\x00"
    _, out = startup("15.18", 2, **{"_pq_.": "1"})
    assert out[0].encode() == b"v\x00\x00\x00\x12\x00\x03\x00\x00\x00\x00\x00\x01_pq_.\x00"


def test_unsupported_major_names_the_range():
    s = Harness(version="18.6").session()
    out = feed(s, m.StartupMessage(4 << 16, {"user": "u"}).encode())
    assert out[0].error.message == "unsupported frontend protocol 4.0: server supports 3.0 to 3.2"
    s = Harness(version="18.6").session()
    s.receive(m.StartupMessage(2 << 16, {}).encode())
    assert s.data_to_send() == b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.2\n\x00"


def test_long_key_roundtrip_and_cancel_by_key():
    key = bytes(range(32))
    assert m.BackendKeyData(7, key).encode() == b"K" + struct.pack("!ii", 40, 7) + key
    assert m.decode_backend(b"K", struct.pack("!i", 7) + key) == m.BackendKeyData(7, key)
    assert m.CancelRequest(7, key).encode() == struct.pack("!iii", 44, m.CANCEL_REQUEST_CODE, 7) + key
    assert m.decode_startup_packet(m.CancelRequest(7, key).encode()[4:]) == m.CancelRequest(7, key)
    assert m.decode_startup_packet(m.CancelRequest(7, -5).encode()[4:]) == m.CancelRequest(7, -5)

    h = Harness(version="18.6")
    target = h.session()
    feed(target, m.StartupMessage(m.PROTOCOL_3_2, {"user": "u"}).encode())
    assert isinstance(target.secret, bytes) and len(target.secret) == 32
    key = target.secret
    for wrong in (key[:4], key[:-1], key + b"\0", bytes(32), struct.unpack("!i", key[:4])[0]):
        assert h.hub.cancel(target.pid, wrong) is False
    assert h.hub.cancel(target.pid, target.secret) is True


def test_reported_parameters_per_version():
    assert len(reported_names(15)) == 13 and reported_names(15)[0] == "application_name"
    assert "scram_iterations" in reported_names(16) and "search_path" not in reported_names(17)
    assert reported_names(18) == ("in_hot_standby", "integer_datetimes", "TimeZone", "IntervalStyle", "search_path",
                                  "is_superuser", "application_name", "default_transaction_read_only",
                                  "scram_iterations", "DateStyle", "standard_conforming_strings",
                                  "session_authorization", "client_encoding", "server_version", "server_encoding")
    assert "in_hot_standby" not in reported_names(13)
    names = [n for n, _ in ServerConfig(version="18.6").reported_parameters("bob", {"application_name": "x"})]
    assert names == list(reported_names(18))


def test_set_search_path_is_reported_by_18_only():
    for version, reported in (("18.6", True), ("15.18", False)):
        h = Harness(version=version)
        s = h.connected()
        out = feed(s, m.Query("SET search_path TO app").encode())
        statuses = [x for x in out if isinstance(x, m.ParameterStatus)]
        assert statuses == ([m.ParameterStatus("search_path", "app")] if reported else []), version
