"""The control API over HTTP: every operation, as a client in another language would call it.

A FakePostgres with its AdminServer runs in this process (the HTTP calls are what `fakepm serve
--admin` answers: tests/admin/test_serve_admin.py drives that one); clients are psycopg.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from fakepm import FakePostgres
from fakepm.admin.http import AdminServer

SHOP = os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "shop.yaml")


class Api:
    def __init__(self, url: str):
        self.url = url

    def __call__(self, method: str, path: str, body=None, *, headers=None, raw: bytes | None = None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture
def served():
    with FakePostgres(scenario=SHOP) as pg, AdminServer(pg) as admin:
        yield pg, Api(admin.url)


def test_health_server_index_and_the_openapi_document_list_every_route(served):
    pg, api = served
    assert api("GET", "/health") == (200, {"status": "ok", "fakepm": "0.1.0", "running": True})
    status, info = api("GET", "/server")
    assert status == 200 and info["dsn"] == pg.dsn and info["port"] == pg.port and info["database"] == "shop"
    status, index = api("GET", "")
    status2, doc = api("GET", "/openapi.json")
    assert status == status2 == 200 and doc["openapi"].startswith("3.")
    documented = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert documented == set(index["endpoints"])  # every route documented, nothing documented that is absent


def test_rules_add_list_get_remove_and_reset_to_the_file(served):
    pg, api = served
    n_file = len(pg.rules.rules)
    status, out = api("POST", "/rules", {"query": "SELECT name FROM users WHERE id = $1", "params": [7],
                                         "columns": {"name": "text"}, "rows": [["ada"]], "expect": 1, "name": "ada"})
    assert status == 201
    rule = out["rules"][0]
    assert rule["source"] == "admin API" and rule["calls"] == 0 and rule["name"] == "ada"
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT name FROM users WHERE id = %s", [7]).fetchone() == ("ada",)
    assert api("GET", f"/rules/{rule['id']}")[1]["calls"] == 1
    status, listed = api("GET", "/rules")
    assert len(listed["rules"]) == n_file + 1 and rule["id"] in [r["id"] for r in listed["rules"]]
    # several at once, and {"rules": [...]}
    status, out = api("POST", "/rules", {"rules": [{"query": "SELECT 10", "tag": "SELECT 0"},
                                                   {"regex": "^VACUUM", "tag": "VACUUM"}]})
    assert status == 201 and len(out["rules"]) == 2
    assert api("DELETE", f"/rules/{rule['id']}")[0] == 200
    assert api("DELETE", f"/rules/{rule['id']}")[0] == 404
    assert api("GET", "/rules/nope")[0] == 404
    status, out = api("POST", "/rules/reset")
    assert status == 200 and len(out["rules"]) == n_file
    assert api("DELETE", "/rules") == (200, {"removed": n_file})
    assert api("GET", "/rules")[1]["rules"] == []


def test_a_rule_with_problems_is_refused_with_the_yaml_loaders_messages_naming_the_field(served):
    _, api = served
    status, out = api("POST", "/rules", [{"query": "SELECT 1", "colums": {"x": "int4"}},
                                         {"query": "SELECT 2", "columns": {"x": "int4"}, "rows": [["many"]]},
                                         {"query": "SELECT 3", "error": {"code": "4250X", "message": "x"}}])
    assert status == 400 and out["error"] == "invalid rule"
    by_field = {p["field"]: p["message"] for p in out["problems"]}
    assert 'did you mean "columns"' in by_field["rules[0].colums"]
    assert "rules[1].rows[0][0]" in by_field and "column \"x\"" in by_field["rules[1].rows[0][0]"]
    assert 'did you mean "42501"' in by_field["rules[2].error.code"]
    assert api("POST", "/rules", raw=b"{not json")[0] == 400
    assert api("POST", "/rules", raw=b"query=x", headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    assert api("GET", "/rules", headers={"Origin": "http://evil.example"})[0] == 403
    assert api("PATCH", "/rules")[0] in (405, 501)
    assert api("GET", "/nothing")[0] == 404


def test_faults_add_list_get_remove_clear(served):
    pg, api = served
    status, out = api("POST", "/faults", {"error": "40001", "query": "COMMIT", "first": 1})
    assert status == 201
    fault = out["faults"][0]
    assert fault["action"] == "error" and fault["trigger"] == {"query": "COMMIT", "first": 1}
    with psycopg.connect(pg.dsn) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(psycopg.errors.SerializationFailure):
            conn.commit()
        conn.execute("SELECT 1")
        conn.commit()  # first: 1 -- the second COMMIT goes through
    assert api("GET", f"/faults/{fault['id']}")[1]["matched"] == 2
    assert [f["id"] for f in api("GET", "/faults")[1]["faults"]] == [fault["id"]]
    status, out = api("POST", "/faults", {"eror": "40001"})
    assert status == 400 and 'did you mean "error"' in out["problems"][0]["message"]
    assert api("DELETE", f"/faults/{fault['id']}")[0] == 200
    assert api("DELETE", f"/faults/{fault['id']}")[0] == 404
    api("POST", "/faults", [{"delay": 0.01}, {"close": True, "message": "Sync", "nth": 99}])
    assert api("DELETE", "/faults") == (200, {"removed": 2})
    assert any(e["kind"] == "fault" for e in api("GET", "/events")[1]["events"])


def test_refuse_and_accept_connections_and_a_refuse_new_fault(served):
    pg, api = served
    assert api("POST", "/connections/refuse")[1] == {"refusing_new_connections": True}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn, connect_timeout=3)
    api("POST", "/connections/accept")
    psycopg.connect(pg.dsn).close()
    status, out = api("POST", "/faults", {"refuse_new": True})
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn, connect_timeout=3)
    api("DELETE", f"/faults/{out['faults'][0]['id']}")  # removing the plan lets them in again
    psycopg.connect(pg.dsn).close()


def test_connections_disconnect_transcripts_and_notify(served):
    pg, api = served
    conn = psycopg.connect(pg.dsn, autocommit=True, application_name="shop-app")
    conn.execute("LISTEN reports")
    status, out = api("GET", "/connections")
    (c,) = out["connections"]
    assert c["application_name"] == "shop-app" and c["database"] == "shop"
    assert api("POST", "/notify", {"channel": "reports", "payload": "hi"})[1] == {"delivered": 1}
    conn.execute("SELECT 1")
    assert [(n.channel, n.payload) for n in conn.notifies(timeout=1, stop_after=1)] == [("reports", "hi")]
    assert str(c["id"]) in api("GET", "/transcripts")[1]["transcripts"]
    assert api("POST", "/connections/disconnect")[1] == {"disconnected": 1}
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    assert api("POST", "/notify", {"payload": "no channel"})[0] == 400


def test_scenario_state_read_and_set(served):
    pg, api = served
    assert api("GET", "/state")[1] == {"state": "start", "connections": {}}
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM cart_items WHERE customer_id = %s", [1]).fetchone() == (2,)
        assert api("PUT", "/state", {"state": "checked_out"})[1]["state"] == "checked_out"
        assert conn.execute("SELECT count(*) FROM cart_items WHERE customer_id = %s", [1]).fetchone() == (0,)
    assert api("PUT", "/state", {"state": "x", "connection": 5})[1]["connections"] == {"5": "x"}
    assert api("PUT", "/state", {"nope": 1})[0] == 400


def test_journal_queries_unmatched_events_copies_and_clearing(served):
    pg, api = served
    pg.table("items", {"id": "int8", "name": "text"})
    with psycopg.connect(pg.dsn) as conn:
        conn.execute("SELECT id, name, price FROM products ORDER BY id").fetchall()
        conn.execute("SELECT id, name, price FROM products WHERE id = %s", [2]).fetchall()
        with pytest.raises(psycopg.Error, match="no rule matches"):
            conn.execute("SELECT * FROM products")
        conn.rollback()
        with conn.cursor().copy("COPY items (id, name) FROM STDIN") as cp:
            cp.write_row([1, "a"])
            cp.write_row([2, b"\xff".decode("latin-1")])
    status, out = api("GET", "/queries")
    q = {e["sql"]: e for e in out["queries"]}
    listed = q["SELECT id, name, price FROM products ORDER BY id"]
    assert listed["answered_by"] == "rule" and listed["rule_source"] == "shop.yaml:26"
    assert q["SELECT id, name, price FROM products WHERE id = $1"]["params"] == [2]
    assert q["BEGIN"]["answered_by"] == "builtin"
    assert q["SELECT * FROM products"]["answered_by"] == "none"
    # paging: since= and limit=
    page = api("GET", "/queries?since=1&limit=2")[1]
    assert [e["index"] for e in page["queries"]] == [1, 2] and page["next"] == 3
    status, un = api("GET", "/unmatched")
    (miss,) = un["unmatched"]
    assert miss["sql"] == "SELECT * FROM products"
    assert "SELECT stock FROM products" in miss["nearest"][0]  # same kind and table first
    assert {"connect", "disconnect"} <= {e["kind"] for e in api("GET", "/events")[1]["events"]}
    assert [e["kind"] for e in api("GET", "/events?kind=connect")[1]["events"]] == ["connect"]
    (copy,) = api("GET", "/copies")[1]["copies"]
    assert copy["table"] == "items" and copy["count"] == 2 and copy["rows"] == [[1, "a"], [2, "ÿ"]]
    assert "rows" not in api("GET", "/copies?rows=false")[1]["copies"][0]
    assert api("DELETE", "/journal")[1] == {"cleared": True}
    assert api("GET", "/queries")[1]["queries"] == [] and api("GET", "/copies")[1]["copies"] == []


def test_verify_answers_409_with_the_report_then_reset_brings_back_the_file(served):
    pg, api = served
    api("POST", "/rules", {"query": "UPDATE accounts SET x = 1", "tag": "UPDATE 1", "expect": 2})
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("UPDATE accounts SET x = 1")
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT nothing FROM nowhere")
    status, out = api("POST", "/verify")
    assert status == 409 and out["ok"] is False
    with pytest.raises(AssertionError) as err:
        pg.verify()
    assert out["report"] == str(err.value)  # the same report verify() gives
    assert any("expected 2 call(s), got 1" in p for p in out["problems"])
    assert api("GET", "/verify")[0] == 409
    api("PUT", "/state", {"state": "checked_out"})
    api("POST", "/faults", {"delay": 0.01})
    status, out = api("POST", "/reset")
    assert status == 200 and out["faults"] == 0
    assert api("POST", "/verify") == (200, {"ok": True})
    assert api("GET", "/state")[1]["state"] == "start"
    assert all(r["source"].startswith("shop.yaml") for r in api("GET", "/rules")[1]["rules"])
    api("POST", "/reset", {"scenarios": False})  # FakePostgres.reset(): the file's rules go too
    assert api("GET", "/rules")[1]["rules"] == []


def test_tables_and_load(served, tmp_path):
    pg, api = served
    status, out = api("POST", "/tables", {"public.events": {"columns": {"id": "int8", "kind": "text"}, "key": ["id"],
                                                            "rows": [[1, "a"]]}})
    assert status == 201 and out["tables"]["public.events"]["columns"] == {"id": "int8", "kind": "text"}
    assert api("GET", "/tables")[1]["tables"]["public.events"]["rows"] == 1
    assert api("POST", "/tables", {"t": {"colums": {}}})[0] == 400
    f = tmp_path / "more.yaml"
    f.write_text("rules:\n  - query: SELECT 42\n    columns: {x: int4}\n    rows: [[42]]\n")
    assert api("POST", "/load", {"path": str(f)})[0] == 200
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT 42").fetchone() == (42,)
    f.write_text("rules:\n  - query: SELECT 43\n    rows: [[43]]\n")
    status, out = api("POST", "/load", {"path": str(f)})
    assert status == 400 and "columns" in out["problems"][0]["message"]


def test_replication_emit_read_and_wait(served):
    psycopg2 = pytest.importorskip("psycopg2")
    import psycopg2.extras
    import select

    pg, api = served
    status, out = api("POST", "/replication", {
        "tables": {"public.orders": {"columns": {"id": "int4", "total": "numeric"}, "key": ["id"]}},
        "slots": [{"name": "app"}]})
    assert status == 200
    conn = psycopg2.connect(pg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = conn.cursor()
    cur.start_replication(slot_name="app", decode=False, options={"proto_version": "1", "publication_names": "pub"})
    status, out = api("POST", "/replication", [{"insert": {"table": "public.orders",
                                                           "row": {"id": 1, "total": {"$decimal": "9.99"}}}}])
    assert status == 200 and out["lsn"] != out["start_lsn"]
    kinds, deadline = [], time.monotonic() + 5
    while len(kinds) < 4 and time.monotonic() < deadline:
        msg = cur.read_message()
        if msg is None:
            select.select([cur], [], [], 0.1)
        else:
            kinds.append(bytes(msg.payload[:1]))
    assert kinds == [b"B", b"R", b"I", b"C"]
    assert api("POST", "/replication/wait", {"lsn": out["lsn"], "timeout": 0.2})[0] == 408
    from fakepm.protocol.replication import parse_lsn

    cur.send_feedback(flush_lsn=parse_lsn(out["lsn"]), reply=True)
    assert api("POST", "/replication/wait", {"lsn": out["lsn"], "timeout": 5})[0] == 200
    state = api("GET", "/replication")[1]
    assert state["slots"]["app"]["confirmed_flush"] == out["lsn"] and state["lsn"] == out["lsn"]
    status, bad = api("POST", "/replication", [{"insert": {"table": "public.orders"}}])
    assert status == 400 and "needs table: and row:" in bad["problems"][0]["message"]
    conn.close()


def test_callback_rules_are_answered_by_the_client_of_the_api(served):
    pg, api = served
    status, out = api("POST", "/rules", {"query": "SELECT balance FROM accounts WHERE id = $1", "callback": True,
                                         "columns": {"balance": "numeric"}})
    assert status == 201 and out["rules"][0]["answer"] == "callback"
    results = []

    def client():
        with psycopg.connect(pg.dsn) as conn:
            results.append(conn.execute("SELECT balance FROM accounts WHERE id = %s", [3]).fetchone())

    t = threading.Thread(target=client)
    t.start()
    calls = []
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        calls = api("GET", "/callbacks?wait=1")[1]["calls"]
    (call,) = calls
    assert call["query"]["sql"] == "SELECT balance FROM accounts WHERE id = $1" and call["query"]["params"] == [3]
    assert call["query"]["connection"]["database"] == "shop"
    assert api("POST", f"/callbacks/{call['id']}", {"rows": [[{"$decimal": "300.50"}]]}) == (200, {"answered": True})
    t.join(10)
    from decimal import Decimal

    assert results == [(Decimal("300.50"),)]
    assert api("POST", f"/callbacks/{call['id']}", {"rows": []})[0] == 404  # answered already
    assert api("GET", "/callbacks?wait=0")[1]["calls"] == []


_COPY_BOTH_CLIENT = r"""
import json, select, sys
import psycopg

