"""Transactions framed once and shared by connections (encoder.frames / plain_body), sans-I/O and with real clients.

The reference is the message-by-message path: `PgoutputWriter.encode()` on a second writer that saw the
same records, each message framed as its own XLogData CopyData. Whatever the options, publications, table
alterations and record kinds, `send_time.join(frames(rec)[0])` must be those bytes.
"""

import os
import select
import struct
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm import FakePostgres
from fakepm.protocol import messages as m
from fakepm.protocol import pgoutput as po
from fakepm.protocol.errors import PgError
from fakepm.walsender.encoder import PgoutputWriter, Publications, plain_body
from fakepm.walsender.sender import WalSender

from .helpers import lsn, need

TS = 802_000_000_123_456  # any sendTime


def one_by_one(msgs, ts=TS) -> bytes:
    return b"".join(m.copy_data(struct.pack(">cQQq", b"w", s, s, ts) + p) for s, p in msgs)


def shared(writer, rec, ts=TS) -> bytes:
    segments, count = writer.frames(rec)
    data = struct.pack(">q", ts).join(segments)
    assert count == sum(1 for x in m.split_backend_stream(data))
    return data


def _wal():
    wal = WalSender(None, clock=lambda: 1_700_000_000.0)
    cat = wal._catalog()
    cat.add("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text"}, key=["id"], oid=16395)
    cat.add("public.t_full", {"id": "int4", "x": "text"}, replica_identity="f", oid=16415)
    return wal


def _options(proto, binary, messages, streaming, major=15):
    proto = min(proto, 2 if major == 14 else 3)  # what PostgreSQL 14 and 15 accept
    o = {"proto_version": str(proto), "publication_names": "pub", "binary": str(binary).lower(),
         "messages": str(messages).lower()}
    if streaming and proto >= 2:
        o["streaming"] = "on"
    return po.parse_pgoutput_options(o, major)


# ---------------------------------------------------------------------------- random WAL, every option
texts = st.one_of(st.none(), st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                                     max_size=12))
ints = st.one_of(st.none(), st.integers(-2**31, 2**31 - 1))
change = st.tuples(st.sampled_from(["insert", "update", "update_key", "delete", "full_update", "full_delete"]),
                   st.integers(1, 5), texts, ints)
op = st.one_of(
    st.tuples(st.just("tx"), st.lists(change, min_size=0, max_size=6), st.booleans(), st.booleans()),
    st.tuples(st.just("alter"), st.sampled_from(["public.t_def", "public.t_full"])),
    st.tuples(st.just("message"), st.booleans()),
    st.tuples(st.just("truncate")),
    st.tuples(st.just("origin")),
    st.tuples(st.just("subabort")),
)
consumer = st.tuples(st.integers(1, 3), st.booleans(), st.booleans(), st.booleans(),
                     st.sampled_from([None, "def_inserts", "all_full"]))
PUBS = {"def_inserts": {"pub": {"tables": {"public.t_def"}, "publish": {"insert"}}},
        "all_full": {"pub": {"tables": {"public.t_full"}, "publish": {"insert", "update", "delete", "truncate"}}}}


def _apply(wal, tx, kind, i, a, b):
    if kind == "insert":
        tx.insert("public.t_def", {"id": i, "a": a, "b": b})
    elif kind == "update":
        tx.update("public.t_def", {"id": i, "a": a, "b": b, "big": po.UNCHANGED_TOAST})
    elif kind == "update_key":
        tx.update("public.t_def", {"id": i + 10, "a": a}, old={"id": i})
    elif kind == "delete":
        tx.delete("public.t_def", {"id": i})
    elif kind == "full_update":
        tx.update("public.t_full", {"id": i, "x": a}, old={"id": i, "x": "old"})
    else:
        tx.delete("public.t_full", {"id": i, "x": a})


