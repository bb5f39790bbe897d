"""The walsender engine sans-I/O: replication grammar, WAL LSNs, pgoutput writer, CopyBoth stream.

Bytes are checked against the captures in shared/reference/captures (wal-a1, wal-a2, wal-c1).
"""

import struct

import pytest

from fakepm.protocol import messages as m
from fakepm.protocol import pgoutput as po
from fakepm.protocol.errors import PgError
from fakepm.protocol.replication import (PrimaryKeepalive, StandbyStatusUpdate, XLogData,
                                         decode_replication_message, parse_lsn)
from fakepm.walsender import grammar as g
from fakepm.walsender.encoder import PgoutputWriter, Publications
from fakepm.walsender.sender import WalSender
from fakepm.walsender.stream import LogicalStream, PhysicalStream
from fakepm.walsender.wal import Slot


def hx(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# ---------------------------------------------------------------------------- grammar
@pytest.mark.parametrize("sql, expected", [
    ("IDENTIFY_SYSTEM", g.IdentifySystem()),
    ("identify_system;", g.IdentifySystem()),
    ("SHOW wal_segment_size", g.Show("wal_segment_size")),
    ("TIMELINE_HISTORY 2", g.TimelineHistory(2)),
    ('CREATE_REPLICATION_SLOT "rl1" LOGICAL "pgoutput" ( SNAPSHOT \'nothing\')',
     g.CreateSlot("rl1", "logical", "pgoutput", snapshot="nothing")),
    ('CREATE_REPLICATION_SLOT "rl2" LOGICAL "pgoutput" ( TWO_PHASE,  SNAPSHOT \'nothing\')',
     g.CreateSlot("rl2", "logical", "pgoutput", snapshot="nothing", two_phase=True)),
    ('CREATE_REPLICATION_SLOT "pyslot" LOGICAL "pgoutput"', g.CreateSlot("pyslot", "logical", "pgoutput")),
    ("CREATE_REPLICATION_SLOT old2 LOGICAL pgoutput NOEXPORT_SNAPSHOT",
     g.CreateSlot("old2", "logical", "pgoutput", snapshot="nothing")),
    ("CREATE_REPLICATION_SLOT old3 TEMPORARY LOGICAL pgoutput USE_SNAPSHOT",
     g.CreateSlot("old3", "logical", "pgoutput", temporary=True, snapshot="use")),
    ("CREATE_REPLICATION_SLOT new2 LOGICAL pgoutput (SNAPSHOT 'export', TWO_PHASE true)",
     g.CreateSlot("new2", "logical", "pgoutput", two_phase=True)),
    ("CREATE_REPLICATION_SLOT phys1 PHYSICAL RESERVE_WAL", g.CreateSlot("phys1", "physical", reserve_wal=True)),
    ("CREATE_REPLICATION_SLOT phys2 PHYSICAL (RESERVE_WAL)", g.CreateSlot("phys2", "physical", reserve_wal=True)),
    ('DROP_REPLICATION_SLOT "old2" WAIT', g.DropSlot("old2", True)),
    ("DROP_REPLICATION_SLOT Sub1", g.DropSlot("sub1")),
    ("READ_REPLICATION_SLOT phys1", g.ReadSlot("phys1")),
    ('START_REPLICATION SLOT "pyslot" LOGICAL 0/00000000 ("proto_version" \'1\', "publication_names" \'pub\')',
     g.StartLogical("pyslot", 0, (("proto_version", "1"), ("publication_names", "pub")))),
    ("START_REPLICATION SLOT \"sub1\" LOGICAL 0/183CD48 (proto_version '3', publication_names '\"pub\"')",
     g.StartLogical("sub1", 0x183CD48, (("proto_version", "3"), ("publication_names", '"pub"')))),
    ("START_REPLICATION 0/3000000 TIMELINE 1", g.StartPhysical(None, 0x3000000, 1)),
    ('START_REPLICATION SLOT "recvslot" 0/3000000 TIMELINE 2', g.StartPhysical("recvslot", 0x3000000, 2)),
    ("SELECT 1", None),
])
def test_grammar(sql, expected):
    assert g.parse_command(sql) == expected


@pytest.mark.parametrize("sql, detail", [
    ("CREATE_REPLICATION_SLOT", "unexpected end"),
    ("CREATE_REPLICATION_SLOT x SIDEWAYS", "expected PHYSICAL or LOGICAL"),
    ("START_REPLICATION SLOT s LOGICAL zz", "expected a WAL position"),
    ("IDENTIFY_SYSTEM now", "unexpected 'now'"),
])
def test_grammar_errors_name_the_problem(sql, detail):
    with pytest.raises(PgError) as ei:
        g.parse_command(sql)
    assert ei.value.code == "42601" and ei.value.message == "syntax error"
    assert detail in ei.value.detail


# ---------------------------------------------------------------------------- writer vs captures
def _wal_with_t_def():
    wal = WalSender(None, clock=lambda: 1_700_000_000.0)
    cat = wal._catalog()
    cat.add("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text"}, key=["id"], oid=16395)
    cat.add("public.t_tr1", {"id": "int4", "x": "int4"}, key=["id"], oid=16415)
    cat.add("public.t_tr2", {"id": "int4", "r": "int4"}, key=["id"], oid=16422)
    return wal