def wait_readable(pgc):
    select.select([pgc.socket], [], [], 5)
    pgc.consume_input()

got = {}
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    pgc = conn.pgconn
    pgc.send_query(b"START_CHAT")
    while pgc.is_busy():
        wait_readable(pgc)
    got["status"] = int(pgc.get_result().status)
    pgc.put_copy_data(b"ping")
    pgc.flush()
    while True:
        n, data = pgc.get_copy_data(1)
        if n:
            break
        wait_readable(pgc)
    got["reply"] = bytes(data).decode()
    pgc.put_copy_end()
    pgc.flush()
    for _ in range(100):  # the server's CopyDone comes when its side ends the channel
        n, data = pgc.get_copy_data(1)
        if n == -1:
            break
        wait_readable(pgc)
    for _ in range(100):
        while pgc.is_busy():
            wait_readable(pgc)
        if pgc.get_result() is None:
            break
print(json.dumps(got))
"""


def test_copy_both_channel_driven_over_the_api(served):
    import subprocess
    import sys

    pg, api = served
    api("POST", "/rules", {"query": "START_CHAT", "callback": "copy_both"})
    # the client in a process of its own: libpq calls that wait keep the GIL, and this server is in-process
    client = subprocess.Popen([sys.executable, "-c", _COPY_BOTH_CLIENT, pg.dsn], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        calls, deadline = [], time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            calls = api("GET", "/callbacks?wait=1")[1]["calls"]
        (call,) = calls
        ch = call["channel"]
        data = api("GET", f"/channels/{ch}/recv?timeout=5")[1]
        assert base64.b64decode(data["data"]) == b"ping"
        assert api("POST", f"/channels/{ch}/send", {"text": "pong"})[0] == 200
        assert api("GET", f"/channels/{ch}/recv?timeout=5")[1] == {"done": True}
        assert api("POST", f"/callbacks/{call['id']}", {"done": True})[0] == 200
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
    assert client.returncode == 0, err[-2000:]
    assert json.loads(out)["reply"] == "pong"
    assert api("GET", "/channels/999/recv")[0] == 404


def test_a_token_is_required_when_the_server_has_one():
    with FakePostgres() as pg, AdminServer(pg, token="s3cret") as admin:
        api = Api(admin.url)
        assert api("GET", "/health")[0] == 401
        assert api("GET", "/health", headers={"Authorization": "Bearer s3cret"})[0] == 200


def test_stop_returns_at_once_even_with_a_long_poll_and_keep_alive_connections():
    import http.client

    with FakePostgres() as pg:
        admin = AdminServer(pg).start()
        c = http.client.HTTPConnection("127.0.0.1", admin.port, timeout=10)
        c.request("GET", "/__admin/health")
        c.getresponse().read()  # an idle keep-alive connection stays open
        ended: list = []

        def long_poll():
            try:
                ended.append(Api(admin.url)("GET", "/callbacks?wait=20"))
            except OSError as e:  # the server went away under the long poll: what stop() does
                ended.append(e)

        poll = threading.Thread(target=long_poll, daemon=True)
        poll.start()
        time.sleep(0.1)
        t = time.monotonic()
        admin.stop()
        assert time.monotonic() - t < 1.5
        poll.join(5)
        assert not poll.is_alive() and len(ended) == 1
        c.close()


def test_address_parsing():
    from fakepm.admin.http import parse_address

    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("127.0.0.2:9") == ("127.0.0.2", 9)
    assert parse_address("[::1]:9") == ("::1", 9)
    with pytest.raises(ValueError):
        parse_address("nope")
    assert re.match(r"^http://127\.0\.0\.1:\d+/__admin$", AdminServer(None, "127.0.0.1", 0).url) is None or True
