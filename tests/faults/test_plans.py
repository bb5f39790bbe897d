"""Fault plans as data: parsing (with errors naming where and what), triggers, byte shaping,
malformed message bytes, and the YAML keys `fault:` (rule) and `faults:` (server)."""


import psycopg
import pytest
from hypothesis import given, settings

from fakepm import FakePostgres
from fakepm.faults import FaultSet, FaultSpecError, parse_fault
from fakepm.faults.wire import WireShaper
from fakepm.protocol import malformed
from fakepm.protocol import messages as m
from fakepm.scenario import ScenarioError, load_scenario
from fakepm.strategies import fault_plans


def test_defaults_pick_the_point_from_the_action():
    assert parse_fault({"error": "40001"}).at == "before_reply"
    assert parse_fault({"fatal": "57P01", "after_rows": 2}).at == "after_rows"
    assert parse_fault({"malformed": "wrong_tag"}).at == "before_command_complete"
    assert parse_fault({"malformed": "bad_ready_status"}).at == "before_ready_for_query"
    assert parse_fault({"malformed": "param_count"}).at == "describe"
    assert parse_fault({"too_many_clients": True}).at == "startup"
    assert parse_fault({"close": True, "message": "Sync"}).at == "message"
    assert parse_fault("reset").action == "reset"
    assert parse_fault({"send": "5a0000000549"}).value == b"Z\0\0\0\x05I"
    e = parse_fault({"error": "40001"}).value
    assert (e.code, e.message, e.severity) == ("40001", "could not serialize access due to concurrent update", "ERROR")


@pytest.mark.parametrize("data,message", [
    ({"first": 2}, "needs exactly one action, got no action"),
    ({"close": True, "reset": True}, "several actions (close, reset)"),
    ({"eror": "40001"}, 'unknown fault key \'eror\'; did you mean "error"?'),
    ({"close": True, "at": "before_replly"}, 'unknown point `at: before_replly`; did you mean "before_reply"?'),
    ({"delay": -1}, "`delay` must be a number of seconds >= 0"),
    ({"delay": {"uniform": [2, 1]}}, "high < low"),
    ({"malformed": "wat"}, "unknown malformed kind 'wat'"),
    ({"close": True, "first": 1, "every": 2}, "use one of first/nth/every/after/probability"),
    ({"close": True, "probability": 2}, "`probability` must be between 0 and 1"),
    ({"close": True, "message": "Bogus"}, "unknown frontend message type 'Bogus'"),
    ({"error": {"message": "x"}}, "an error needs `code`"),
    ({"auth": "kerberos"}, "unknown auth fault 'kerberos'"),
    ({"close": True, "regex": "("}, "bad regex"),
    ({"send": "zz"}, "`send` is bytes or a hex string"),
])
def test_bad_plans_name_where_and_what(data, message):
    with pytest.raises(FaultSpecError) as info:
        parse_fault(data, "rules[3].fault")
    assert str(info.value).startswith("rules[3].fault: ") and message in str(info.value)


class _S:
    def __init__(self, i, user="u"):
        self.id, self.user = i, user


def _fired(plan, n, sql="COMMIT"):
    fs = FaultSet()
    return [fs.fires(plan, _S(1), sql) for _ in range(n)]


def test_triggers_count_matches():
    assert _fired(parse_fault({"close": True, "first": 2}), 4) == [True, True, False, False]
    assert _fired(parse_fault({"close": True, "nth": [2, 4]}), 4) == [False, True, False, True]
    assert _fired(parse_fault({"close": True, "every": 2}), 4) == [False, True, False, True]
    assert _fired(parse_fault({"close": True, "after": 3}), 4) == [False, False, False, True]
    coin = parse_fault({"close": True, "probability": 0.5, "seed": 3})
    assert _fired(coin, 50) == _fired(coin, 50)  # seeded: reproducible
    assert _fired(parse_fault({"close": True, "query": "commit"}), 1) == [True]
    assert _fired(parse_fault({"close": True, "query": "SELECT 1"}), 1) == [False]
    assert _fired(parse_fault({"close": True, "regex": "^COMM"}), 1) == [True]
    fs = FaultSet()
    p = parse_fault({"close": True, "connection": 2, "user": "bob"})
    assert [fs.fires(p, _S(1, "bob")), fs.fires(p, _S(2, "ann")), fs.fires(p, _S(2, "bob"))] == [False, False, True]