def _emit(wal, ops) -> list:
    records = []
    for o in ops:
        kind = o[0]
        if kind == "tx":
            _, changes, streaming, with_message = o
            with wal.transaction(streaming=streaming, segment_size=2) as tx:
                for c in changes:
                    _apply(wal, tx, *c)
                if with_message:
                    tx.message("pfx", "in-tx")
            records.append(tx.txn)
        elif kind == "alter":
            t = wal.table(o[1])
            wal.alter_table(o[1], {c.name: c.type.name for c in t.columns})  # same shape, new Table object
        elif kind == "message":
            records.append(wal.message("pfx", "standalone", transactional=o[1]))
        elif kind == "truncate":
            records.append(wal.truncate(["public.t_def", "public.t_full"]))
        elif kind == "origin":
            with wal.transaction(origin=("up", 0x1234)) as tx:
                tx.insert("public.t_def", {"id": 77})
            records.append(tx.txn)
        else:
            with wal.transaction() as tx:
                tx.insert("public.t_def", {"id": 1})
                with tx.subtransaction(abort=True):
                    tx.insert("public.t_def", {"id": 2})
            records.append(tx.txn)
    return records


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, max_size=12), consumers=st.lists(consumer, min_size=1, max_size=3), major=st.sampled_from([14, 15]))
def test_shared_frames_equal_message_by_message_framing(ops, consumers, major):
    wal = _wal()
    records = _emit(wal, ops)
    pairs = []
    for proto, binary, messages, streaming, pubs in consumers:
        opts = _options(proto, binary, messages, streaming, major)
        pairs.append((PgoutputWriter(opts, Publications(PUBS.get(pubs)), major),
                      PgoutputWriter(opts, Publications(PUBS.get(pubs)), major)))
    for rec in records:  # consumers interleaved, as connections on one loop are
        for fast, reference in pairs:
            assert shared(fast, rec) == one_by_one(reference.encode(rec))


# ---------------------------------------------------------------------------- what is shared, and when
def test_body_is_encoded_once_per_format_and_shared():
    wal = _wal()
    warm = wal.insert("public.t_def", {"id": 0})  # carries the Relation: per connection
    with wal.transaction() as tx:
        for i in range(1, 4):
            tx.insert("public.t_def", {"id": i, "a": f"r{i}"})
    body = plain_body(tx.txn)
    assert body is not None and body.count == 5 and set(body.segments) == {False}  # text built at emit time
    a, b = (PgoutputWriter(_options(1, False, False, False), Publications(None), 15) for _ in range(2))
    binw = PgoutputWriter(_options(1, True, False, False), Publications(None), 15)
    for w in (a, b, binw):
        assert w.frames(warm)[0] is not plain_body(warm).segments.get(w.opts.binary)  # Relation first
    assert a.frames(tx.txn)[0] is b.frames(tx.txn)[0] is body.segments[False]
    assert binw.frames(tx.txn)[0] is body.segments[True]
    assert shared(binw, tx.txn) != shared(a, tx.txn)


def test_not_shared_when_relation_due_or_filtered_and_errors_as_before():
    wal = _wal()
    w = PgoutputWriter(_options(1, False, False, False), Publications(None), 15)
    t1 = wal.insert("public.t_def", {"id": 1})
    assert [p[:1] for p in _payloads(shared(w, t1))] == [b"B", b"R", b"I", b"C"]
    t2 = wal.insert("public.t_def", {"id": 2})
    assert w.frames(t2)[0] is plain_body(t2).segments[False]
    wal.alter_table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text", "extra": "int8"})
    t3 = wal.insert("public.t_def", {"id": 3, "extra": 9})
    assert [p[:1] for p in _payloads(shared(w, t3))] == [b"B", b"R", b"I", b"C"]  # the new Relation
    filtered = PgoutputWriter(_options(1, False, False, False), Publications(PUBS["all_full"]), 15)
    assert filtered.frames(t2) == ([], 0)
    bad = PgoutputWriter(po.parse_pgoutput_options({"proto_version": "1", "publication_names": "nosuch"}, 15),
                         Publications(PUBS["all_full"]), 15)
    with pytest.raises(PgError, match='publication "nosuch" does not exist'):
        bad.frames(t2)


def _payloads(data: bytes) -> list:
    return [x.data[25:] for x in m.split_backend_stream(data)]


# ---------------------------------------------------------------------------- real clients over sockets
psycopg2 = pytest.importorskip("psycopg2")
import psycopg2.extras  # noqa: E402


@pytest.fixture
def pg():
    with FakePostgres(version="15.4") as server:
        server.wal.configure(wal_sender_timeout=5, keepalive_interval=1)
        server.table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text"}, key=["id"])
        yield server


def _emit_many(pg, n_tx=30, per_tx=50) -> list:
    """Transactions of inserts, an ALTER TABLE halfway, a non-transactional message and an update."""
    records = []
    for k in range(n_tx):
        if k == n_tx // 2:
            pg.wal.alter_table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text", "c": "int8"})
            records.append(pg.wal.message("pfx", "half", transactional=False))
        with pg.wal.transaction() as tx:
            for i in range(per_tx):
                tx.insert("public.t_def", {"id": k * per_tx + i, "a": "é" * (i % 7), "b": i if i % 3 else None})
        records.append(tx.txn)
    records.append(pg.wal.update("public.t_def", {"id": 1, "a": "new"}))
    return records


def _expected(records, **opts) -> list:
    o = {"proto_version": "1", "publication_names": "pub", **opts}
    writer = PgoutputWriter(po.parse_pgoutput_options(o, 15), Publications(None), 15)
    return [(s, p) for rec in records for s, p in writer.encode(rec)]


