"""psycopg2's LogicalReplicationConnection and a raw socket client against the fake walsender."""

import select
import socket
import struct
import time

import pytest

from fakepm import FakePostgres
from fakepm.protocol import messages as m
from fakepm.protocol import pgoutput as po
from fakepm.protocol.replication import PrimaryKeepalive, decode_replication_message

from .helpers import standby_updates

psycopg2 = pytest.importorskip("psycopg2")
import psycopg2.extras  # noqa: E402


@pytest.fixture
def pg():
    with FakePostgres(version="15.4") as server:
        server.wal.configure(wal_sender_timeout=2, keepalive_interval=0.5)
        server.table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text"}, key=["id"])
        yield server


def read_messages(cur, n, timeout=5.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msg = cur.read_message()
        if msg is None:
            select.select([cur], [], [], 0.2)
            continue
        got.append(msg)
    return got


def test_psycopg2_slot_stream_feedback_and_close(pg):
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.execute("IDENTIFY_SYSTEM")
        row = cur.fetchone()
        assert row[0] == pg.wal.systemid and row[1] == 1 and row[3] == "postgres"
        assert [d.type_code for d in cur.description] == [25, 23, 25, 25]
        cur.create_replication_slot("pyslot", output_plugin="pgoutput")
        assert "pyslot" in pg.wal.slots
        cur.start_replication(slot_name="pyslot", decode=False,
                              options={"proto_version": "1", "publication_names": "pub", "messages": "true"})
        pg.wal.wait_for_stream(slot="pyslot")
        t1 = pg.wal.insert("public.t_def", {"id": 900, "a": "py", "b": 9})
        t2 = pg.wal.update("public.t_def", {"id": 900, "b": 9})
        msgs = read_messages(cur, 7)
        kinds = [bytes(x.payload[:1]) for x in msgs]
        assert kinds == [b"B", b"R", b"I", b"C", b"B", b"U", b"C"]
        starts = [x.data_start for x in msgs]
        ins, upd = t1.changes[0].lsn, t2.changes[0].lsn
        assert starts == [ins, 0, ins, t1.end_lsn, upd, upd, t2.end_lsn]
        assert po.decode_pgoutput(msgs[0].payload).final_lsn == t1.commit_lsn
        # feedback with reply requested: journaled and answered with a keepalive at once
        cur.send_feedback(flush_lsn=t2.end_lsn, reply=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(u["reply_requested"] for u in standby_updates(pg, "pyslot")):
            cur.read_message()
            time.sleep(0.02)
        upd_fb = [u for u in standby_updates(pg, "pyslot") if u["reply_requested"]]
        assert upd_fb and upd_fb[-1]["flush"] == t2.end_lsn
        assert pg.wal.slots["pyslot"].confirmed_flush == t2.end_lsn
        assert cur.wal_end >= t2.end_lsn  # psycopg2 saw the keepalive's walEnd
    finally:
        conn.close()  # mid-stream: Terminate inside CopyBoth
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pg.wal.streams:
        time.sleep(0.02)
    assert not pg.wal.streams
    closes = [e for e in pg.events if e["kind"] == "disconnect"]
    assert closes[-1]["reason"] == "client sent Terminate"
    assert pg.wal.slots["pyslot"].active_pid is None
    # the next connection works and re-sends nothing that was confirmed
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.start_replication(slot_name="pyslot", decode=False,
                              options={"proto_version": "1", "publication_names": "pub"})
        pg.wal.delete("public.t_def", {"id": 900})
        msgs = read_messages(cur, 4)
        # a new connection gets the Relation again; the confirmed insert/update are not re-sent
        assert [bytes(x.payload[:1]) for x in msgs] == [b"B", b"R", b"D", b"C"]
    finally:
        conn.close()
    pg.verify()


def _raw_connect(pg):
    s = socket.create_connection((pg.host, pg.port), timeout=5)
    params = b"user\x00postgres\x00database\x00postgres\x00replication\x00database\x00\x00"
    body = struct.pack("!i", 196608) + params
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    return s


def _read_until(s, pred, timeout=10.0):
    buf = b""
    msgs = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            msgs.append("EOF")
            return msgs
        buf += chunk
        while len(buf) >= 5:
            t, n = struct.unpack("!ci", buf[:5])
            if len(buf) < 1 + n:
                break
            msgs.append(m.decode_backend(t, buf[5:1 + n]))
            buf = buf[1 + n:]
        if pred(msgs):
            return msgs
    return msgs


def test_raw_client_that_never_replies_is_dropped_at_timeout_without_error(pg):
    pg.wal.configure(wal_sender_timeout=1, keepalive_interval=0)
    pg.wal.create_slot("silent")
    s = _raw_connect(pg)
    try:
        _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        q = b"START_REPLICATION SLOT \"silent\" LOGICAL 0/0 (proto_version '1', publication_names 'pub')\x00"
        s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
        msgs = _read_until(s, lambda ms: "EOF" in ms, timeout=8)  # bounded; the fake closes at 1 s
    finally:
        s.close()
    assert msgs[-1] == "EOF"
    assert isinstance(msgs[0], m.CopyBothResponse)
    repl = [decode_replication_message(x.data) for x in msgs if isinstance(x, m.CopyData)]
    assert all(isinstance(x, PrimaryKeepalive) for x in repl)
    assert [x.reply_requested for x in repl] == [False, True]  # start, then the ping at timeout/2
    assert not any(isinstance(x, m.ErrorResponse) for x in msgs)
    reasons = [e["reason"] for e in pg.events if e["kind"] == "disconnect"]
    assert "terminating walsender process due to replication timeout" in reasons


def test_raw_replication_commands_and_errors(pg):
    s = _raw_connect(pg)

    def query(sql):
        q = sql.encode() + b"\x00"
        s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
        return _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))

    try:
        _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        ms = query("TIMELINE_HISTORY 1")
        assert isinstance(ms[0], m.RowDescription) and [f.type_modifier for f in ms[0].fields] == [0, 0]
        assert ms[1].error.code == "58P01"
        ms = query("CREATE_REPLICATION_SLOT old3 TEMPORARY LOGICAL pgoutput USE_SNAPSHOT")
        assert ms[0].error.code == "XX000" and "must be called inside a transaction" in ms[0].error.message
        ms = query("CREATE_REPLICATION_SLOT phys1 PHYSICAL RESERVE_WAL")
        assert [x.values for x in ms if isinstance(x, m.DataRow)] == [(b"phys1", b"0/0", None, None)]
        ms = query("READ_REPLICATION_SLOT phys1")
        rd = ms[0]
        assert [f.type_oid for f in rd.fields] == [25, 25, 20]
        ms = query("READ_REPLICATION_SLOT nosuch")
        assert [x.values for x in ms if isinstance(x, m.DataRow)] == [(None, None, None)]
        ms = query("DROP_REPLICATION_SLOT nosuch")
        assert ms[0].error.code == "42704" and ms[0].error.message == 'replication slot "nosuch" does not exist'
        ms = query("DROP_REPLICATION_SLOT phys1 WAIT")
        assert [x.tag for x in ms if isinstance(x, m.CommandComplete)] == ["DROP_REPLICATION_SLOT"]
        assert not any(isinstance(x, m.RowDescription) for x in ms)
        ms = query("CREATE_REPLICATION_SLOT x SIDEWAYS")
        assert ms[0].error.code == "42601" and "expected PHYSICAL or LOGICAL" in ms[0].error.detail
    finally:
        s.close()