def _writer(proto=1, **kw):
    opts = po.parse_pgoutput_options({"proto_version": str(proto), "publication_names": "pub", **kw}, 15)
    return PgoutputWriter(opts, Publications(None), 15)


def test_writer_matches_capture_a1_bytes():
    wal = _wal_with_t_def()
    wal.configure(start_lsn="0/154BC48")
    with wal.transaction(xid=734, commit_time=0) as tx:
        tx.insert("public.t_def", {"id": 1, "a": "one", "b": 10})
    w = _writer()
    msgs = w.encode(tx.txn)
    kinds = [p[:1] for _, p in msgs]
    assert kinds == [b"B", b"R", b"I", b"C"]
    # Relation and Insert bytes are the captured ones (wal-a1)
    assert msgs[1][1][:60] == hx("52 00 00 40 0b 70 75 62 6c 69 63 00 74 5f 64 65 66 00 64 00 04 01 69 64 00 00 00 00 17"
                                 " ff ff ff ff 00 61 00 00 00 00 19 ff ff ff ff 00 62 00 00 00 00 17 ff ff ff ff 00 62"
                                 " 69 67 00")
    assert msgs[2][1] == hx("49 00 00 40 0b 4e 00 04 74 00 00 00 01 31 74 00 00 00 03 6f 6e 65 74 00 00 00 02 31 30 6e")
    # LSNs: Begin at the first change, Relation 0/0, Commit at end_lsn, final_lsn == commit_lsn
    (b_at, b), (r_at, _), (i_at, _), (c_at, c) = msgs
    begin, commit = po.decode_pgoutput(b), po.decode_pgoutput(c)
    assert r_at == 0 and b_at == i_at == parse_lsn("0/154BC48")
    assert begin.final_lsn == commit.commit_lsn == tx.commit_lsn and c_at == commit.end_lsn == tx.end_lsn
    assert begin.xid == 734
    # the Relation is not sent again on this connection
    with wal.transaction() as tx2:
        tx2.delete("public.t_def", {"id": 1})
    assert [p[:1] for _, p in w.encode(tx2.txn)] == [b"B", b"D", b"C"]
    assert w.encode(tx2.txn)[1][1] == hx("44 00 00 40 0b 4b 00 04 74 00 00 00 01 31 6e 6e 6e")


