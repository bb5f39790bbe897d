"""The replication command language next to PostgreSQL 15 and 18, fakepm announcing the same version.

Every command of COMMANDS runs on a replication=database connection of the real server and of
fakepm; each answer must be the same: columns (name, type, typmod), rows (LSNs and system ids,
which differ by nature, compared by shape), tags, error code and message, ReadyForQuery status.
What changed between the versions is all in there: FAILOVER slots and ALTER_REPLICATION_SLOT
(17+; TWO_PHASE in ALTER since 18), IDENTIFY_SYSTEM's timeline as int8 and TIMELINE_HISTORY's typmod
(16+), the pgoutput option errors (origin and streaming 'parallel' since 16, the option-missing
texts of 18), proto_version 4, the output-plugin allowlist of the latest minors. 16 and 17 are
not installed here: commands.py cites their sources.
"""

from __future__ import annotations

import re

import pytest

from fakepm import FakePostgres

from .rawclient import RawClient, error_fields, summary

pytestmark = pytest.mark.realpg

START = "START_REPLICATION SLOT {slot} LOGICAL 0/0 ({options})"
COMMANDS = [
    "IDENTIFY_SYSTEM",
    "SHOW wal_segment_size", "SHOW data_directory_mode", "SHOW nosuch_setting",
    "CREATE_REPLICATION_SLOT s1 LOGICAL pgoutput (SNAPSHOT 'nothing')",
    "CREATE_REPLICATION_SLOT s1 LOGICAL pgoutput (SNAPSHOT 'nothing')",
    "CREATE_REPLICATION_SLOT s2 LOGICAL pgoutput (SNAPSHOT 'nothing', FAILOVER)",
    "CREATE_REPLICATION_SLOT s3 LOGICAL pgoutput (SNAPSHOT 'nothing', TWO_PHASE)",
    "CREATE_REPLICATION_SLOT s4 TEMPORARY LOGICAL pgoutput (SNAPSHOT 'nothing', FAILOVER)",
    "CREATE_REPLICATION_SLOT p1 PHYSICAL (FAILOVER)",
    "CREATE_REPLICATION_SLOT p2 PHYSICAL (RESERVE_WAL)",
    "CREATE_REPLICATION_SLOT p3 PHYSICAL (SNAPSHOT 'nothing')",
    "CREATE_REPLICATION_SLOT s5 LOGICAL pgoutput (BOGUS)",
    "CREATE_REPLICATION_SLOT s5 LOGICAL pgoutput (FAILOVER, BOGUS)",
    "CREATE_REPLICATION_SLOT s6 LOGICAL pgoutput (SNAPSHOT 'bogus')",
    "CREATE_REPLICATION_SLOT s7 LOGICAL pgoutput (FAILOVER 'maybe')",
    "CREATE_REPLICATION_SLOT s8 LOGICAL pgoutput (TWO_PHASE, TWO_PHASE)",
    "CREATE_REPLICATION_SLOT s9 LOGICAL nosuchplugin (SNAPSHOT 'nothing')",
    "CREATE_REPLICATION_SLOT s10 LOGICAL pgoutput NOEXPORT_SNAPSHOT",
    "CREATE_REPLICATION_SLOT s11 LOGICAL pgoutput (SNAPSHOT 'use')",
    "CREATE_REPLICATION_SLOT s12 LOGICAL pgoutput RESERVE_WAL",
    "CREATE_REPLICATION_SLOT s13 LOGICAL pgoutput TWO_PHASE",
    "ALTER_REPLICATION_SLOT s1 (FAILOVER true)",
    "ALTER_REPLICATION_SLOT s1 (FAILOVER false)",
    "ALTER_REPLICATION_SLOT s1 (FAILOVER)",
    "ALTER_REPLICATION_SLOT s1 (TWO_PHASE true)",
    "ALTER_REPLICATION_SLOT s1 (TWO_PHASE false, FAILOVER false)",
    "ALTER_REPLICATION_SLOT s1 (BOGUS)",
    "ALTER_REPLICATION_SLOT s1 (FAILOVER, FAILOVER)",
    "ALTER_REPLICATION_SLOT nosuch (FAILOVER)",
    "ALTER_REPLICATION_SLOT p2 (FAILOVER)",
    "ALTER_REPLICATION_SLOT s1",
    "READ_REPLICATION_SLOT s1", "READ_REPLICATION_SLOT p2", "READ_REPLICATION_SLOT nosuch",
    "TIMELINE_HISTORY 1", "TIMELINE_HISTORY 0",
    START.format(slot="s1", options="proto_version '4', publication_names 'p'"),
    START.format(slot="s1", options="proto_version '4', publication_names 'p', streaming 'parallel'"),
    START.format(slot="s1", options="proto_version '3', publication_names 'p', streaming 'parallel'"),
    START.format(slot="s1", options="proto_version '4', publication_names 'p', origin 'none'"),
    START.format(slot="s1", options="proto_version '4', publication_names 'p', origin 'bogus'"),
    START.format(slot="s1", options="proto_version '5', publication_names 'p'"),
    START.format(slot="s1", options="proto_version '1'"),
    START.format(slot="s1", options="publication_names 'p'"),
    START.format(slot="s1", options="proto_version '1', publication_names 'p', bogus 'x'"),
    START.format(slot="s1", options="proto_version '2', publication_names 'p', two_phase 'on'"),
    START.format(slot="s1", options="proto_version '1', publication_names 'p', streaming 'on'"),
    START.format(slot="s1", options="proto_version '3', publication_names 'p', binary 'maybe'"),
    START.format(slot="p2", options="proto_version '1', publication_names 'p'"),
    "START_REPLICATION SLOT s1 PHYSICAL 0/0",
    START.format(slot="nosuch", options="proto_version '1', publication_names 'p'"),
    "DROP_REPLICATION_SLOT nosuch", "DROP_REPLICATION_SLOT s1", "DROP_REPLICATION_SLOT s1 WAIT",
    "SELECT 1",
    "CREATE_REPLICATION_SLOT",
    "IDENTIFY_SYSTEM now",
]
# tablesync's dialog: the snapshot options inside a transaction
IN_TRANSACTION = [
    "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ",
    "CREATE_REPLICATION_SLOT t1 LOGICAL pgoutput (SNAPSHOT 'use')",
    "CREATE_REPLICATION_SLOT t2 LOGICAL pgoutput (SNAPSHOT 'export')",
    "ROLLBACK",
    "DROP_REPLICATION_SLOT t1",
]
# a physical replication connection (replication=true)
PHYSICAL = [
    "IDENTIFY_SYSTEM",
    "SELECT 1",
    "CREATE_REPLICATION_SLOT l1 LOGICAL pgoutput (SNAPSHOT 'nothing')",
    "CREATE_REPLICATION_SLOT ph1 PHYSICAL",
    "ALTER_REPLICATION_SLOT ph1 (FAILOVER)",
    "READ_REPLICATION_SLOT ph1",
    "DROP_REPLICATION_SLOT ph1",
]
# not implemented by fakepm (documented): UPLOAD_MANIFEST opens a COPY IN on 17+ (0A000 here)
NOT_IMPLEMENTED_SINCE_17 = ["UPLOAD_MANIFEST"]

