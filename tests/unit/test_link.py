"""proxy/link.py: the relay's upstream side, fed bytes and read back (sans-I/O).

What must hold whatever the chunking of the upstream's stream: the client gets exactly the
bytes of every frame not cut out, in order; the FIFO of owed replies empties exactly when
the last owed reply arrived; the transaction status follows ReadyForQuery; journal entries
get their tags and errors.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from fakepm.protocol import messages as m
from fakepm.protocol.errors import PgError
from fakepm.proxy.link import BIND, DESCRIBE, EXECUTE, PARSE, QUERY, SYNC, EngineLink, Owed


def _entry():
    return SimpleNamespace(tag=None, error=None)


def _err(code="42P01", message='relation "x" does not exist', severity="ERROR"):
    return m.error_response(PgError(code, message, severity=severity))


def _rows(n, width=3):
    return b"".join(m.data_row([b"v%d" % i] * width) for i in range(n))


def _feed_chunks(link, data, cuts):
    out = []
    pos = 0
    for c in sorted(set(cuts)):
        if 0 < c < len(data):
            link.feed(data[pos:c], out.append)
            pos = c
    link.feed(data[pos:], out.append)
    return b"".join(out)


def _simple_select(tag="SELECT 3", rows=3, status=b"I"):
    desc = m.row_description([m.FieldDescription("a", 25, -1, -1, 0)] * 3)
    return desc + _rows(rows) + m.command_complete(tag) + m.frame(b"Z", status)


def test_simple_query_passes_through_and_completes():
    link = EngineLink()
    e = _entry()
    link.forward(b"Q...", Owed(QUERY, [e]))
    assert not link.idle
    data = _simple_select()
    out = []
    link.feed(data, out.append)
    assert out == [data]  # one chunk in, the same object out: nothing copied
    assert link.idle and link.status == "I" and e.tag == "SELECT 3"


def test_extended_error_skips_to_sync_and_names_the_statement():
    seen = []
    link = EngineLink(on_error=lambda err, entry: seen.append((err.code, entry)))
    e = _entry()
    for kind in (PARSE, BIND, DESCRIBE):
        link.forward(b"x", Owed(kind))
    link.forward(b"x", Owed(EXECUTE, [e]))
    link.forward(b"x", Owed(SYNC))
    data = m.PARSE_COMPLETE + _err() + m.frame(b"Z", b"E")
    out = []
    link.feed(data, out.append)
    assert b"".join(out) == data
    assert link.idle and link.status == "E" and not link.skipping
    assert seen == [("42P01", None)]  # the Bind failed: the Execute never ran, its entry is untouched
    assert e.error is None


def test_error_of_an_execute_is_journaled():
    link = EngineLink()
    e = _entry()
    link.forward(b"x", Owed(BIND))
    link.forward(b"x", Owed(EXECUTE, [e]))
    link.forward(b"x", Owed(SYNC))
    link.feed(m.BIND_COMPLETE + _err("22012", "division by zero") + m.frame(b"Z", b"I"), lambda b: None)
    assert e.error == "22012 division by zero" and link.idle


def test_multi_statement_query_tags_each_statement():
    link = EngineLink()
    entries = [_entry(), _entry(), _entry()]
    link.forward(b"Q", Owed(QUERY, entries))
    data = (m.command_complete("BEGIN") + _simple_select(rows=1, tag="SELECT 1")[:-6]
            + _err("22012", "division by zero") + m.frame(b"Z", b"E"))
    link.feed(data, lambda b: None)
    assert [e.tag for e in entries] == ["BEGIN", "SELECT 1", None]
    assert entries[2].error == "22012 division by zero" and link.status == "E"


def test_silent_reply_is_cut_out_and_hide_ready_keeps_the_results():
    link = EngineLink()
    link.forward(b"x", Owed(QUERY, silent=True))  # fakepm's own ROLLBACK
    e = _entry()
    link.forward(b"x", Owed(QUERY, [e], hide_ready=True))  # one statement of a split Query
    rollback = m.notice_response(PgError("25P01", "there is no transaction in progress", severity="WARNING")) \
        + m.command_complete("ROLLBACK") + m.frame(b"Z", b"I")
    select = _simple_select(rows=2, tag="SELECT 2")
    out = []
    link.feed(rollback + select, out.append)
    assert b"".join(out) == select[:-6]  # everything of the ROLLBACK, and the select's ReadyForQuery, cut
    assert link.idle and e.tag == "SELECT 2"


def test_fatal_is_flagged():
    link = EngineLink()
    link.feed(_err("57P01", "terminating connection due to administrator command", "FATAL"), lambda b: None)
    assert link.fatal


def test_flush_only_when_extended_messages_wait():
    link = EngineLink()
    link.forward(b"P", Owed(PARSE))
    link.flush()
    assert link.take_output() == b"P" + b"H\x00\x00\x00\x04"
    link.forward(b"S", Owed(SYNC))
    link.flush()
    assert link.take_output() == b"S"


# -- any chunking ---------------------------------------------------------------------------

_GROUPS = st.lists(
    st.tuples(st.sampled_from(["select", "error", "silent", "hidden"]), st.integers(0, 40)),
    min_size=1, max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(groups=_GROUPS, cuts=st.lists(st.integers(0, 20000), max_size=40), width=st.integers(1, 300))
def test_any_chunking_gives_the_same_bytes_and_state(groups, cuts, width):
    link = EngineLink()
    stream, expected, entries = [], [], []
    for kind, nrows in groups:
        e = _entry()
        if kind == "select":
            link.forward(b"q", Owed(QUERY, [e]))
            data = (m.row_description([m.FieldDescription("a", 25, -1, -1, 0)]) + _rows(nrows, width)
                    + m.command_complete(f"SELECT {nrows}") + m.frame(b"Z", b"T"))
            stream.append(data)
            expected.append(data)
            entries.append((e, f"SELECT {nrows}", None))
        elif kind == "error":
            link.forward(b"p", Owed(PARSE))
            link.forward(b"b", Owed(BIND))
            link.forward(b"e", Owed(EXECUTE, [e]))
            link.forward(b"s", Owed(SYNC))
            data = m.PARSE_COMPLETE + m.BIND_COMPLETE + _rows(nrows, width) + _err("40001", "x" * width) \
                + m.frame(b"Z", b"E")
            stream.append(data)
            expected.append(data)
            entries.append((e, None, "40001 " + "x" * width))
        elif kind == "silent":
            link.forward(b"q", Owed(QUERY, silent=True))
            stream.append(_rows(nrows, width) + m.command_complete("ROLLBACK") + m.frame(b"Z", b"I"))
        else:
            link.forward(b"q", Owed(QUERY, [e], hide_ready=True))
            body = _rows(nrows, width) + m.command_complete(f"SELECT {nrows}")
            stream.append(body + m.frame(b"Z", b"T"))
            expected.append(body)
            entries.append((e, f"SELECT {nrows}", None))
    data = b"".join(stream)
    got = _feed_chunks(link, data, [c % (len(data) + 1) for c in cuts])
    assert got == b"".join(expected)
    assert link.idle
    for e, tag, error in entries:
        assert (e.tag, e.error) == (tag, error)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_any_bytes_are_relayed_and_the_scan_ends(data, cuts):
    """Whatever the upstream sends, feed terminates and passes every byte on (nothing is owed,
    so nothing may be cut): a lying length stops the reading, never the relaying."""
    link = EngineLink()
    got = _feed_chunks(link, data, [c % (len(data) + 1) for c in cuts])
    held = link._hdr if not link.broken else b""
    assert got + held == data