def test_update_key_change_toast_and_truncate_capture_bytes():
    wal = _wal_with_t_def()
    from fakepm.walsender import UNCHANGED_TOAST

    w = _writer()
    t1 = wal.update("public.t_def", {"id": 3, "a": "big", "b": 31, "big": UNCHANGED_TOAST},
                    old={"id": 3, "a": "big", "b": 30})
    assert w.encode(t1)[-2][1] == hx("55 00 00 40 0b 4e 00 04 74 00 00 00 01 33 74 00 00 00 03 62 69 67 74 00 00 00 02"
                                     " 33 31 75")
    t2 = wal.update("public.t_def", {"id": 4, "a": "big", "b": 31, "big": UNCHANGED_TOAST},
                    old={"id": 3, "a": "big", "b": 31})
    assert w.encode(t2)[1][1] == hx("55 00 00 40 0b 4b 00 04 74 00 00 00 01 33 6e 6e 6e 4e 00 04 74 00 00 00 01 34 74"
                                    " 00 00 00 03 62 69 67 74 00 00 00 02 33 31 75")
    t3 = wal.truncate(["public.t_tr1", "public.t_tr2"], cascade=True, restart_identity=True)
    kinds = [(at, p[:1]) for at, p in w.encode(t3)]
    assert [k for _, k in kinds] == [b"B", b"R", b"R", b"T", b"C"]
    assert w.encode(t3)[-2][1] == hx("54 00 00 00 02 03 00 00 40 1f 00 00 40 26")


def test_messages_only_with_messages_option_and_nontransactional_standalone():
    wal = _wal_with_t_def()
    rec = wal.message("py", "hello")
    assert _writer().encode(rec) == []
    (at, payload), = _writer(messages="true").encode(rec)
    assert at == rec.change.lsn
    assert payload == b"M\x00" + struct.pack(">Q", rec.change.lsn) + b"py\x00\x00\x00\x00\x05hello"
    tx = wal.message("txonly", "alone", transactional=True)
    assert [p[:1] for _, p in _writer(messages="true").encode(tx)] == [b"B", b"M", b"C"]
    assert _writer().encode(tx) == []  # nothing to publish: PG15 skips the empty transaction


def test_streamed_transaction_with_subtransaction_abort():
    wal = _wal_with_t_def()
    with wal.transaction(streaming=True, segment_size=2) as tx:
        for i in range(3):
            tx.insert("public.t_def", {"id": i})
        with tx.subtransaction(abort=True):
            tx.insert("public.t_def", {"id": 99})
        tx.insert("public.t_def", {"id": 100})
    sub = [c.subxid for c in tx.txn.changes if c.subxid][0]
    dec = po.PgoutputDecoder(2)
    msgs = [dec.decode(p) for _, p in _writer(2, streaming="on").encode(tx.txn)]
    names = [type(x).__name__ for x in msgs]
    assert names == ["StreamStart", "Relation", "Insert", "Insert", "StreamStop",
                     "StreamStart", "Insert", "Insert", "StreamStop",
                     "StreamAbort", "StreamStart", "Relation", "Insert", "StreamStop", "StreamCommit"]
    assert msgs[0].first_segment and not msgs[5].first_segment
    assert msgs[6].xid == tx.xid and msgs[7].xid == sub  # changes carry the subtransaction's xid
    assert msgs[9].xid == tx.xid and msgs[9].subxid == sub
    assert msgs[-1].xid == tx.xid and msgs[-1].end_lsn == tx.end_lsn
    # without streaming: one plain transaction without the aborted subtransaction's row
    plain = [po.decode_pgoutput(p) for _, p in _writer(2).encode(tx.txn)]
    ids = [x.new[0].data for x in plain if isinstance(x, po.Insert)]
    assert ids == [b"0", b"1", b"2", b"100"]