_LSN = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")
_SNAPSHOT = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{8}-\d+$")


def _shape(item: dict) -> dict:
    out = dict(item)
    if "rows" in out:
        out["rows"] = [["<lsn>" if isinstance(v, str) and _LSN.match(v) else
                        "<snapshot>" if isinstance(v, str) and _SNAPSHOT.match(v) else
                        "<sysid>" if isinstance(v, str) and v.isdigit() and len(v) > 12 else v for v in row]
                       for row in out["rows"]]
    return out


def run(host: int, port: int, commands: list, replication: str = "database") -> list:
    out = []
    client = RawClient(host, port, replication=replication)
    try:
        for sql in commands:
            if sql.startswith("START_REPLICATION"):  # each on a connection of its own, as clients do
                with RawClient(host, port, replication=replication) as other:
                    out.append((sql, _shape(summary(other.query(sql)))))
                continue
            out.append((sql, _shape(summary(client.query(sql)))))
    finally:
        client.close()
    return out


@pytest.fixture
def fake_like(oracle_pg):
    with FakePostgres(version=oracle_pg.server_version) as pg:
        yield pg


def _drop_slots(oracle_pg, names):
    for name in names:
        oracle_pg.psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                       f"WHERE slot_name = '{name}'")


@pytest.mark.parametrize("commands, replication", [(COMMANDS, "database"), (IN_TRANSACTION, "database"),
                                                   (PHYSICAL, "true")], ids=["commands", "in-transaction", "physical"])
def test_replication_commands_answer_as_postgresql(oracle_pg, fake_like, commands, replication):
    try:
        want = run(oracle_pg.host, oracle_pg.port, commands, replication)
    finally:
        _drop_slots(oracle_pg, [w for sql in commands for w in re.findall(r"SLOT (\w+)", sql)
                                if sql.startswith("CREATE")])
    got = run(fake_like.host, fake_like.port, commands, replication)
    problems = [f"{sql}\n   PostgreSQL: {w}\n   fakepm:     {g}" for (sql, w), (_, g) in zip(want, got) if w != g]
    assert not problems, f"PostgreSQL {oracle_pg.server_version}:\n" + "\n".join(problems)


def test_version_markers(oracle_pg, fake_like):
    """The answers that differ between 15 and 18 (so that the comparison above compares something)."""
    got = dict(run(fake_like.host, fake_like.port, COMMANDS))
    new = oracle_pg.major >= 17
    assert ("error" not in got["CREATE_REPLICATION_SLOT s2 LOGICAL pgoutput (SNAPSHOT 'nothing', FAILOVER)"]) == new
    assert got["ALTER_REPLICATION_SLOT s1 (FAILOVER true)"].get("tags") == (["ALTER_REPLICATION_SLOT"] if new else None)
    assert got["IDENTIFY_SYSTEM"]["cols"][1][1] == (20 if oracle_pg.major >= 16 else 23)


def test_plugin_error_detail_and_hint(oracle_pg, fake_like):
    sql = "CREATE_REPLICATION_SLOT nope LOGICAL nosuchplugin (SNAPSHOT 'nothing')"

    def fields(host, port):
        with RawClient(host, port, replication="database") as c:
            body = next(b for t, b in c.query(sql) if t == b"E")
        f = error_fields(body)
        return f.get("C"), f.get("M"), f.get("D"), f.get("H")

    want, got = fields(oracle_pg.host, oracle_pg.port), fields(fake_like.host, fake_like.port)
    if want[0] == "42501":  # the allowlist minors: detail and hint too
        assert got == want
    else:
        assert got[:3] == want[:3]


def test_upload_manifest_is_not_implemented(fake_like):
    got = dict(run(fake_like.host, fake_like.port, NOT_IMPLEMENTED_SINCE_17))["UPLOAD_MANIFEST"]
    if fake_like.config.major >= 17:
        assert got["error"] == ("0A000", "fakepm does not implement UPLOAD_MANIFEST")
    else:
        assert got["error"] == ("42601", 'syntax error at or near "UPLOAD_MANIFEST"')
