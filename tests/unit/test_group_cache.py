"""The extended-protocol group cache (session/answer_cache.py), fed bytes: a repeated
[Parse] Bind [Describe] Execute Sync read is answered from the bytes of its first answer,
and only while nothing could make the answer differ."""

from __future__ import annotations

from test_session import Harness, feed

from fakepm.protocol import messages as m


def group(statement: str, params=(), sql: str | None = None, describe: bool = True, result_formats=()) -> bytes:
    parts = []
    if sql is not None:
        parts.append(m.Parse(statement, sql, ()).encode())
    parts.append(m.Bind("", statement, (), tuple(params), tuple(result_formats)).encode())
    if describe:
        parts.append(m.Describe("P", "").encode())
    parts += [m.Execute("", 0).encode(), m.Sync().encode()]
    return b"".join(parts)


def raw_answer(s, data: bytes) -> bytes:
    s.receive(data)
    return s.data_to_send()


def test_prepared_group_replays_the_same_bytes_and_journals_each_time():
    h = Harness()
    rule = h.rule("SELECT name FROM users WHERE id = $1", columns={"name": "text"}, rows=[["ada"]])
    s = h.connected()
    feed(s, m.Parse("q1", "SELECT name FROM users WHERE id = $1", (23,)).encode() + m.Sync().encode())
    data = group("q1", [b"7"])
    first = raw_answer(s, data)
    assert s.group_cache and data in s.group_cache  # the first answer was kept
    for _ in range(3):
        assert raw_answer(s, data) == first
    msgs = m.split_backend_stream(first)
    assert [type(x).__name__ for x in msgs] == ["BindComplete", "RowDescription", "DataRow", "CommandComplete",
                                               "ReadyForQuery"]
    assert rule.calls == 4
    entries = h.hub.journal.queries
    assert [(q.sql, q.params, q.statement, q.protocol) for q in entries] == \
        [("SELECT name FROM users WHERE id = $1", [7], "q1", "extended")] * 4
    assert s.portals == {}  # the unnamed portal ends with the implicit transaction, as without the cache


def test_unnamed_parse_group_is_replayed_and_installs_the_statement():
    h = Harness()
    s = h.connected()
    data = group("", sql="SELECT 1")
    first = raw_answer(s, data)
    assert m.split_backend_stream(first)[0] == m.ParseComplete()
    assert raw_answer(s, data) == first
    assert data in s.group_cache
    assert s.statements[""].sql == "SELECT 1"
    assert len(h.hub.journal.queries) == 2 and \
        all(q.rule.startswith("builtin:") for q in h.hub.journal.queries)
    assert sum(1 for d, line in s.transcript if line.startswith("Parse")) == 2


def test_other_parameters_and_reprepared_statements_are_not_replayed():
    h = Harness()
    h.rule("SELECT name FROM users WHERE id = 7", columns={"name": "text"}, rows=[["ada"]])
    h.rule("SELECT name FROM users WHERE id = 8", columns={"name": "text"}, rows=[["bob"]])
    h.rule("SELECT 'other'", columns={"x": "text"}, rows=[["other"]])
    s = h.connected()
    feed(s, m.Parse("q", "SELECT name FROM users WHERE id = $1", (23,)).encode() + m.Sync().encode())
    seven, eight = group("q", [b"7"]), group("q", [b"8"])
    assert m.split_backend_stream(raw_answer(s, seven))[2].values == (b"ada",)
    assert m.split_backend_stream(raw_answer(s, eight))[2].values == (b"bob",)
    assert m.split_backend_stream(raw_answer(s, seven))[2].values == (b"ada",)
    # the same name prepared again for another text: the cached bytes must not answer it
    feed(s, m.Close("S", "q").encode() + m.Sync().encode())
    feed(s, m.Parse("q", "SELECT 'other'", ()).encode() + m.Sync().encode())
    out = m.split_backend_stream(raw_answer(s, group("q")))
    assert out[2].values == (b"other",)
    out = m.split_backend_stream(raw_answer(s, seven))  # 1 parameter for a statement that takes none
    assert isinstance(out[0], m.ErrorResponse) and out[0].error.code == "08P01"