def _send(s, type_byte, body=b""):
    s.sendall(type_byte + struct.pack("!i", len(body) + 4) + body)


def _q(s, sql):
    _send(s, b"Q", sql.encode() + b"\x00")


def test_raw_stream_end_copydone_both_ways_then_reusable(pg):
    pg.wal.create_slot("s")
    t = pg.wal.insert("public.t_def", {"id": 1})
    s = _raw_connect(pg)
    try:
        _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        _q(s, "START_REPLICATION SLOT s LOGICAL 0/0 (proto_version '1', publication_names 'pub')")
        got = _read_until(s, lambda ms: sum(isinstance(x, m.CopyData) for x in ms) >= 6)
        from fakepm.protocol.replication import StandbyStatusUpdate
        _send(s, b"d", StandbyStatusUpdate(t.end_lsn, t.end_lsn, 0, 0).encode())
        _send(s, b"c")
        end = _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        tail = [x for x in end if not isinstance(x, m.CopyData)]
        assert [type(x).__name__ for x in tail] == ["CopyDone", "CommandComplete", "CommandComplete", "ReadyForQuery"]
        assert [x.tag for x in tail[1:3]] == ["COPY 0", "START_REPLICATION"] and tail[3].status == "I"
        _q(s, "IDENTIFY_SYSTEM")  # the connection is usable again
        again = _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        assert [x.tag for x in again if isinstance(x, m.CommandComplete)] == ["IDENTIFY_SYSTEM"]
        assert pg.wal.slots["s"].confirmed_flush == t.end_lsn
    finally:
        s.close()
    pg.verify()


