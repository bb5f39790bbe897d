"""pg_recvlogical (PostgreSQL 15) against the fake walsender: slots, proto 1 and 3, options, keepalives."""

import subprocess
import time

import pytest

from fakepm import FakePostgres
from fakepm.protocol import pgoutput as po
from fakepm.walsender.encoder import PgoutputWriter, Publications

from .helpers import lsn, need, run, standby_updates, stop


@pytest.fixture
def pg():
    need("pg_recvlogical")
    with FakePostgres(version="15.4") as server:
        server.wal.configure(wal_sender_timeout=2, keepalive_interval=0.5)
        server.table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text"}, key=["id"])
        yield server


def recv(pg, *args, timeout=15):
    return run(["pg_recvlogical", "-d", pg.conninfo(), *args], timeout=timeout)


def test_create_start_endpos_drop_proto1(pg, tmp_path):
    r = recv(pg, "--slot", "rl1", "--create-slot", "-P", "pgoutput")
    assert r.returncode == 0, r.stderr
    assert "rl1" in pg.wal.slots
    t1 = pg.wal.insert("public.t_def", {"id": 1, "a": "one", "b": 10})
    msg = pg.wal.message("myprefix", "non-transactional msg")
    t2 = pg.wal.delete("public.t_def", {"id": 1})
    out = tmp_path / "out.bin"
    r = recv(pg, "--slot", "rl1", "--start", "-o", "proto_version=1", "-o", "publication_names=pub",
             "-o", "messages=true", "-E", lsn(t2), "-f", str(out))
    assert r.returncode == 0, r.stderr
    rel = po.Relation(pg.catalog.get("public.t_def").oid, "public", "t_def", "d", (
        po.RelationColumn("id", 23, -1, 1), po.RelationColumn("a", 25, -1, 0),
        po.RelationColumn("b", 23, -1, 0), po.RelationColumn("big", 25, -1, 0)))
    expected = [
        po.Begin(t1.commit_lsn, t1.commit_time, t1.xid), rel,
        po.Insert(rel.relid, (po.TextValue(b"1"), po.TextValue(b"one"), po.TextValue(b"10"), None)),
        po.Commit(t1.commit_lsn, t1.end_lsn, t1.commit_time),
        po.Message(msg.change.lsn, "myprefix", b"non-transactional msg", 0),
        po.Begin(t2.commit_lsn, t2.commit_time, t2.xid),
        po.Delete(rel.relid, key=(po.TextValue(b"1"), None, None, None)),
        po.Commit(t2.commit_lsn, t2.end_lsn, t2.commit_time),
    ]
    # pg_recvlogical writes each XLogData payload followed by a newline
    assert out.read_bytes() == b"".join(x.encode() + b"\n" for x in expected)
    # it confirmed the end position, then ended with CopyDone: the slot keeps confirmed_flush
    assert pg.wal.slots["rl1"].confirmed_flush == t2.end_lsn
    assert standby_updates(pg, "rl1")[-1]["flush"] == t2.end_lsn
    r = recv(pg, "--slot", "rl1", "--drop-slot")
    assert r.returncode == 0, r.stderr
    assert "rl1" not in pg.wal.slots
    kinds = [q.sql.split()[0] for q in pg.queries if q.protocol == "replication"]
    assert kinds == ["IDENTIFY_SYSTEM", "CREATE_REPLICATION_SLOT", "IDENTIFY_SYSTEM", "START_REPLICATION",
                     "IDENTIFY_SYSTEM", "DROP_REPLICATION_SLOT"]
    pg.verify()