def test_two_phase_and_binary():
    wal = _wal_with_t_def()
    with wal.transaction(prepare="gid_commit") as tx:
        tx.insert("public.t_def", {"id": 500, "a": "2pc", "b": 5})
    cp = wal.commit_prepared("gid_commit")
    w = _writer(3, two_phase="on", binary="true")
    first = [po.decode_pgoutput(p) for _, p in w.encode(tx.txn)]
    assert [type(x).__name__ for x in first] == ["BeginPrepare", "Relation", "Insert", "Prepare"]
    assert first[2].new[0] == po.BinaryValue(b"\x00\x00\x01\xf4")  # captured binary int4 500
    (at, k), = w.encode(cp)
    k = po.decode_pgoutput(k)
    assert isinstance(k, po.CommitPrepared) and k.gid == "gid_commit" and k.commit_lsn == tx.end_lsn and at == k.end_lsn
    # a consumer without two_phase sees it as a plain transaction at COMMIT PREPARED
    w1 = _writer(1)
    assert w1.encode(tx.txn) == []
    assert [p[:1] for _, p in w1.encode(cp)] == [b"B", b"R", b"I", b"C"]


def test_explicit_lsns_must_not_go_backwards():
    wal = _wal_with_t_def()
    tx = wal.transaction(lsn="0/5000000", commit_lsn="0/5000200", end_lsn="0/5000230")
    tx.insert("public.t_def", {"id": 1})
    t = tx.commit()
    assert (t.first_lsn, t.commit_lsn, t.end_lsn) == (0x5000000, 0x5000200, 0x5000230)
    with pytest.raises(ValueError, match="goes backwards"):
        wal.transaction(lsn="0/1000000").commit()


def test_a_refused_transaction_leaves_the_wal_position_alone():
    wal = _wal_with_t_def()
    before = wal.lsn
    bad = wal.transaction(end_lsn="0/1")  # before its own commit LSN
    bad.insert("public.t_def", {"id": 1})
    with pytest.raises(ValueError, match="end_lsn must be after commit_lsn"):
        bad.commit()
    assert wal.lsn == before
    t = wal.insert("public.t_def", {"id": 2})
    assert t.first_lsn == before


def test_unknown_table_and_bad_values_are_named():
    wal = _wal_with_t_def()
    with pytest.raises(ValueError, match="table 'public.nope' is not declared"):
        wal.insert("public.nope", {"id": 1})
    with pytest.raises(ValueError, match="column 'id' of public.t_def"):
        wal.insert("public.t_def", {"id": "x"})
    with pytest.raises(ValueError, match="unknown column"):
        wal.insert("public.t_def", {"zz": 1})


# ---------------------------------------------------------------------------- the CopyBoth stream
class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def __call__(self):
        return self.t


def frames(data: bytes) -> list:
    out = []
    for msg in m.split_backend_stream(data):
        if isinstance(msg, m.CopyData):
            out.append(decode_replication_message(msg.data))
        else:
            out.append(msg)
    return out


def _stream(wal, proto=1, timeout=10.0, keepalive_interval=0.0, feedback=None, **opts):
    slot = Slot("s", confirmed_flush=wal.log.start_lsn)
    options = po.parse_pgoutput_options({"proto_version": str(proto), "publication_names": "pub", **opts}, 15)
    return LogicalStream(wal=wal.log, writer=PgoutputWriter(options, Publications(None), 15), slot=slot, now=0.0,
                         clock=Clock(), timeout=timeout, keepalive_interval=keepalive_interval,
                         on_feedback=(feedback.append if feedback is not None else None), start_lsn=slot.confirmed_flush)