def _consume(pg, slot, n, options, timeout=20.0):
    """psycopg2 LogicalReplicationConnection: n XLogData messages, then flush feedback for the last."""
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.start_replication(slot_name=slot, decode=False, options=options)
        got, deadline = [], time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            msg = cur.read_message()
            if msg is None:
                select.select([cur], [], [], 0.2)
                continue
            got.append((msg.data_start, bytes(msg.payload)))
        assert got, "no XLogData within the timeout"
        cur.send_feedback(flush_lsn=got[-1][0], reply=True)
        end = time.monotonic() + timeout
        while pg.wal.slots[slot].confirmed_flush < got[-1][0] and time.monotonic() < end:
            cur.read_message()
            time.sleep(0.02)
        return got
    finally:
        conn.close()


def test_psycopg2_consumers_on_two_slots_get_identical_bytes_text_and_binary(pg):
    for slot in ("s_text", "s_text2", "s_bin"):
        pg.wal.create_slot(slot)
    records = _emit_many(pg)
    text = _expected(records)
    binary = _expected(records, binary="true", messages="true")
    assert _consume(pg, "s_text", len(text), {"proto_version": "1", "publication_names": "pub"}) == text
    assert _consume(pg, "s_text2", len(text), {"proto_version": "1", "publication_names": "pub"}) == text
    got = _consume(pg, "s_bin", len(binary), {"proto_version": "1", "publication_names": "pub", "binary": "true",
                                               "messages": "true"})
    assert got == binary
    assert [p[:1] for _, p in got].count(b"R") == 2 and b"M" in [p[:1] for _, p in got]
    for slot in ("s_text", "s_text2", "s_bin"):
        assert pg.wal.slots[slot].confirmed_flush == records[-1].end_lsn  # feedback moved the slot


def test_live_consumer_gets_transactions_emitted_while_it_streams(pg):
    pg.wal.create_slot("live")
    first = pg.wal.insert("public.t_def", {"id": -1})
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.start_replication(slot_name="live", decode=False, options={"proto_version": "1", "publication_names": "pub"})
        pg.wal.wait_for_stream(slot="live")
        records = [first] + _emit_many(pg, n_tx=6, per_tx=20)
        want = _expected(records)
        got, deadline = [], time.monotonic() + 20
        while len(got) < len(want) and time.monotonic() < deadline:
            msg = cur.read_message()
            if msg is None:
                select.select([cur], [], [], 0.2)
                continue
            got.append((msg.data_start, bytes(msg.payload)))
        assert got == want
    finally:
        conn.close()


def test_stream_stops_producing_while_the_client_does_not_read(pg):
    """Back-pressure: a consumer that reads nothing gets what fits in the buffers, not the whole WAL."""
    pg.wal.create_slot("slow")
    for k in range(300):  # ~60 MB of pgoutput
        with pg.wal.transaction() as tx:
            for i in range(200):
                tx.insert("public.t_def", {"id": k * 1000 + i, "a": "y" * 1000})
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = conn.cursor()
        cur.start_replication(slot_name="slow", decode=False, options={"proto_version": "1", "publication_names": "pub"})
        pg.wal.wait_for_stream(slot="slow")
        (stream,) = pg.wal.streams
        # nothing read: the sender fills the socket buffers and its output limit, then waits
        seen, deadline = -1, time.monotonic() + 10
        while stream.index != seen and time.monotonic() < deadline:
            seen = stream.index
            time.sleep(0.3)
        assert stream.index == seen < len(pg.wal.log.records) // 2
        total = 300 * 202 + 1  # one Relation
        got, deadline = 0, time.monotonic() + 60
        while got < total and time.monotonic() < deadline:  # reading lets it finish
            msg = cur.read_message()
            if msg is None:
                select.select([cur], [], [], 0.2)
                continue
            got += 1
        assert got == total
    finally:
        conn.close()


def test_pg_recvlogical_two_slots_write_identical_files(pg, tmp_path):
    need("pg_recvlogical")
    for slot in ("r1", "r2"):
        pg.wal.create_slot(slot)
    records = _emit_many(pg)
    want = b"".join(p + b"\n" for _, p in _expected(records))
    for slot in ("r1", "r2"):
        out = tmp_path / f"{slot}.out"
        r = subprocess.run(["pg_recvlogical", "-d", pg.conninfo(), "--slot", slot, "--start", "-o", "proto_version=1",
                            "-o", "publication_names=pub", "-E", lsn(records[-1]), "-f", str(out)],
                           capture_output=True, text=True, timeout=30, env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == want