def test_raw_physical_stream_and_eof_mid_stream(pg):
    s = _raw_connect(pg)
    try:
        _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        _q(s, "START_REPLICATION 0/3000000 TIMELINE 1")
        first = _read_until(s, lambda ms: any(isinstance(x, m.CopyBothResponse) for x in ms))
        assert isinstance(first[0], m.CopyBothResponse)
        _send(s, b"c")
        end = _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        assert [x.tag for x in end if isinstance(x, m.CommandComplete)] == ["START_STREAMING", "START_REPLICATION"]
        pg.wal.create_slot("eof")
        _q(s, "START_REPLICATION SLOT eof LOGICAL 0/0 (proto_version '1', publication_names 'pub')")
        _read_until(s, lambda ms: any(isinstance(x, m.CopyData) for x in ms))
    finally:
        s.close()  # EOF in the middle of CopyBoth
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pg.wal.streams:
        time.sleep(0.02)
    assert not pg.wal.streams and pg.wal.slots["eof"].active_pid is None
    pg.verify()  # no internal errors


def test_at_least_once_resend_after_reconnect(pg):
    """What the consumer did not confirm comes again; START from an older LSN starts at confirmed_flush."""
    pg.wal.create_slot("alo")
    t1 = pg.wal.insert("public.t_def", {"id": 1})
    t2 = pg.wal.insert("public.t_def", {"id": 2})

    def consume(start_lsn, n):
        conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        cur = conn.cursor()
        cur.start_replication(slot_name="alo", decode=False, start_lsn=start_lsn,
                              options={"proto_version": "1", "publication_names": "pub"})
        return conn, cur, read_messages(cur, n)

    conn, cur, msgs = consume(0, 7)
    assert [bytes(x.payload[:1]) for x in msgs] == [b"B", b"R", b"I", b"C", b"B", b"I", b"C"]
    cur.send_feedback(flush_lsn=t1.end_lsn, force=True)  # only the first transaction is durable
    pg.wal.wait_for_flush(t1, slot="alo")
    conn.close()
    conn, cur, msgs = consume(t1.first_lsn, 4)  # asks for an older position than confirmed
    try:
        inserts = [po.decode_pgoutput(x.payload).new[0].data for x in msgs if x.payload[:1] == b"I"]
        assert inserts == [b"2"] and msgs[-1].data_start == t2.end_lsn
    finally:
        conn.close()


def test_temporary_slot_goes_away_with_its_connection(pg):
    s = _raw_connect(pg)
    try:
        _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        _q(s, "CREATE_REPLICATION_SLOT tmp TEMPORARY LOGICAL pgoutput (SNAPSHOT 'nothing')")
        _read_until(s, lambda ms: any(isinstance(x, m.ReadyForQuery) for x in ms))
        assert pg.wal.slots["tmp"].temporary
    finally:
        s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "tmp" in pg.wal.slots:
        time.sleep(0.02)
    assert "tmp" not in pg.wal.slots


def test_a_slot_streams_to_one_consumer_at_a_time(pg):
    pg.wal.create_slot("busy")
    first = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    second = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        opts = {"proto_version": "1", "publication_names": "pub"}
        first.cursor().start_replication(slot_name="busy", decode=False, options=opts)
        pg.wal.wait_for_stream(slot="busy")
        pid = pg.wal.slots["busy"].active_pid
        with pytest.raises(psycopg2.errors.ObjectInUse, match=f'replication slot "busy" is active for PID {pid}'):
            second.cursor().start_replication(slot_name="busy", decode=False, options=opts)
    finally:
        first.close()
        second.close()


def test_slot_kind_mismatch_errors_as_pg15(pg):
    pg.wal.create_slot("lg")
    pg.wal.create_slot("ph", kind="physical")
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState,
                           match="cannot use a logical replication slot for physical replication"):
            cur.execute("START_REPLICATION SLOT lg PHYSICAL 0/0")
        with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState,  # 15.18 and 18.6 alike
                           match="cannot use physical replication slot for logical decoding"):
            cur.execute("START_REPLICATION SLOT ph LOGICAL 0/0 (proto_version '1', publication_names 'p')")
        with pytest.raises(psycopg2.errors.UndefinedFile, match='could not access file "test_nope"'):
            cur.execute("CREATE_REPLICATION_SLOT x LOGICAL test_nope")
    finally:
        conn.close()
