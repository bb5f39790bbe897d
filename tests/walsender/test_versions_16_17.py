"""What fakepm answers when it announces 16 or 17, for which no server is installed here: pinned
from PostgreSQL's sources (REL_17's walsender.c and repl_gram.y, the 16 commit ec40f34 and
pgoutput.c), between what 15.18 and 18.6 answer (test_commands_vs_postgres.py)."""

import pytest

from fakepm import FakePostgres

from .rawclient import RawClient, summary


def answers(version, commands):
    with FakePostgres(version=version) as pg, RawClient(pg.host, pg.port, replication="database") as c:
        return {sql: summary(c.query(sql)) for sql in commands}


@pytest.mark.parametrize("version", ["16.9", "17.5"])
def test_identify_system_and_timeline_history_as_16(version):
    got = answers(version, ["IDENTIFY_SYSTEM", "TIMELINE_HISTORY 1"])
    assert got["IDENTIFY_SYSTEM"]["cols"][1] == ("timeline", 20, -1)  # int8 since 16
    assert got["TIMELINE_HISTORY 1"]["cols"] == [("filename", 25, -1), ("content", 25, -1)]


def test_16_has_no_failover_and_no_alter_replication_slot():
    got = answers("16.9", ["CREATE_REPLICATION_SLOT f LOGICAL pgoutput (SNAPSHOT 'nothing', FAILOVER)",
                           "CREATE_REPLICATION_SLOT s LOGICAL pgoutput (SNAPSHOT 'nothing')",
                           "ALTER_REPLICATION_SLOT s (FAILOVER)",
                           "START_REPLICATION SLOT s LOGICAL 0/0 (proto_version '4', publication_names 'p', "
                           "streaming 'parallel', origin 'none')"])
    values = list(got.values())
    assert values[0]["error"] == ("XX000", "unrecognized option: failover")
    assert values[1]["tags"] == ["CREATE_REPLICATION_SLOT"]
    assert values[2]["error"] == ("42601", 'syntax error at or near "ALTER_REPLICATION_SLOT"')
    assert values[3].get("copy_both")  # proto 4, parallel streaming and origin exist since 16


def test_17_alters_failover_but_not_two_phase():
    got = answers("17.5", ["CREATE_REPLICATION_SLOT s LOGICAL pgoutput (SNAPSHOT 'nothing', FAILOVER)",
                           "ALTER_REPLICATION_SLOT s (FAILOVER false)",
                           "ALTER_REPLICATION_SLOT s (TWO_PHASE true)",
                           "CREATE_REPLICATION_SLOT t TEMPORARY LOGICAL pgoutput (FAILOVER)"])
    values = list(got.values())
    assert values[0]["tags"] == ["CREATE_REPLICATION_SLOT"]
    assert values[1]["tags"] == ["ALTER_REPLICATION_SLOT"]
    assert values[2]["error"] == ("XX000", "unrecognized option: two_phase")  # TWO_PHASE is 18's
    assert values[3]["error"] == ("0A000", "cannot enable failover for a temporary replication slot")


@pytest.mark.parametrize("version, code", [("17.10", "58P01"), ("17.11", "42501"), ("16.14", "58P01"),
                                           ("16.15", "42501"), ("15.18", "58P01"), ("15.19", "42501"),
                                           ("18.5", "58P01"), ("18.6", "42501")])
def test_output_plugin_allowlist_by_minor_release(version, code):
    """output_plugin_libraries (default 'pgoutput, test_decoding') came with these minors: another
    plugin is refused with 42501 before its library is looked for; test_decoding, allowed but not
    implemented by fakepm, is answered as a server without the library (58P01)."""
    got = answers(version, ["CREATE_REPLICATION_SLOT x LOGICAL wal2json",
                            "CREATE_REPLICATION_SLOT y LOGICAL test_decoding"])
    assert got["CREATE_REPLICATION_SLOT x LOGICAL wal2json"]["error"][0] == code
    assert got["CREATE_REPLICATION_SLOT y LOGICAL test_decoding"]["error"][0] == "58P01"


@pytest.mark.parametrize("version, names", [
    ("15.18", 13), ("16.9", 14), ("17.5", 14), ("18.6", 15)])
def test_parameter_status_count_per_version(version, names):
    with FakePostgres(version=version) as pg, RawClient(pg.host, pg.port) as c:
        statuses = [b for t, b in c.startup if t == b"S"]
    assert len(statuses) == names