def test_proto3_streaming_two_phase_binary(pg, tmp_path):
    r = recv(pg, "--slot", "rl2", "--create-slot", "-P", "pgoutput", "--two-phase")
    assert r.returncode == 0, r.stderr
    assert pg.wal.slots["rl2"].two_phase
    records = [pg.wal.insert("public.t_def", {"id": 2, "a": "bin", "b": 7})]
    with pg.wal.transaction(streaming=True, segment_size=3) as tx:
        for i in range(7):
            tx.insert("public.t_def", {"id": 100 + i, "a": "x" * 200})
        with tx.subtransaction(abort=True):
            tx.insert("public.t_def", {"id": 999})
    records.append(tx.txn)
    with pg.wal.transaction(streaming=True, abort=True) as aborted:
        aborted.insert("public.t_def", {"id": 5000})
    records.append(aborted.txn)
    with pg.wal.transaction(prepare="gid_commit") as p1:
        p1.insert("public.t_def", {"id": 500, "a": "2pc", "b": 5})
    records += [p1.txn, pg.wal.commit_prepared("gid_commit")]
    with pg.wal.transaction(prepare="gid_rollback") as p2:
        p2.insert("public.t_def", {"id": 501, "a": "2pc-rb", "b": 5})
    records += [p2.txn, pg.wal.rollback_prepared("gid_rollback")]
    out = tmp_path / "out.bin"
    r = recv(pg, "--slot", "rl2", "--start", "-o", "proto_version=3", "-o", "publication_names=pub",
             "-o", "streaming=on", "-o", "binary=true", "-o", "two_phase=on", "-E", lsn(records[-1]), "-f", str(out))
    assert r.returncode == 0, r.stderr
    writer = PgoutputWriter(po.parse_pgoutput_options(
        {"proto_version": "3", "publication_names": "pub", "streaming": "on", "binary": "true", "two_phase": "on"},
        15), Publications(None), 15)
    payloads = [p for rec in records for _, p in writer.encode(rec)]
    assert out.read_bytes() == b"".join(p + b"\n" for p in payloads)
    kinds = "".join(chr(p[0]) for p in payloads)
    assert kinds.startswith("BRIC") and "S" in kinds and "A" in kinds and "c" in kinds
    assert kinds.endswith("bIPKbIPr")
    pg.verify()


@pytest.mark.parametrize("options, message", [
    (["-o", "proto_version=99", "-o", "publication_names=pub"],
     "client sent proto_version=99 but we only support protocol 3 or lower"),
    (["-o", "proto_version=1"], "publication_names parameter missing"),
    (["-o", "proto_version=1", "-o", "publication_names=pub", "-o", "streaming=on"],
     "requested proto_version=1 does not support streaming, need 2 or higher"),
    (["-o", "proto_version=1", "-o", "publication_names=pub", "-o", "bogus=x"], "unrecognized pgoutput option: bogus"),
])
def test_bad_options_exit_nonzero_with_the_fakes_message(pg, options, message):
    pg.wal.create_slot("errslot")
    r = recv(pg, "--slot", "errslot", "--start", "--no-loop", "-f", "-", *options)  # without -n it retries
    assert r.returncode != 0
    assert message in r.stderr
    assert pg.wal.slots["errslot"].active_pid is None  # the slot is free again


def test_unknown_slot(pg):
    r = recv(pg, "--slot", "nosuch", "--start", "-n", "-f", "-", "-o", "proto_version=1", "-o", "publication_names=p")
    assert r.returncode != 0 and 'replication slot "nosuch" does not exist' in r.stderr


def test_idle_stream_survives_two_timeouts_by_answering_pings(pg, tmp_path):
    pg.wal.configure(keepalive_interval=0)  # only the timeout pings keep it alive
    pg.wal.create_slot("idle")
    proc = subprocess.Popen(["pg_recvlogical", "-d", pg.conninfo(), "--slot", "idle", "--start", "-f",
                             str(tmp_path / "idle.out"), "-o", "proto_version=1", "-o", "publication_names=pub"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pg.wal.wait_for_stream(slot="idle", timeout=5)
        time.sleep(4.5)  # wal_sender_timeout is 2 s: two full timeouts
        assert proc.poll() is None, proc.stderr.read()
        assert len(pg.wal.streams) == 1
        # it answered the replyRequested pings with standby status updates
        assert len(standby_updates(pg, "idle")) >= 3
        # and it still receives changes
        t = pg.wal.insert("public.t_def", {"id": 7})
        pg.wal.wait_for_flush(t, timeout=12, slot="idle")
    finally:
        stop(proc)
    assert not [e for e in pg.events if e["kind"] == "disconnect" and "timeout" in e.get("reason", "")]