def test_rule_changes_times_and_transactions_are_respected():
    h = Harness()
    h.rule("SELECT v", columns={"v": "text"}, rows=[["one"]])
    s = h.connected()
    data = group("", sql="SELECT v")
    assert m.split_backend_stream(raw_answer(s, data))[3].values == (b"one",)
    assert m.split_backend_stream(raw_answer(s, data))[3].values == (b"one",)
    h.rule("SELECT v", columns={"v": "text"}, rows=[["two"]], priority=5)  # a new rule set: entry is stale
    assert m.split_backend_stream(raw_answer(s, data))[3].values == (b"two",)
    limited = h.rule("SELECT w", columns={"w": "int4"}, rows=[[1]], times=2)
    w = group("", sql="SELECT w")
    outs = [m.split_backend_stream(raw_answer(s, w)) for _ in range(3)]
    assert [type(o[3]).__name__ for o in outs[:2]] == ["DataRow", "DataRow"]
    assert any(isinstance(x, m.ErrorResponse) for x in outs[2])  # `times` used up: never replayed
    assert limited.calls == 2
    # inside a transaction block: answered normally, ReadyForQuery says T
    feed(s, m.Query("BEGIN").encode())
    out = m.split_backend_stream(raw_answer(s, data))
    assert out[-1] == m.ReadyForQuery("T")
    feed(s, m.Query("COMMIT").encode())
    assert m.split_backend_stream(raw_answer(s, data))[-1] == m.ReadyForQuery("I")


def test_errors_and_split_reads_are_not_cached():
    h = Harness()
    h.error_rule("SELECT broken", "XX001", "no")
    s = h.connected()
    bad = group("", sql="SELECT broken")
    for _ in range(2):
        out = m.split_backend_stream(raw_answer(s, bad))
        assert isinstance(out[-2], m.ErrorResponse) and out[-2].error.code == "XX001"
    assert not s.group_cache
    ok = group("", sql="SELECT 1")
    s.receive(ok[:7])  # the same group in two reads is answered normally, and not kept
    s.receive(ok[7:])
    assert m.split_backend_stream(s.data_to_send())[-1] == m.ReadyForQuery("I")
    assert not s.group_cache


def test_row_limited_execute_replays_the_suspended_answer():
    h = Harness()
    h.rule("SELECT n FROM two", columns={"n": "int4"}, rows=[[1], [2]])
    s = h.connected()
    data = b"".join([m.Parse("", "SELECT n FROM two", ()).encode(), m.Bind("", "", (), (), ()).encode(),
                     m.Execute("", 1).encode(), m.Sync().encode()])
    first = raw_answer(s, data)
    assert [type(x).__name__ for x in m.split_backend_stream(first)] == \
        ["ParseComplete", "BindComplete", "DataRow", "PortalSuspended", "ReadyForQuery"]
    assert data in s.group_cache
    assert raw_answer(s, data) == first
    assert s.portals == {}


def test_repeated_query_read_is_answered_without_the_generator_but_identically():
    h = Harness()
    rule = h.rule("SELECT v", columns={"v": "text"}, rows=[["one"]])
    s = h.connected()
    q = m.Query("SELECT v").encode()
    first = raw_answer(s, q)
    assert "SELECT v" in s.answer_cache
    for _ in range(2):
        assert raw_answer(s, q) == first
    assert rule.calls == 3 and len(h.hub.journal.queries) == 3
    assert [line for d, line in s.transcript if line.startswith("Query")] == ["Query 'SELECT v'"] * 3
    two = raw_answer(s, q + q)  # two messages in one read: the normal path, same answers
    assert two == first + first