def test_wire_shaper_slices_cuts_and_dribbles():
    data = bytes(range(20))
    sl = WireShaper("slice", {"offsets": (2, 3, 7)})
    pieces = sl.shape(data[:5]) + sl.shape(data[5:])
    assert [c for _, c, _ in pieces] == [data[:2], data[2:3], data[3:5], data[5:7], data[7:]]
    assert b"".join(c for _, c, _ in pieces) == data
    cut = WireShaper("cut", 7)
    assert cut.shape(data[:4]) == [(0.0, data[:4], None)]
    assert cut.shape(data[4:]) == [(0.0, data[4:7], "close")]
    assert cut.shape(b"more") == []
    dr = WireShaper("dribble", (0.1, 4))
    out = dr.shape(data)
    assert len(out) == 4 and b"".join(c for _, c, _ in out) == data and all(d > 0 for d, _, _ in out)
    every = WireShaper("slice", {"every": 1, "limit": 5})
    assert [c for _, c, _ in every.shape(data)] == [data[i:i + 1] for i in range(5)] + [data[5:]]


def test_malformed_bytes_break_exactly_one_thing():
    assert malformed.build("unknown_type") == b"~\0\0\0\4"
    short = malformed.build("length_short", tag="SELECT 1")
    assert short[:1] == b"C" and int.from_bytes(short[1:5], "big") == len(short) - 1 - 2
    assert int.from_bytes(malformed.build("length_negative")[1:5], "big", signed=True) == -5
    assert malformed.build("length_huge")[1:5] == b"\x7f\xff\xff\xff"
    fc = m.DataRow.decode(malformed.build("field_count", ncolumns=2)[5:])
    assert len(fc.values) == 3
    assert malformed.build("bad_ready_status") == b"Z\0\0\0\5X"
    assert m.ParameterDescription.decode(malformed.build("param_count", type_oids=(23,))[5:]).type_oids == (23, 25)


@settings(max_examples=300, deadline=None)
@given(fault_plans())
def test_every_strategy_plan_parses(data):
    plan = parse_fault(data, "strategy")
    assert plan.action in data


def test_yaml_rule_fault_and_server_faults(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "rules:\n"
        "  - query: COMMIT\n"
        "    tag: COMMIT\n"
        "    fault: {error: '40001', first: 2}\n"
        "  - query: SELECT n FROM t\n"
        "    columns: {n: int4}\n"
        "    rows: [[1], [2], [3]]\n"
        "    fault: {fatal: 57P01, after_rows: 2}\n"
        "faults:\n"
        "  - {delay: 0.001, every: 10}\n"
    )
    with FakePostgres(scenario=str(f)) as pg:
        assert len(pg.faults.plans) == 1
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            codes = []
            for _ in range(3):
                try:
                    conn.execute("COMMIT")
                    codes.append("ok")
                except psycopg.Error as e:
                    codes.append(e.sqlstate)
            assert codes == ["40001", "40001", "ok"]
            with pytest.raises(psycopg.errors.AdminShutdown):
                conn.execute("SELECT n FROM t")


def test_yaml_fault_errors_name_file_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(
        "rules:\n"
        "  - query: SELECT 1\n"
        "    fault: {eror: '40001'}\n"
        "faults:\n"
        "  - {close: true, at: nowhere}\n"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(f))
    text = str(info.value)
    assert "bad.yaml:3:" in text and 'unknown fault key \'eror\'; did you mean "error"?' in text
    assert "bad.yaml:5:" in text and "unknown point `at: nowhere`" in text


def test_python_rule_builder_fault(tmp_path):
    with FakePostgres() as pg:
        pg.on("SELECT 1").fault(close=True)
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        pg.rules.clear()
        pg.on("SELECT 2").error("42501", "denied", fault={"delay": 0.001})
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT 2")


def test_byte_shaping_is_one_off_per_answer():
    with FakePostgres() as pg:
        pg.on("SELECT y FROM t").reply(columns={"y": "text"}, rows=[["a"]] * 5,
                                       fault={"dribble": {"seconds": 0.02, "by": "bytes", "pieces": 4}, "first": 1})
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            assert len(conn.execute("SELECT y FROM t").fetchall()) == 5
            assert len(conn.execute("SELECT y FROM t").fetchall()) == 5
            (session,) = pg.hub.sessions.values()
            assert session.wire_shaper is None
        assert WireShaper("slice", {"offsets": (2,)}).shape(b"abcd") and not WireShaper("cut", 3).spent


def test_byte_faults_over_tls():
    with FakePostgres(tls=True) as pg:
        pg.on("SELECT y FROM t").reply(columns={"y": "text"}, rows=[["a"]] * 3,
                                       fault={"slice": [1, 2, 3, 6], "first": 1})
        pg.on("SELECT z FROM t").reply(columns={"z": "text"}, rows=[["a"]] * 3, fault={"cut": 10})
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT y FROM t").fetchall() == [("a",)] * 3
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT z FROM t")
        assert not [e for e in pg.events if e["kind"] == "internal_error"] and not pg._loop.errors
