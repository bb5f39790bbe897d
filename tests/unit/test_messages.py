"""protocol/messages: every message class round-trips (encode -> decode -> equal), decoding bad bodies
raises ProtocolViolation naming the message, and the hot-path encoders produce the same bytes as the
dataclasses. Large/arbitrary inputs go through hypothesis."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakepm.protocol import messages as m
from fakepm.protocol.errors import PgError

# ---------------------------------------------------------------------------- helpers

def split(encoded: bytes) -> tuple[bytes, bytes]:
    """(type byte, body) of one encoded tagged message, checking its length word."""
    t, n = struct.unpack("!ci", encoded[:5])
    assert n == len(encoded) - 1, f"length word {n} but {len(encoded) - 1} bytes follow the type"
    return t, encoded[5:]


def roundtrip_frontend(msg):
    t, body = split(msg.encode())
    assert t == msg.TYPE
    assert m.decode_frontend(t, body) == msg
    return body


def roundtrip_backend(msg):
    t, body = split(msg.encode())
    assert t == msg.TYPE
    assert m.decode_backend(t, body) == msg
    return body


def roundtrip_startup(msg):
    data = msg.encode()
    (n,) = struct.unpack("!i", data[:4])
    assert n == len(data)
    assert m.decode_startup_packet(data[4:]) == msg


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200)
values = st.one_of(st.none(), st.binary(max_size=300))
formats = st.lists(st.sampled_from([0, 1]), max_size=10)
oids = st.lists(st.integers(0, 2**32 - 1), max_size=20)


# ---------------------------------------------------------------------------- startup packets

def test_startup_packets_roundtrip():
    roundtrip_startup(m.StartupMessage(m.PROTOCOL_3_0, {"user": "postgres", "database": "db",
                                                         "client_encoding": "'utf-8'", "options": "-c a=b"}))
    roundtrip_startup(m.StartupMessage(m.PROTOCOL_3_2, {"user": "u", "_pq_.x": "1"}))
    roundtrip_startup(m.StartupMessage(m.PROTOCOL_3_0, {}))
    roundtrip_startup(m.SSLRequest())
    roundtrip_startup(m.GSSENCRequest())
    roundtrip_startup(m.CancelRequest(12345, -7))


def test_startup_packet_bytes_from_a_capture():
    # psql's StartupMessage as libpq writes it: int32 len, int32 196608, key\0value\0 ..., \0
    raw = b"\x00\x03\x00\x00user\x00alice\x00database\x00db\x00application_name\x00psql\x00\x00"
    msg = m.decode_startup_packet(raw)
    assert msg == m.StartupMessage(196608, {"user": "alice", "database": "db", "application_name": "psql"})
    assert (msg.major, msg.minor) == (3, 0)
    assert m.SSLRequest().encode() == b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    assert m.GSSENCRequest().encode() == b"\x00\x00\x00\x08\x04\xd2\x16\x30"
    assert m.CancelRequest(1, 2).encode() == b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02"


def test_startup_packet_other_major_version_keeps_its_code():
    msg = m.decode_startup_packet(struct.pack("!i", 2 << 16))
    assert msg.major == 2 and msg.parameters == {}


@pytest.mark.parametrize("body, problem", [
    (b"\x00\x03", "body ends early"),
    (b"\x00\x03\x00\x00user\x00alice", "missing string terminator"),
    (b"\x00\x03\x00\x00user\x00\xff\xfe\x00\x00", 'invalid byte sequence for encoding "UTF8"'),
    (struct.pack("!i", m.CANCEL_REQUEST_CODE) + b"\x00\x05", "body ends early"),
])
def test_startup_packet_errors_name_the_packet(body, problem):
    with pytest.raises(m.ProtocolViolation, match="startup packet") as info:
        m.decode_startup_packet(body)
    assert problem in str(info.value)


@given(st.dictionaries(text.filter(bool), text, max_size=10))
def test_startup_message_property(params):
    roundtrip_startup(m.StartupMessage(m.PROTOCOL_3_0, params))


# ---------------------------------------------------------------------------- frontend messages

FRONTEND_EXAMPLES = [
    m.Query("SELECT 1"),
    m.Query(""),
    m.Query("SELECT 'héllo ✓'"),
    m.Parse("", "SELECT $1, $2", ()),
    m.Parse("S_1", "SELECT $1::int", (23, 1043)),
    m.Parse("big_oid", "SELECT $1", (2**32 - 1,)),
    m.Bind("", "", (), (), ()),
    m.Bind("C_1", "S_1", (1, 0), (b"\x00\x00\x00\x07", b"ada"), (1, 0)),
    m.Bind("", "", (0,), (None, b""), (1,)),
    m.Describe("S", "stmt"),
    m.Describe("P", ""),
    m.Execute("", 0),
    m.Execute("C_1", 2),
    m.Close("S", "S_1"),
    m.Close("P", "C_1"),
    m.Sync(),
    m.Flush(),
    m.Terminate(),
    m.PasswordMessage(b"md5" + b"0" * 32 + b"\x00"),
    m.PasswordMessage(b"SCRAM-SHA-256\x00\x00\x00\x00\x20n,,n=,r=abcdefghijklmnopqrstuvwx"),
    m.CopyData(b"1\tada\n"),
    m.CopyData(b""),
    m.CopyDone(),
    m.CopyFail("error from Python: RuntimeError - abort copy"),
    m.FunctionCall(1598, (0,), (b"x", None), 1),
]


def test_every_frontend_class_has_an_example():
    assert {type(x) for x in FRONTEND_EXAMPLES} == set(m.FRONTEND_MESSAGES.values())


@pytest.mark.parametrize("msg", FRONTEND_EXAMPLES, ids=lambda x: type(x).__name__)
def test_frontend_roundtrip(msg):
    roundtrip_frontend(msg)


def test_frontend_bytes_match_the_protocol_docs():
    assert m.Query("SELECT 1").encode() == b"Q\x00\x00\x00\x0dSELECT 1\x00"
    assert m.Sync().encode() == b"S\x00\x00\x00\x04"
    assert m.Flush().encode() == b"H\x00\x00\x00\x04"
    assert m.Terminate().encode() == b"X\x00\x00\x00\x04"
    assert m.Execute("", 0).encode() == b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"
    assert m.Describe("P", "").encode() == b"D\x00\x00\x00\x06P\x00"
    # pgjdbc's Bind for setInt(7)/setString("ada"): int4 binary + varchar text, results [1, 0]
    assert m.Bind("", "S_1", (1, 0), (b"\x00\x00\x00\x07", b"ada"), (1, 0)).encode() == (
        b"B\x00\x00\x00\x26" b"\x00" b"S_1\x00" b"\x00\x02\x00\x01\x00\x00" b"\x00\x02"
        b"\x00\x00\x00\x04\x00\x00\x00\x07" b"\x00\x00\x00\x03ada" b"\x00\x02\x00\x01\x00\x00"
    )


@given(name=text, sql=text, param_oids=oids)
def test_parse_property(name, sql, param_oids):
    roundtrip_frontend(m.Parse(name, sql, tuple(param_oids)))


@settings(max_examples=200)
@given(portal=text, statement=text, param_formats=formats, params=st.lists(values, max_size=30),
       result_formats=formats)
def test_bind_property(portal, statement, param_formats, params, result_formats):
    roundtrip_frontend(m.Bind(portal, statement, tuple(param_formats), tuple(params), tuple(result_formats)))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20000))
def test_query_property_large(sql):
    roundtrip_frontend(m.Query(sql))


@given(st.binary(max_size=100000))
def test_copy_data_property_large(data):
    roundtrip_frontend(m.CopyData(data))


@pytest.mark.parametrize("type_byte, body, problem", [
    (b"Q", b"SELECT 1", "invalid Query message format: missing string terminator"),
    (b"Q", b"SELECT 1\x00junk", "invalid Query message format: 4 extra bytes"),
    (b"P", b"\x00SELECT 1\x00\xff\xff", "invalid Parse message format: body ends early"),  # 65535 (unsigned)
    (b"P", b"\x00SELECT $1\x00\x00\x01\x00\x00", "invalid Parse message format: body ends early"),
    (b"B", b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x05ab", "invalid Bind message format: body ends early"),
    (b"B", b"\x00\x00\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00", "invalid Bind message format: negative length -2"),
    (b"B", b"\x00\x00\xff\xff", "invalid Bind message format: body ends early"),  # 65535 formats
    (b"D", b"X\x00", "invalid DESCRIBE message subtype 88"),
    (b"C", b"Z\x00", "invalid CLOSE message subtype 90"),
    (b"E", b"\x00\x00\x00", "invalid Execute message format: body ends early"),
    (b"S", b"\x00", "invalid Sync message format: 1 extra bytes"),
    (b"Q", b"\xc3\x28\x00", 'invalid byte sequence for encoding "UTF8" in Query message'),
    (b"Y", b"", "invalid frontend message type 89"),
])
def test_frontend_decode_errors_name_the_message(type_byte, body, problem):
    with pytest.raises(m.ProtocolViolation) as info:
        m.decode_frontend(type_byte, body)
    assert problem in str(info.value)


@settings(max_examples=300)
@given(type_byte=st.sampled_from(sorted(m.FRONTEND_MESSAGES)), body=st.binary(max_size=64))
def test_frontend_decode_of_garbage_is_a_value_or_a_protocol_violation(type_byte, body):
    try:
        msg = m.decode_frontend(type_byte, body)
    except m.ProtocolViolation:
        return
    assert msg.encode()[:1] == type_byte  # whatever decoded encodes again


# ---------------------------------------------------------------------------- backend messages

ERR = PgError("22012", "division by zero", file="int.c", line="841", routine="int4div")
BACKEND_EXAMPLES = [
    m.Authentication(0),
    m.Authentication(5, b"\x01\x02\x03\x04"),
    m.Authentication(10, b"SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"),
    m.ParameterStatus("server_version", "17.4"),
    m.BackendKeyData(12007, -5),
    m.ReadyForQuery("I"),
    m.ReadyForQuery("T"),
    m.ReadyForQuery("E"),
    m.RowDescription((m.FieldDescription("id", 23, 4, -1, 1, 16384, 1), m.FieldDescription("name", 25))),
    m.RowDescription(()),
    m.DataRow((b"1", None, b"")),
    m.DataRow(()),
    m.CommandComplete("INSERT 0 1"),
    m.EmptyQueryResponse(),
    m.ParseComplete(),
    m.BindComplete(),
    m.CloseComplete(),
    m.NoData(),
    m.PortalSuspended(),
    m.ParameterDescription((23, 1043, 2**32 - 1)),
    m.NotificationResponse(4242, "chan", "payload ✓"),
    m.ErrorResponse(ERR),
    m.ErrorResponse(PgError("42601", 'syntax error at or near "x"', position=8, hint="h", detail="d")),
    m.NoticeResponse(PgError("25001", "there is already a transaction in progress", severity="WARNING")),
    m.CopyInResponse(0, (0, 0)),
    m.CopyOutResponse(1, (1,)),
    m.CopyBothResponse(0, ()),
    m.NegotiateProtocolVersion(m.PROTOCOL_3_0, ("_pq_.x",)),
    m.FunctionCallResponse(b"\x00\x01"),
    m.FunctionCallResponse(None),
    m.CopyData(b"w\x00"),
    m.CopyDone(),
]


def test_every_backend_class_has_an_example():
    assert {type(x) for x in BACKEND_EXAMPLES} == set(m.BACKEND_MESSAGES.values())


@pytest.mark.parametrize("msg", BACKEND_EXAMPLES, ids=lambda x: type(x).__name__)
def test_backend_roundtrip(msg):
    roundtrip_backend(msg)


def test_backend_bytes_from_captures():
    # NegotiateProtocolVersion as PG15 answered libpq 18's 3.2 request: int32 196608, int32 0
    assert m.NegotiateProtocolVersion(196608, ()).encode() == b"v\x00\x00\x00\x0c\x00\x03\x00\x00\x00\x00\x00\x00"
    assert m.ReadyForQuery("T").encode() == b"Z\x00\x00\x00\x05T"
    assert m.Authentication(0).encode() == m.AUTH_OK == b"R\x00\x00\x00\x08\x00\x00\x00\x00"
    assert m.CommandComplete("SELECT 1").encode() == b"C\x00\x00\x00\x0dSELECT 1\x00"
    assert m.DataRow((b"1", None)).encode() == b"D\x00\x00\x00\x0f\x00\x02\x00\x00\x00\x011\xff\xff\xff\xff"


def test_error_fields_in_wire_order():
    body = split(m.ErrorResponse(ERR).encode())[1]
    codes = [f[:1] for f in body.split(b"\x00") if f]
    assert codes == [b"S", b"V", b"C", b"M", b"F", b"L", b"R"]  # PG15's order for a plain error
    assert body.endswith(b"\x00\x00")


def test_hot_path_encoders_equal_the_dataclasses():
    fields = (m.FieldDescription("id", 23, 4, -1, 1), m.FieldDescription("name", 25))
    assert m.row_description(fields) == m.RowDescription(fields).encode()
    assert m.data_row([b"x", None]) == m.DataRow((b"x", None)).encode()
    assert m.command_complete("UPDATE 3") == m.CommandComplete("UPDATE 3").encode()
    assert m.parameter_status("TimeZone", "UTC") == m.ParameterStatus("TimeZone", "UTC").encode()
    assert m.error_response(ERR) == m.ErrorResponse(ERR).encode()
    assert m.notice_response(ERR) == m.NoticeResponse(ERR).encode()
    assert m.copy_data(b"abc") == m.CopyData(b"abc").encode()
    assert m.READY == {s: m.ReadyForQuery(s).encode() for s in "ITE"}
    for const, cls in [(m.PARSE_COMPLETE, m.ParseComplete), (m.BIND_COMPLETE, m.BindComplete),
                       (m.CLOSE_COMPLETE, m.CloseComplete), (m.NO_DATA, m.NoData),
                       (m.PORTAL_SUSPENDED, m.PortalSuspended), (m.EMPTY_QUERY, m.EmptyQueryResponse),
                       (m.COPY_DONE, m.CopyDone)]:
        assert const == cls().encode()


@settings(max_examples=200)
@given(st.lists(values, max_size=200))
def test_data_row_property(row):
    encoded = m.data_row(row)
    assert m.decode_backend(b"D", split(encoded)[1]) == m.DataRow(tuple(row))


@given(st.lists(st.builds(m.FieldDescription, name=text, type_oid=st.integers(0, 2**32 - 1),
                          type_size=st.integers(-(2**15), 2**15 - 1), type_modifier=st.integers(-(2**31), 2**31 - 1),
                          format=st.sampled_from([0, 1]), table_oid=st.integers(0, 2**32 - 1),
                          column_attnum=st.integers(-(2**15), 2**15 - 1)), max_size=40))
def test_row_description_property(fields):
    roundtrip_backend(m.RowDescription(tuple(fields)))


def test_split_backend_stream():
    stream = b"".join(x.encode() for x in BACKEND_EXAMPLES)
    assert m.split_backend_stream(stream) == BACKEND_EXAMPLES
    with pytest.raises(m.ProtocolViolation, match="truncated DataRow message"):
        m.split_backend_stream(m.DataRow((b"abc",)).encode()[:-1])
    with pytest.raises(m.ProtocolViolation, match="truncated message header"):
        m.split_backend_stream(b"Z\x00\x00")
    with pytest.raises(m.ProtocolViolation, match="unknown backend message type"):
        m.decode_backend(b"!", b"")
