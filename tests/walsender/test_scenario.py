"""The scenario file's `replication:` section: validation with file:line, and driving real clients."""

import os

import pytest

from fakepm import FakePostgres
from fakepm.protocol import pgoutput as po
from fakepm.protocol.replication import format_lsn, to_pg_timestamp
from fakepm.walsender import parse_replication_section

from .helpers import need, run

HERE = os.path.dirname(__file__)
CDC = os.path.join(HERE, "scenarios", "cdc.yaml")


def test_one_scenario_drives_sql_and_pg_recvlogical(tmp_path):
    need("pg_recvlogical")
    psycopg = pytest.importorskip("psycopg")
    with FakePostgres(CDC, version="15.4") as pg:
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT count(*) AS n FROM orders").fetchone() == (1,)
        out = tmp_path / "out.bin"
        r = run(["pg_recvlogical", "-d", pg.conninfo(), "--slot", "sub1", "--start", "-o", "proto_version=1",
                 "-o", "publication_names=pub", "-o", "messages=true", "-E", format_lsn(pg.wal.lsn), "-f", str(out)],
                timeout=20)
        assert r.returncode == 0, r.stderr
        data = out.read_bytes()
        txns = [rec for rec in pg.wal.log.records if hasattr(rec, "xid")]
        assert txns[1].xid == 1000 and txns[1].commit_time == to_pg_timestamp(1704164645)
        # decode the newline-separated payloads in order, using the known message lengths
        kinds = []
        pos = 0
        dec = po.PgoutputDecoder(1)
        while pos < len(data):
            for end in range(pos + 1, len(data) + 1):
                if data[end - 1:end] != b"\n":
                    continue
                try:
                    msg = dec.decode(data[pos:end - 1])
                except ValueError:
                    continue
                kinds.append(type(msg).__name__)
                pos = end
                break
            else:
                raise AssertionError(f"undecodable output at byte {pos}: {data[pos:pos + 40]!r}")
        assert kinds == ["Begin", "Relation", "Insert", "Commit", "Begin", "Update", "Message", "Delete", "Commit",
                         "Message"]
        pg.verify()


@pytest.mark.parametrize("yaml_text, message", [
    ("replication:\n  stream:\n    - insret: {table: t}\n", "3:7: replication.stream[0]: unknown item 'insret'"),
    ("replication:\n  tables:\n    public.t:\n      columns: {id: int4}\n      replica_identity: sideways\n",
     "5:25: replication.tables.public.t.replica_identity: expected default, full, nothing or index"),
    ("replication:\n  stream:\n    - pause: soon\n", "3:14: replication.stream[0].pause: expected seconds"),
    ("replication:\n  slots:\n    - {type: physical}\n", "3:7: replication.slots[0]: needs name:"),
    ("replication:\n  wal_sender_tmeout: 1\n", "replication: unknown key(s) ['wal_sender_tmeout']"),
])
def test_scenario_errors_name_file_line_and_path(tmp_path, yaml_text, message):
    from fakepm.scenario import check_paths

    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    problems = check_paths([str(path)])
    assert len(problems) == 1 and message in problems[0], problems


def test_apply_time_errors_name_the_stream_item(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("replication:\n  stream:\n    - insert: {table: public.nope, row: {id: 1}}\n")
    with pytest.raises(ValueError, match=r"bad.yaml:3:15: .*table 'public.nope' is not declared"):
        FakePostgres(str(path))


def test_parse_replication_section_for_other_loaders():
    sec = parse_replication_section({"tables": {"t": {"columns": {"id": "int4"}, "key": ["id"]}},
                                     "stream": [{"insert": {"table": "t", "row": {"id": 1}}},
                                                {"fault": "disconnect"}]})
    pg = FakePostgres()
    sec.apply(pg)
    assert [type(r).__name__ for r in pg.wal.log.records] == ["Txn", "Marker"]
    with pytest.raises(ValueError, match=r"replication.stream\[0\].insert: needs table: and row:"):
        parse_replication_section({"stream": [{"insert": {"row": {}}}]})


def test_bundled_cdc_scenario_streams_to_psycopg2():
    psycopg2 = pytest.importorskip("psycopg2")
    import psycopg2.extras
    import select
    import time

    path = os.path.join(HERE, "..", "..", "scenarios", "cdc.yaml")
    with FakePostgres(path) as pg:
        pg.wal.configure(keepalive_interval=0.2)
        conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        try:
            cur = conn.cursor()
            cur.start_replication(slot_name="orders_cdc", decode=False, options={
                "proto_version": "1", "publication_names": "orders_pub", "messages": "true"})
            kinds, deadline = [], time.monotonic() + 10
            while len(kinds) < 16 and time.monotonic() < deadline:
                msg = cur.read_message()
                if msg is None:
                    select.select([cur], [], [], 0.1)
                else:
                    kinds.append(chr(msg.payload[0]))
        finally:
            conn.close()
        assert "".join(kinds) == "BRIRICBUCBUCBDCM"


def test_json_schema_accepts_the_examples_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from fakepm.walsender.scenario import JSON_SCHEMA

    for path in (CDC, os.path.join(HERE, "..", "..", "scenarios", "cdc.yaml")):
        with open(path) as f:
            jsonschema.validate(yaml.safe_load(f)["replication"], JSON_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"stream": [{"insret": {"table": "t", "row": {}}}]}, JSON_SCHEMA)
