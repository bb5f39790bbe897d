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
from fakepm.proxy.record import Recorder
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


# ------------------------------------------------------------------ the recorder's tap and the player
def _tap(tmp_path, **kw):
    from fakepm.proxy.hooks import ConnInfo

    rec = Recorder(tmp_path / "x.yaml", **kw)
    conn = ConnInfo(1, "app", "shop", {"user": "app", "database": "shop"},
                    {"server_version": "15.4", "TimeZone": "UTC", "session_authorization": "app"}, pid=77, secret=5)
    return rec, rec.open_tap(conn)


def _say(tap, *msgs):
    for msg in msgs:
        raw = msg.encode() if not isinstance(msg, bytes) else msg
        tap.server(raw[0], raw[5:])


def _query(tap, sql, *replies):
    raw = m.Query(sql).encode()
    tap.client(raw[:1], raw[5:])
    _say(tap, *replies)


def _count(n):
    return [m.RowDescription((m.FieldDescription("n", 23, 4, -1, 0, 0, 0),)), m.DataRow((str(n).encode(),)),
            m.CommandComplete("SELECT 1"), m.ReadyForQuery("I")]


def test_recorder_keeps_order_repeats_errors_and_redacts(tmp_path):
    rec, tap = _tap(tmp_path, redact=[r"[\w.]+@example\.com"])
    for n in (0, 0, 1, 2, 3):
        _query(tap, "SELECT count(*) AS n FROM t", *_count(n))
    _query(tap, "BEGIN", m.CommandComplete("BEGIN"), m.ReadyForQuery("T"))
    _query(tap, "COMMIT", m.error_response(PgError("40001", "could not serialize")), m.ReadyForQuery("I"))
    _query(tap, "COMMIT", m.CommandComplete("COMMIT"), m.ReadyForQuery("I"))
    _query(tap, "ALTER ROLE app PASSWORD 'hunter2'", m.CommandComplete("ALTER ROLE"), m.ReadyForQuery("I"))
    _query(tap, "SELECT n FROM u WHERE mail = 'ada@example.com'", m.CommandComplete("SELECT 0"),
           m.ReadyForQuery("I"))
    text = rec.dumps()
    doc = yaml.safe_load(text)
    assert doc["server"]["version"] == "15.4" and doc["server"]["database"] == "shop"
    assert doc["recording"]["connections"] == [{"user": "app", "database": "shop", "pid": 77, "key": 5}]
    stmts = doc["recording"]["statements"]
    counts = [(e["rows"][0][0], e.get("repeat", 1)) for e in stmts if "rows" in e]
    assert counts == [("0", 2), ("1", 1), ("2", 1), ("3", 1)]  # 0, 0, 1, 2, 3: repeats kept, in order
    commits = [e for e in stmts if e.get("query") == "COMMIT"]
    assert [("error" in e, e.get("tag")) for e in commits] == [(True, None), (False, "COMMIT")]  # failed once
    assert [e["query"] for e in stmts][-2:] == ["ALTER ROLE app PASSWORD '[REDACTED]'",
                                                 "SELECT n FROM u WHERE mail = '[REDACTED]'"]
    assert "hunter2" not in text and "ada@" not in text


def test_the_player_replays_in_order_then_repeats_the_last(tmp_path):
    from fakepm.proxy.recording import Index
    from fakepm.proxy.replay import Player

    rec, tap = _tap(tmp_path)
    for n in (0, 0, 1):
        _query(tap, "SELECT count(*) AS n FROM t", *_count(n))
    doc = yaml.safe_load(rec.dumps())
    player = Player(Index(doc["recording"]["statements"]), conn=1)
    got = [player.feed(m.Query("SELECT count(*) AS n FROM t").encode()) for _ in range(4)]
    want = [b"".join(x.encode() for x in _count(n)) for n in (0, 0, 1, 1)]
    assert got == want
    # not recorded: FP000, and the report says so
    out = player.feed(m.Query("SELECT 2").encode())
    assert b"FP000" in out and out.endswith(m.ReadyForQuery("I").encode())
    assert any("not in the recording" in line for line in player.index.report)


def test_shape_matching_answers_what_differs_only_in_constants(tmp_path):
    from fakepm.proxy.recording import Index
    from fakepm.proxy.replay import Player

    rec, tap = _tap(tmp_path)
    _query(tap, "INSERT INTO m VALUES ('2024-01-01T10:00:00'::timestamptz)", m.CommandComplete("INSERT 0 1"),
           m.ReadyForQuery("I"))
    stmts = yaml.safe_load(rec.dumps())["recording"]["statements"]
    shape = Player(Index(stmts, "shape"))
    assert shape.feed(m.Query("INSERT INTO m VALUES ('2031-05-05T00:00:00'::timestamptz)").encode()) == \
        m.CommandComplete("INSERT 0 1").encode() + m.ReadyForQuery("I").encode()
    assert "matched by shape" in shape.index.report[0]
    exact = Player(Index(stmts, "exact"))
    assert b"FP000" in exact.feed(m.Query("INSERT INTO m VALUES ('2031-05-05T00:00:00'::timestamptz)").encode())


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


def test_a_replayed_connection_follows_the_recorded_one_that_began_alike():
    """Connections are matched by place in the connection order, corrected when the replay opened
    more or fewer connections than the recording (benchmarks calibrate their rounds)."""
    from fakepm.proxy.recording import Index

    entries = [{"query": "BEGIN", "c": 1}, {"query": "BEGIN", "c": 2}, {"query": "BEGIN", "c": 3},
               {"query": "SELECT pid", "c": 4}, {"query": "BEGIN", "c": 5}]
    index = Index(entries)
    assert index.claim(("query", "BEGIN"), 1) == 1
    # the replay opened one connection fewer before this one: the shift is found once ...
    assert index.claim(("query", "SELECT pid"), 3) == 4
    # ... and kept for the next
    assert index.claim(("query", "BEGIN"), 4) == 5
    assert index.claim(("query", "nothing like it"), 5) is None
