"""The COPY sub-protocol inside the sans-I/O Session: frontend bytes in, backend bytes out."""

from fakepm.answers.builtin import Builtins
from fakepm.answers.catalog import Catalog
from fakepm.answers.responder import Responder
from fakepm.answers.result import Result
from fakepm.answers.rules import Rule, RuleSet, reply_result
from fakepm.protocol import messages as m
from fakepm.protocol.errors import PgError
from fakepm.session.config import ServerConfig
from fakepm.session.connection import OUTPUT_FULL, OUTPUT_LIMIT, Session
from fakepm.session.hub import Hub, Journal


class Server:
    def __init__(self):
        self.config = ServerConfig()
        self.hub = Hub(Journal(), lambda: 0.0)
        self.rules = RuleSet()
        self.catalog = Catalog()
        self.responder = Responder(self.rules, Builtins(self.config), self.catalog)

    def connect(self) -> Session:
        s = Session(self.hub, self.config, self.responder, peer=("127.0.0.1", 1))
        assert feed(s, m.StartupMessage(m.PROTOCOL_3_0, {"user": "u"}).encode())[-1] == m.ReadyForQuery("I")
        return s


def feed(s: Session, data: bytes) -> list:
    s.receive(data)
    return m.split_backend_stream(s.data_to_send())


def enc(*msgs) -> bytes:
    return b"".join(x.encode() for x in msgs)


def test_pg8000_extended_copy_in_ignores_sync_and_flush_and_gives_one_ready_for_query():
    srv = Server()
    srv.catalog.add("t", {"a": "int4", "b": "text"})
    s = srv.connect()
    out = feed(s, enc(m.Parse("", "COPY t FROM STDIN", ()), m.Flush(), m.Sync()) +
               enc(m.Bind("", "", (), (), ()), m.Describe("P", ""), m.Execute("", 0), m.Flush(), m.Sync()))
    # the Sync after Parse ends its own round trip; the one after Execute arrives during COPY IN
    assert out == [m.ParseComplete(), m.ReadyForQuery("I"), m.BindComplete(), m.NoData(), m.CopyInResponse(0, (0, 0))]
    assert feed(s, enc(m.CopyData(b"1\tfi"))) == []
    out = feed(s, enc(m.CopyData(b"rst\n2\t\\N\n"), m.CopyDone(), m.Sync()))
    assert out == [m.CommandComplete("COPY 2"), m.ReadyForQuery("I")]
    assert srv.hub.journal.copies[-1].rows == [(1, "first"), (2, None)]


def test_asyncpg_describe_without_sync_then_binary_copy():
    srv = Server()
    srv.catalog.add("copytest", {"a": "int4", "b": "text"})
    s = srv.connect()
    out = feed(s, enc(m.Parse("s1", 'SELECT "a", "b" FROM "copytest" LIMIT 1', ()), m.Describe("S", "s1"), m.Flush()))
    assert [type(x).__name__ for x in out] == ["ParseComplete", "ParameterDescription", "RowDescription"]
    assert [(f.name, f.type_oid) for f in out[2].fields] == [("a", 23), ("b", 25)]
    out = feed(s, enc(m.Query('COPY "copytest"("a", "b") FROM STDIN (FORMAT binary)')))
    assert out == [m.CopyInResponse(1, (1, 1))]
    data = (b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x02\x00\x00\x00\x04\x00\x00\x01\x2c\x00\x00\x00\x02r1"
            + b"\xff\xff")
    out = feed(s, enc(m.CopyData(data), m.CopyDone()))
    assert out == [m.CommandComplete("COPY 1"), m.ReadyForQuery("I")]
    assert srv.hub.journal.copies[-1].rows == [(300, "r1")]


def test_copy_out_streams_with_backpressure_so_memory_stays_flat():
    srv = Server()
    n = 100_000
    srv.rules.add(Rule(query="COPY big TO STDOUT", answers=[
        reply_result({"i": "int8", "s": "text"}, lambda: ((i, "x" * 20) for i in range(n)))]))
    s = srv.connect()
    s.receive(enc(m.Query("COPY big TO STDOUT")))
    rows = biggest = 0
    tail = b""
    for _ in range(10_000):
        chunk = s.data_to_send()
        biggest = max(biggest, len(chunk))
        msgs = m.split_backend_stream(tail + chunk)
        rows += sum(1 for x in msgs if isinstance(x, m.CopyData))
        if msgs and msgs[-1] == m.ReadyForQuery("I"):
            break
        assert s.waiting is OUTPUT_FULL
        s.resume_output()
    assert rows == n
    assert biggest < OUTPUT_LIMIT + 4096  # never more than one buffer's worth queued at once
    assert srv.hub.journal.copies[-1].count == n


def test_copy_fail_and_unexpected_message_during_copy_in():
    srv = Server()
    s = srv.connect()
    out = feed(s, enc(m.Query("COPY loose FROM STDIN")))
    assert out == [m.CopyInResponse(0, ())]  # undeclared table, no column list: column count unknown
    out = feed(s, enc(m.CopyData(b"a\tb\n"), m.CopyFail("client gave up")))
    assert out[0].error.code == "57014" and out[0].error.message == "COPY from stdin failed: client gave up"
    assert out[1:] == [m.ReadyForQuery("I")]
    out = feed(s, enc(m.Query("COPY loose FROM STDIN")))
    out = feed(s, enc(m.Query("SELECT 1")))
    assert out[0].error.code == "08P01"
    assert out[0].error.message == "unexpected message type 0x51 during COPY from stdin"
    # PostgreSQL 15 stopped reading mid-message: it ends the connection
    assert out[-1].error.severity == "FATAL" and out[-1].error.code == "08P01"
    assert out[-1].error.message == "terminating connection because protocol synchronization was lost"
    assert s.closed


def test_rule_error_on_copy_never_starts_the_copy():
    srv = Server()
    srv.rules.add(Rule(query="COPY t FROM STDIN", answers=[Result(error=PgError("42501", "permission denied"))]))
    s = srv.connect()
    out = feed(s, enc(m.Query("COPY t FROM STDIN")))
    assert [type(x).__name__ for x in out] == ["ErrorResponse", "ReadyForQuery"]