def test_stream_start_changes_keepalives_and_feedback():
    wal = _wal_with_t_def()
    tx = wal.insert("public.t_def", {"id": 1, "a": "one", "b": 10})
    fb = []
    st = _stream(wal, feedback=fb)
    first = frames(st.start(0.0))
    assert isinstance(first[0], m.CopyBothResponse) and first[0].format == 0 and first[0].column_formats == ()
    assert isinstance(first[1], PrimaryKeepalive) and first[1].wal_end == wal.log.start_lsn
    out = frames(st.poll(0.1))
    assert [type(x).__name__ for x in out] == ["PrimaryKeepalive", "XLogData", "XLogData", "XLogData", "XLogData",
                                               "PrimaryKeepalive"]
    xl = [x for x in out if isinstance(x, XLogData)]
    assert [x.payload[:1] for x in xl] == [b"B", b"R", b"I", b"C"]
    assert all(x.wal_start == x.wal_end for x in xl) and xl[1].wal_start == 0 and xl[3].wal_start == tx.end_lsn
    assert out[-1].wal_end == tx.end_lsn and not out[-1].reply_requested
    # a standby status update with replyRequested gets a keepalive at once, and is reported
    r = StandbyStatusUpdate(tx.end_lsn, tx.end_lsn, 0, 0, True).encode()
    (k,) = frames(st.receive(b"d", r, 0.2))
    assert isinstance(k, PrimaryKeepalive) and not k.reply_requested
    assert fb[-1]["flush"] == tx.end_lsn and fb[-1]["reply_requested"] and st.slot.confirmed_flush == tx.end_lsn
    assert st.poll(0.3) == b""  # nothing new, everything confirmed: silence


def test_stream_ping_at_half_timeout_then_drop_without_error():
    wal = _wal_with_t_def()
    st = _stream(wal, timeout=2.0)
    st.start(0.0)
    assert st.poll(0.5) == b""
    assert st.deadline == 1.0
    (ping,) = frames(st.poll(1.0))
    assert ping.reply_requested
    assert st.poll(1.5) == b"" and st.deadline == 2.0
    assert st.poll(2.0) == b"" and st.state == "closed" and st.error is None
    assert "replication timeout" in st.close_reason


def test_stream_reply_resets_timeout_and_idle_keepalives():
    wal = _wal_with_t_def()
    st = _stream(wal, timeout=2.0, keepalive_interval=0.4)
    st.start(0.0)
    (k,) = frames(st.poll(0.4))
    assert not k.reply_requested
    st.receive(b"d", StandbyStatusUpdate(0, 0, 0, 0).encode(), 1.0)
    assert st.poll(1.75) != b"" and st.state == "streaming"  # idle keepalive, no ping yet (reply at 1.0)
    (ping,) = frames(st.poll(2.0))
    assert ping.reply_requested


def test_stream_end_terminate_and_resend_from_confirmed():
    wal = _wal_with_t_def()
    t1 = wal.insert("public.t_def", {"id": 1})
    t2 = wal.insert("public.t_def", {"id": 2})
    st = _stream(wal)
    st.start(0.0)
    st.poll(0.0)
    st.receive(b"d", StandbyStatusUpdate(t2.end_lsn, t1.end_lsn, 0, 0).encode(), 0.1)
    st.receive(b"c", b"", 0.2)
    assert st.state == "done"
    assert [type(x).__name__ for x in m.split_backend_stream(st.end())] == ["CopyDone", "CommandComplete"]
    # at-least-once: a new stream from the slot re-sends what was not flushed (t2), not t1
    again = _stream(wal)
    again.slot.confirmed_flush = again.start_lsn = st.slot.confirmed_flush
    again.start(1.0)
    sent = [x for x in frames(again.poll(1.0)) if isinstance(x, XLogData) and x.payload[:1] == b"I"]
    assert [po.decode_pgoutput(x.payload).new[0].data for x in sent] == [b"2"]
    term = _stream(wal)
    term.start(0.0)
    term.receive(b"X", b"", 0.1)
    assert term.state == "closed" and term.error is None


