"""Sans-I/O pieces of the proxy room, fed bytes and objects (no sockets, no PostgreSQL)."""

from __future__ import annotations

import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
import yaml

from fakepm.protocol import messages as m
from fakepm.protocol.auth import AuthFailed, Authenticator, UserAuth
from fakepm.protocol.errors import PgError
from fakepm.protocol.types import REGISTRY
from fakepm.proxy.copyfmt import parse_copy_data, parse_copy_options
from fakepm.proxy.record import Recorder, to_yaml_value
from fakepm.proxy.tracker import Tracker, type_name
from fakepm.proxy.upstream import ClientAuth, UpstreamError, UpstreamURL


# ------------------------------------------------------------------ client auth vs our server auth
def _exchange(method: str, server_pw: str, client_pw: str | None) -> bool:
    server = Authenticator({"app": UserAuth(method, server_pw)}, "app")
    client = ClientAuth("app", client_pw)
    out = server.start()
    while not server.done:
        reply = None
        for req in out:
            r = client.receive(m.Authentication(req.code, req.data))
            reply = r if r is not None else reply
        out = server.receive(reply)
    for req in out:  # SASLFinal: the client checks the server's signature
        client.receive(m.Authentication(req.code, req.data))
    return True


@pytest.mark.parametrize("method", ["password", "md5", "scram-sha-256"])
def test_client_auth_completes_against_the_server_side(method):
    assert _exchange(method, "s3cret", "s3cret")


@pytest.mark.parametrize("method", ["password", "md5", "scram-sha-256"])
def test_client_auth_wrong_password_fails(method):
    with pytest.raises(AuthFailed, match="password authentication failed"):
        _exchange(method, "s3cret", "wrong")


def test_client_auth_without_password_names_the_method():
    with pytest.raises(UpstreamError, match="asks for md5 authentication but the upstream URL has no password"):
        ClientAuth("app", None).receive(m.Authentication(5, b"salt"))


def test_upstream_url_parses_and_never_shows_the_password():
    u = UpstreamURL.parse("postgresql://app:p%40ss@db.example:6543/shop?application_name=x")
    assert (u.host, u.port, u.user, u.password, u.database, u.options) == (
        "db.example", 6543, "app", "p@ss", "shop", {"application_name": "x"})
    assert "p@ss" not in repr(u) and "p@ss" not in str(u)
    assert UpstreamURL.redacted_text("postgresql://app:pw@h/db") == "postgresql://app:***@h/db"
    with pytest.raises(ValueError, match="expected postgresql://"):
        UpstreamURL.parse("mysql://app:pw@h/db")


# ------------------------------------------------------------------ tracker
def _feed(tracker: Tracker, frontend: list, backend: list) -> None:
    for msg in frontend:
        tracker.client(msg)
    for raw in backend:
        tracker.server(m.split_backend_stream(raw)[0] if isinstance(raw, bytes) else raw)


def _row_desc(*cols, fmt=0):
    return m.RowDescription(tuple(m.FieldDescription(n, REGISTRY.by_name(t).oid, format=fmt) for n, t in cols))


def test_tracker_simple_query_with_several_statements_and_an_error():
    got = []
    t = Tracker(got.append)
    _feed(t, [m.Query("SELECT 1 AS a; SELECT 'x' AS b; SELECT 1/0; SELECT 2")], [
        _row_desc(("a", "int4")), m.DataRow((b"1",)), m.CommandComplete("SELECT 1"),
        _row_desc(("b", "text")), m.DataRow((b"x",)), m.CommandComplete("SELECT 1"),
        m.ErrorResponse(PgError("22012", "division by zero")), m.ReadyForQuery("I"),
    ])
    assert [(e.sql, e.natural_rows(), e.tag, e.error and e.error.code) for e in got] == [
        ("SELECT 1 AS a", [[1]], "SELECT 1", None),
        ("SELECT 'x' AS b", [["x"]], "SELECT 1", None),
        ("SELECT 1/0", [], None, "22012"),
    ]
    assert not t.pending