def test_stream_pause_marker_and_fault():
    wal = _wal_with_t_def()
    wal.insert("public.t_def", {"id": 1})
    wal.pause(5)
    wal.insert("public.t_def", {"id": 2})
    wal.fault("error", code="XX000", message="boom")
    st = _stream(wal)
    st.start(0.0)
    inserts = lambda data: [x for x in frames(data) if isinstance(x, XLogData) and x.payload[:1] == b"I"]  # noqa: E731
    assert len(inserts(st.poll(0.0))) == 1 and st.deadline == 5.0
    assert inserts(st.poll(4.0)) == []
    assert len(inserts(st.poll(5.0))) == 1
    assert st.state == "closed" and st.error.message == "boom"


def test_physical_stream_shape():
    st = PhysicalStream(slot=None, now=0.0, clock=Clock(), timeout=2.0, keepalive_interval=0)
    assert frames(st.start(0.0)) == [m.CopyBothResponse(0, ())]
    assert st.poll(0.5) == b""
    st.receive(b"c", b"", 0.6)
    assert [x.tag for x in m.split_backend_stream(st.end()) if isinstance(x, m.CommandComplete)] == ["START_STREAMING"]


def _writer16(proto=4, pubs=None, **kw):
    opts = po.parse_pgoutput_options({"proto_version": str(proto), "publication_names": "pub", **kw}, 16)
    return PgoutputWriter(opts, Publications(pubs), 16)


def test_origin_begin_at_zero_and_origin_none_suppresses():
    wal = _wal_with_t_def()
    with wal.transaction(origin={"name": "origin_x", "lsn": "0/ABCDEF"}) as tx:
        tx.insert("public.t_def", {"id": 100, "a": "from-origin", "b": 1})
    msgs = _writer().encode(tx.txn)
    assert [(at == 0, p[:1]) for at, p in msgs] == [(True, b"B"), (False, b"O"), (True, b"R"), (False, b"I"),
                                                    (False, b"C")]
    assert msgs[1][1] == hx("4f 00 00 00 00 00 ab cd ef 6f 72 69 67 69 6e 5f 78 00")  # captured (wal-a1)
    assert _writer16(origin="none").encode(tx.txn) == []
    assert len(_writer16(origin="any").encode(tx.txn)) == 5


def test_proto4_parallel_stream_abort_carries_lsn_and_time():
    wal = _wal_with_t_def()
    with wal.transaction(streaming=True, abort=True) as tx:
        tx.insert("public.t_def", {"id": 1})
    last = po.decode_pgoutput(_writer16(streaming="parallel").encode(tx.txn)[-1][1])
    assert isinstance(last, po.StreamAbort) and last.xid == last.subxid == tx.xid
    assert last.abort_lsn == tx.commit_lsn and last.abort_time == tx.txn.commit_time
    plain = po.decode_pgoutput(_writer16(streaming="on").encode(tx.txn)[-1][1])
    assert plain.abort_lsn is None  # v4 without parallel: the short form
    assert _writer16().encode(tx.txn) == []  # not streamed: a rolled-back transaction shows nothing


def test_relation_sent_again_after_alter_table():
    wal = _wal_with_t_def()
    w = _writer()
    t1 = wal.insert("public.t_def", {"id": 1})
    assert [p[:1] for _, p in w.encode(t1)] == [b"B", b"R", b"I", b"C"]
    wal.alter_table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text", "extra": "int8"})
    t2 = wal.insert("public.t_def", {"id": 2, "extra": 5})
    msgs = w.encode(t2)
    assert [p[:1] for _, p in msgs] == [b"B", b"R", b"I", b"C"]
    rel = po.decode_pgoutput(msgs[1][1])
    assert rel.relid == 16395 and [c.name for c in rel.columns][-1] == "extra"


def test_publications_filter_tables_actions_and_unknown_names():
    wal = _wal_with_t_def()
    pubs = {"pub": {"tables": {"public.t_tr1"}, "publish": {"insert"}}}
    w = _writer16(pubs=pubs)
    assert w.encode(wal.insert("public.t_def", {"id": 1})) == []  # table not in the publication
    assert [p[:1] for _, p in w.encode(wal.insert("public.t_tr1", {"id": 1}))] == [b"B", b"R", b"I", b"C"]
    assert w.encode(wal.delete("public.t_tr1", {"id": 1})) == []  # action not published
    bad = PgoutputWriter(po.parse_pgoutput_options({"proto_version": "1", "publication_names": "nosuch"}, 16),
                         Publications(pubs), 16)
    with pytest.raises(PgError, match='publication "nosuch" does not exist'):
        bad.encode(wal.insert("public.t_tr1", {"id": 2}))


def test_pg14_sends_empty_transactions():
    wal = _wal_with_t_def()
    tx = wal.message("p", "x", transactional=True)
    opts = po.parse_pgoutput_options({"proto_version": "2", "publication_names": "pub"}, 14)
    assert [p[:1] for _, p in PgoutputWriter(opts, Publications(None), 14).encode(tx)] == [b"B", b"C"]
    assert _writer().encode(tx) == []


def test_type_message_precedes_relation_for_user_types():
    from fakepm.answers.result import Column
    from fakepm.protocol.types import REGISTRY, enum_type

    mood = enum_type("mood", 16388, ["happy", "ok"])
    wal = _wal_with_t_def()
    wal._catalog().add("public.t_enum", [Column("id", REGISTRY.by_name("int4")), Column("m", mood)], key=["id"],
                       oid=16407)
    msgs = _writer().encode(wal.insert("public.t_enum", {"id": 1, "m": "happy"}))
    assert [(at, p[:1]) for at, p in msgs][1:3] == [(0, b"Y"), (0, b"R")]
    assert msgs[1][1] == hx("59 00 00 40 04 70 75 62 6c 69 63 00 6d 6f 6f 64 00")  # captured (wal-a1)


def test_hot_standby_feedback_is_reported():
    from fakepm.protocol.replication import HotStandbyFeedback

    fb = []
    st = PhysicalStream(slot=None, now=0.0, clock=Clock(), timeout=0, keepalive_interval=0, on_feedback=fb.append)
    st.start(0.0)
    assert st.receive(b"d", HotStandbyFeedback(5, 700, 0, 650, 0).encode(), 0.1) == b""
    assert fb == [{"kind": "hot_standby_feedback", "clock": 5, "xmin": 700, "epoch": 0, "catalog_xmin": 650,
                   "catalog_epoch": 0}]
    assert st.deadline is None  # timeout 0 = off


def test_fast_row_encoding_equals_the_message_classes():
    key = (po.TextValue(b"3"), None, None)
    new = (po.TextValue(b"4"), po.BinaryValue(b"\x00\x01"), po.UNCHANGED_TOAST)
    tb = po.encode_tuple_bytes
    assert po.encode_row_change("I", 16395, new=tb(new)) == po.Insert(16395, new).encode()
    assert po.encode_row_change("U", 16395, new=tb(new), old=tb(key), old_kind="K", xid=7) == \
        po.Update(16395, new, key=key, xid=7).encode()
    assert po.encode_row_change("U", 16395, new=tb(new)) == po.Update(16395, new).encode()
    assert po.encode_row_change("D", 16395, old=tb(new), old_kind="O") == po.Delete(16395, old=new).encode()
    assert tb([b"x", None], binary=True) == b"\x00\x02b\x00\x00\x00\x01xn"


def test_create_slot_option_errors_as_pg15():
    with pytest.raises(PgError, match="unrecognized option: bogus") as ei:
        g.parse_command("CREATE_REPLICATION_SLOT y LOGICAL pgoutput (BOGUS)")
    assert ei.value.code == "XX000"
    with pytest.raises(PgError, match='unrecognized value for CREATE_REPLICATION_SLOT option "snapshot": "bogus"'):
        g.parse_command("CREATE_REPLICATION_SLOT y LOGICAL pgoutput (SNAPSHOT 'bogus')")