def test_tracker_extended_pipeline_binary_results_suspended_portal_and_skip_after_error():
    got = []
    t = Tracker(got.append)
    int4 = REGISTRY.by_name("int4")
    _feed(t, [
        m.Parse("s1", "SELECT n FROM t WHERE n > $1", (0,)), m.Describe("S", "s1"), m.Sync(),
        m.Bind("", "s1", (1,), (int4.encode_binary(5),), (1,)), m.Execute("", 1), m.Sync(),
        m.Parse("", "SELECT nope"), m.Bind("", "", (), (), ()), m.Execute("", 0), m.Sync(),
        m.Parse("", "SELECT 3"), m.Bind("", "", (), (), ()), m.Describe("P", ""), m.Execute("", 0), m.Sync(),
    ], [
        m.ParseComplete(), m.ParameterDescription((int4.oid,)), _row_desc(("n", "int4")), m.ReadyForQuery("I"),
        m.BindComplete(), m.DataRow((int4.encode_binary(6),)), m.PortalSuspended(), m.ReadyForQuery("I"),
        m.ErrorResponse(PgError("42703", 'column "nope" does not exist')), m.ReadyForQuery("I"),
        m.ParseComplete(), m.BindComplete(), _row_desc(("?column?", "int4")), m.DataRow((b"3",)),
        m.CommandComplete("SELECT 1"), m.ReadyForQuery("I"),
    ])
    assert [(e.sql, e.params(), e.natural_rows(), e.tag, e.error and e.error.code) for e in got] == [
        ("SELECT n FROM t WHERE n > $1", [5], [[6]], None, None),
        ("SELECT nope", [], [], None, "42703"),
        ("SELECT 3", [], [[3]], "SELECT 1", None),
    ]
    assert not t.pending


def test_tracker_copy_out_and_in_keep_the_data():
    got = []
    t = Tracker(got.append)
    _feed(t, [m.Query("COPY t TO STDOUT")], [m.CopyOutResponse(0, (0, 0)), m.CopyData(b"1\ta\n"),
                                              m.CopyDone(), m.CommandComplete("COPY 1"), m.ReadyForQuery("I")])
    t.client(m.Query("COPY t FROM STDIN"))
    t.server(m.CopyInResponse(0, (0, 0)))
    t.client(m.CopyData(b"2\tb\n"))
    t.client(m.CopyDone())
    for msg in (m.CommandComplete("COPY 1"), m.ReadyForQuery("I")):
        t.server(msg)
    assert [(e.copy, b"".join(e.copy_data), e.tag) for e in got] == [("out", b"1\ta\n", "COPY 1"),
                                                                      ("in", b"2\tb\n", "COPY 1")]


def test_type_names_are_the_short_scenario_names():
    assert [type_name(o, tm) for o, tm in [(23, -1), (1184, -1), (1009, -1), (1700, (10 << 16 | 2) + 4),
                                           (1043, 24), (999999, -1)]] == [
        "int4", "timestamptz", "text[]", "numeric(10,2)", "varchar(20)", "text"]


# ------------------------------------------------------------------ COPY data
def test_copy_options_and_text_csv_binary_data():
    o = parse_copy_options('COPY "Orders" (a, b) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER \';\')')
    assert (o.table, o.columns, o.format, o.header, o.delimiter, o.source_select) == (
        '"Orders"', ["a", "b"], "csv", True, ";", 'SELECT a, b FROM "Orders"')
    assert parse_copy_options("COPY (SELECT 1) TO STDOUT BINARY").source_select == "SELECT 1"
    cols = [("id", 23, -1), ("s", 25, -1)]
    assert parse_copy_data(b"1\ta\\tb\\\\c\n2\t\\N\n", "COPY t TO STDOUT", cols) == [[1, "a\tb\\c"], [2, None]]
    assert parse_copy_data(b"id,s\n1,\"x,y\"\n2,\n", "COPY t TO STDOUT (FORMAT csv, HEADER)", cols) == [
        [1, "x,y"], [2, None]]
    binary = (b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0) + struct.pack("!h", 2)
              + struct.pack("!i", 4) + struct.pack("!i", 7) + struct.pack("!i", -1) + struct.pack("!h", -1))
    assert parse_copy_data(binary, "COPY t TO STDOUT (FORMAT binary)", cols) == [[7, None]]


# ------------------------------------------------------------------ YAML values and the recorder
@pytest.mark.parametrize("type_name_, value", [
    ("int4", 5), ("numeric", Decimal("9.90")), ("float8", 0.1), ("float4", 1.2000000476837158), ("bool", True),
    ("date", date(2024, 2, 29)), ("timestamptz", datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)),
    ("interval", timedelta(days=1, seconds=3)), ("uuid", UUID(int=7)), ("bytea", b"\x00\xff"),
    ("jsonb", {"a": [1, None]}), ("json", '"a JSON string"'), ("jsonb", 5), ("int4[]", [[1, 2], [3, None]]), ("text", "line\nbreak"),
])
def test_yaml_values_come_back_equal_through_the_type_registry(type_name_, value):
    t, _ = REGISTRY.parse_type_spec(type_name_)
    y = yaml.safe_load(yaml.safe_dump({"v": to_yaml_value(t.oid, value)}))["v"]
    assert t.coerce(y) == value


def _ex(sql, rows, tag, error=None, params=()):
    from fakepm.proxy.tracker import Exchange

    int4 = REGISTRY.by_name("int4")
    fields = (m.FieldDescription("n", int4.oid),)
    return Exchange(sql, "extended" if params else "simple", tuple(int4.encode_text(p) for p in params), (0,),
                    (int4.oid,) * len(params), fields, True, [tuple(int4.encode_text(v) for v in r) for r in rows],
                    tag, error)


def test_recorder_sequences_redaction_and_no_password(tmp_path):
    from fakepm.proxy.hooks import ConnInfo

    rec = Recorder(tmp_path / "x.yaml", redact=[r"[\w.]+@example\.com"])
    conn = ConnInfo(1, "app", "shop", {}, {"server_version": "15.4", "TimeZone": "UTC",
                                           "session_authorization": "app"})
    rec.on_connect(conn)
    for ex in (_ex("SELECT count(*) AS n FROM t", [[1]], "SELECT 1"), _ex("SELECT count(*) AS n FROM t", [[1]],
               "SELECT 1"), _ex("SELECT count(*) AS n FROM t", [[2]], "SELECT 1"), _ex("BEGIN", [], "BEGIN"),
               _ex("ALTER ROLE app PASSWORD 'hunter2'", [], "ALTER ROLE"),
               _ex("SELECT n FROM u WHERE mail = 'ada@example.com'", [], "SELECT 0"),
               _ex("SELECT n FROM t WHERE n = $1", [], None, PgError("22012", "division by zero"), params=(0,))):
        rec.on_exchange(ex, conn)
    doc = yaml.safe_load(rec.dumps())
    assert doc["server"] == {"version": "15.4", "database": "shop", "parameters": {"TimeZone": "UTC"}}
    assert doc["rules"][0] == {"query": "SELECT count(*) AS n FROM t", "sequence": [
        {"columns": {"n": "int4"}, "rows": [[1]], "tag": "SELECT 1"},
        {"columns": {"n": "int4"}, "rows": [[2]], "tag": "SELECT 1"}]}
    assert [r["query"] for r in doc["rules"][1:]] == [
        "ALTER ROLE app PASSWORD '[REDACTED]'", "SELECT n FROM u WHERE mail = '[REDACTED]'",
        "SELECT n FROM t WHERE n = $1"]
    assert doc["rules"][3] == {"query": "SELECT n FROM t WHERE n = $1", "params": [0], "param_types": ["int4"],
                               "error": {"code": "22012", "message": "division by zero"}}
    assert "hunter2" not in rec.dumps()


def test_proxy_stops_at_once_with_a_client_stuck_in_startup():
    import socket
    import threading
    import time

    from fakepm.proxy import Proxy

    px = Proxy("postgresql://nobody@127.0.0.1:1/db").start()  # upstream never contacted
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    try:
        s.sendall(b"\x00\x00\x00")  # half a startup packet
        time.sleep(0.1)
        px.stop()  # joins each connection thread for at most 5 s; startup would wait 30 s
        assert not [t for t in threading.enumerate() if t.name.startswith("fakepm-proxy-conn-") and t.is_alive()]
        assert s.recv(10) == b""  # the proxy closed its side
    finally:
        s.close()
