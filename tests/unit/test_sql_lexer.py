"""fakepm.sql: the one PostgreSQL lexer and what is read from its tokens.

Table-driven cases, hypothesis properties of the lexer on its own (the fast path for plain
tokens agrees with the careful one), and properties against PostgreSQL 15 itself where its
behaviour is observable: a simple Query with random statements (string constants in every
spelling holding ';', '$1', quotes and comment starts; comments and empty statements between)
gets one result per statement fakepm's split_statements finds, each with the value fakepm's
lexer reads from the constant; a Parse of a statement with $n hidden in strings, identifiers
and comments gets as many parameters (Describe's ParameterDescription) as count_params says.
"""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepm.sql import (classify, count_params, default_tag, insert_values_rows, is_blank, literals,
                        redact_passwords, replace_literals, split_statements, tokens)
from fakepm.sql import lexer


def kinds(sql: str) -> list[tuple[str, object]]:
    return [(t.kind, t.value) for t in tokens(sql)]


# ---------------------------------------------------------------------------- tokens

@pytest.mark.parametrize("sql, expected", [
    ("SELECT 'it''s'", [("w", "select"), ("s", "it's")]),
    ("E'it\\'s\\n\\t\\\\'", [("s", "it's\n\t\\")]),
    ("e'\\x41\\101\\u0041\\U00000041'", [("s", "AAAA")]),
    ("E'\\xc3\\xa9'", [("s", "é")]),  # byte escapes form UTF-8, as on a UTF8 server
    ("'a\\b'", [("s", "a\\b")]),  # standard_conforming_strings: a backslash is a character
    ("N'x'", [("s", "x")]),
    ("U&'d\\0061t\\+000061'", [("s", "data")]),
    ("U&'d!0061t!!' UESCAPE '!'", [("s", "dat!")]),
    ("U&'d!0061t'\n -- c\n UESCAPE /* c */ '!' x", [("s", "dat"), ("w", "x")]),
    ("U&'\\D83D\\DE00'", [("s", "\U0001F600")]),  # a surrogate pair
    ("$$it's; $1$$", [("s", "it's; $1")]),
    ("$fn$ $$ ; $f$ $fn$", [("s", " $$ ; $f$ ")]),
    ("$a$x$ab$y$a$", [("s", "x$ab$y")]),
    ("'a'\n'b'", [("s", "ab")]),  # continuation: whitespace with a newline between
    ("'a' -- c\n 'b'", [("s", "ab")]),
    ("'a'\r'b'", [("s", "ab")]),
    ("'a' 'b'", [("s", "a"), ("s", "b")]),  # no newline: two constants (a syntax error)
    ("'a' /* c */\n'b'", [("s", "a"), ("s", "b")]),  # a block comment does not continue
    ("E'a'\n'\\n'", [("s", "a\n")]),  # the continuation keeps E's escapes
    ("B'1010' X'1f'", [("b", "1010"), ("b", "00011111")]),
    ('"My ""x"" name" "a;b"', [("q", 'My "x" name'), ("q", "a;b")]),
    ('U&"d\\0061t"', [("q", "dat")]),
    ("FooBar ÄÖ a$b$", [("w", "foobar"), ("w", "ÄÖ"), ("w", "a$b$")]),  # ASCII folds; $ continues a word
    ("$1 $23 $", [("p", 1), ("p", 23), ("c", "$")]),
    ("1 1.5 .5 1e-3 1.e5 1..2", [("n", "1"), ("n", "1.5"), ("n", ".5"), ("n", "1e-3"), ("n", "1.e5"),
                                 ("n", "1"), ("c", ".."), ("n", "2")]),
    ("a::int <> b @> c =- d @- e", [("w", "a"), ("o", "::"), ("w", "int"), ("o", "<>"), ("w", "b"), ("o", "@>"),
                                    ("w", "c"), ("o", "="), ("o", "-"), ("w", "d"), ("o", "@-"), ("w", "e")]),
    ("1 +/* c */ 2 --x\r3", [("n", "1"), ("o", "+"), ("n", "2"), ("n", "3")]),
    ("/* a /* nested ; */ still */ x", [("w", "x")]),
    ("'unterminated ; x", [("s", "unterminated ; x")]),
    ("/* unterminated ; x", []),
    ("x; y", [("w", "x"), ("c", ";"), ("w", "y")]),
])
def test_tokens(sql, expected):
    assert kinds(sql) == expected


def test_token_offsets_give_the_text_as_written():
    sql = "SELECT E'a\\'b', \"Q\"\"\" FROM t -- c"
    assert [sql[t.start:t.end] for t in tokens(sql)] == ["SELECT", "E'a\\'b'", ",", '"Q"""', "FROM", "t"]


def test_is_blank_and_literals():
    assert is_blank("  -- x\n /* y */ ") and not is_blank("-- x\n;")
    assert [t.value for t in literals("SELECT 'a', $$b$$, \"c\", E'd', 1")] == ["a", "b", "d"]


# ---------------------------------------------------------------------------- statements

@pytest.mark.parametrize("sql, expected", [
    ("SELECT 1", ["SELECT 1"]),
    ("  ", []),
    ("-- only a comment", []),
    ("SELECT 1;; ;SELECT 2; -- end", ["SELECT 1", "SELECT 2"]),
    ("SELECT ';', $$;$$, $t$ $$; $t$, \";\", E'\\';' -- ;\n; SELECT 2", ["SELECT ';', $$;$$, $t$ $$; $t$, \";\", E'\\';' -- ;", "SELECT 2"]),
    ("/* ; /* ; */ ; */ SELECT 1", ["/* ; /* ; */ ; */ SELECT 1"]),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN x THEN 1 END; END; SELECT 2",
     ["CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN x THEN 1 END; END",
      "SELECT 2"]),
    ("create or replace procedure p() begin atomic insert into t values (1); end;begin;commit",
     ["create or replace procedure p() begin atomic insert into t values (1); end", "begin", "commit"]),
    ("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1",
     ["CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", "SELECT 1"]),
    ("BEGIN; SELECT 1; END", ["BEGIN", "SELECT 1", "END"]),  # a transaction's BEGIN is no function body
])
def test_split_statements(sql, expected):
    assert split_statements(sql) == expected


@pytest.mark.parametrize("sql, n", [
    ("SELECT $1, $3", 3), ("SELECT '$1', $$ $2 $$, \"$3\", E'\\'$4', U&'$5' -- $6\n, /* $7 */ $1", 1),
    ("SELECT 1", 0), ("SELECT $fn$ $9 $fn$", 0), ("SELECT a$1", 0),
])
def test_count_params(sql, n):
    assert count_params(sql) == n


@pytest.mark.parametrize("password", ["'hunter2'", "E'hun\\'ter2'", "$$hunter2$$", "$pw$hun$$ter2$pw$",
                                      "U&'hunter\\0032'", "U&'hunter!0032' UESCAPE '!'", "'hun''ter2'",
                                      "'hunter'\n'2'"])
def test_redact_passwords_every_spelling(password):
    sql = f"ALTER ROLE app WITH LOGIN PASSWORD {password} VALID UNTIL 'infinity'"
    out = redact_passwords(sql)
    assert out == "ALTER ROLE app WITH LOGIN PASSWORD '[REDACTED]' VALID UNTIL 'infinity'"
    assert "hun" not in out


def test_redact_passwords_leaves_other_text_alone():
    sql = "SELECT 'PASSWORD', password FROM users WHERE password = 'x'"
    assert redact_passwords(sql) == sql
    assert redact_passwords("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password $$p$$)") == \
        "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password '[REDACTED]')"


def test_replace_literals():
    sql = "SELECT 'a@x.org', $$b@x.org$$, \"c@x.org\""
    assert replace_literals(sql, lambda t, text: text.replace("@x.org", "@...")) == \
        "SELECT 'a@...', $$b@...$$, \"c@x.org\""


def test_the_recorder_redacts_every_password_spelling(tmp_path):
    from fakepm.protocol import messages as m
    from fakepm.proxy.hooks import ConnInfo
    from fakepm.proxy.record import Recorder

    rec = Recorder(tmp_path / "x.yaml")
    tap = rec.open_tap(ConnInfo(1, "app", "shop", {"user": "app"}, {"server_version": "15.4"}))
    spellings = ["'pw-std'", "E'pw-e\\''", "$$pw-dollar$$", "$tag$pw-tag$tag$", "U&'pw-u\\0021'",
                 "U&'pw-ue!0021' UESCAPE '!'"]
    for i, pw in enumerate(spellings):
        tap.client(b"Q", m.Query(f"ALTER ROLE r{i} PASSWORD {pw}").encode()[5:])
        for msg in (m.CommandComplete("ALTER ROLE"), m.ReadyForQuery("I")):
            raw = msg.encode()
            tap.server(raw[0], raw[5:])
    text = rec.dumps()
    assert "pw-" not in text
    queries = [e["query"] for e in yaml.safe_load(text)["recording"]["statements"]]
    assert queries == [f"ALTER ROLE r{i} PASSWORD '[REDACTED]'" for i in range(len(spellings))]


@pytest.mark.parametrize("sql, kind, tag", [
    ("/* c */ (SELECT 1)", "SELECT", "SELECT 3"),
    ("WITH x AS (SELECT 1) DELETE FROM t", "DELETE", "DELETE 3"),
    ("insert into t values (1, ';'), (2, $$)$$)", "INSERT", "INSERT 0 3"),
    ("START TRANSACTION", "BEGIN", "START TRANSACTION"),
    ("CREATE TABLE t AS SELECT 1", "CREATE TABLE AS", "SELECT 3"),
    ("IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM"),
])
def test_classify_and_default_tag(sql, kind, tag):
    assert classify(sql) == kind
    assert default_tag(sql, 3) == tag


def test_insert_values_rows():
    assert insert_values_rows("INSERT INTO t VALUES (1, ')'), (2, $$(,$$), (3, E'\\')') ON CONFLICT DO NOTHING") == 3
    assert insert_values_rows("INSERT INTO t DEFAULT VALUES") == 1
    assert insert_values_rows("INSERT INTO t SELECT 1") == 0


# ---------------------------------------------------------------------------- the fast path

_PIECES = ["SELECT", "e", "E", "u", "U", "&", "x", "B", "N", "'", "''", '"', "$", "$$", "$a$", "$1", "1", "1.5", ".",
           "..", ";", ",", "(", ")", "[", "]", "::", ":", "=", "<", ">", "+", "-", "--", "/", "*", "/*", "*/", "@",
           "!", "|", "\\", " ", "\n", "\r", "\t", "\f", "é", "UESCAPE", "0x1F", "1e5", "_a", "9z"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_the_fast_path_reads_what_the_careful_path_reads(sql):
    fast = [(t.kind, t.start, t.end, t.value) for t in tokens(sql)]
    saved = lexer._RE_PLAIN
    lexer._RE_PLAIN = re.compile(r"(?!)")  # never matches: every token takes the careful path
    try:
        careful = [(t.kind, t.start, t.end, t.value) for t in tokens(sql)]
    finally:
        lexer._RE_PLAIN = saved
    assert fast == careful


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_tokens_cover_the_text_in_order_and_never_raise(sql):
    pos = 0
    for t in tokens(sql):
        assert pos <= t.start < t.end <= len(sql)
        assert sql[pos:t.start].strip(" \t\n\r\f\v") == "" or "--" in sql[pos:t.start] or "/*" in sql[pos:t.start]
        pos = t.end
    statements = split_statements(sql)
    assert all(s == s.strip() and s for s in statements)


# ---------------------------------------------------------------------------- against PostgreSQL 15

_BODY_CHARS = ["a", "Z", " ", ";", "$", "$1", "$$", "$a$", "'", '"', "\\", "--", "/*", "*/", "\n", "\r", "\t", "é",
               "!", "0041"]
_body = st.lists(st.sampled_from(_BODY_CHARS), max_size=10).map("".join)


def _standard(s):
    return "'" + s.replace("'", "''") + "'"


def _e(s):
    return "E'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _u(s):
    return "U&'" + "".join("\\005C" if c == "\\" else "''" if c == "'" else f"\\{ord(c):04X}" if c == "é" else c
                           for c in s) + "'"


def _u_escape(s):
    return "U&'" + "".join("!!" if c == "!" else "''" if c == "'" else f"!{ord(c):04X}" if c in "é\\" else c
                           for c in s) + "' UESCAPE '!'"


def _dollar(tag):
    def make(s):
        d = f"${tag}$"
        return d + s + d if (s + d).find(d) == len(s) else _standard(s)
    return make


def _continued(s):
    half = len(s) // 2
    return _standard(s[:half]) + "\n -- more ;\n" + _standard(s[half:])


_SPELLINGS = [_standard, _e, _u, _u_escape, _dollar(""), _dollar("x"), _dollar("fn_1"), _continued]
_literal = st.tuples(st.sampled_from(_SPELLINGS), _body).map(lambda p: (p[0](p[1]), p[1]))
_GAPS = [" ", "\n", "\t", "\r\n", "\f", " -- ; 'x' $$\n", "/* ; ' \" $$ */", "/* a /* ; */ b */", "/**/", "--\r"]
_gap = st.lists(st.sampled_from(_GAPS), max_size=3).map("".join)


@st.composite
def _simple_query(draw):
    """A simple Query text: statements `SELECT <constant> [AS "alias"]`, gaps and empty statements."""
    parts, values = [], []
    for _ in range(draw(st.integers(0, 4))):
        text, value = draw(_literal)
        alias = draw(st.sampled_from(["", ' AS "a;b"', ' AS "x""--"', " AS y"]))
        parts.append(draw(_gap) + "SELECT" + draw(st.sampled_from([" ", "\n", "/*;*/"])) + text + alias + draw(_gap))
        values.append(value)
        for _ in range(draw(st.integers(0, 2))):  # empty and comment-only statements
            parts.append(draw(_gap))
    return ";".join(parts) + draw(st.sampled_from(["", ";", "; -- end", ";\n"])), values


def _results(pgconn, text: str) -> list:
    from psycopg import pq

    pgconn.send_query(text.encode())
    out = []
    while True:
        r = pgconn.get_result()
        if r is None:
            return out
        if r.status == pq.ExecStatus.TUPLES_OK:
            out.append(r.get_value(0, 0).decode())
        elif r.status == pq.ExecStatus.EMPTY_QUERY:
            out.append("<empty>")
        else:
            out.append(("error", r.status, (r.error_message or b"").decode()))


@pytest.fixture(scope="module")
def pgconn(real_pg):
    import psycopg

    with psycopg.connect(real_pg.dsn, autocommit=True) as conn:
        yield conn.pgconn


@pytest.mark.realpg
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(_simple_query())
def test_statement_splitting_and_string_values_match_postgresql(pgconn, query):
    text, values = query
    got = _results(pgconn, text)
    assert got == (values or ["<empty>"]), text  # the generator writes only valid statements
    statements = split_statements(text)
    assert len(statements) == len(values), text
    read = []
    for s in statements:
        strings = [t.value for t in tokens(s) if t.kind == "s"]
        read.append(strings[0])
    assert read == values, text


@pytest.mark.realpg
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.integers(0, 5), st.lists(_literal, max_size=4), st.randoms(use_true_random=False))
def test_parameter_count_matches_postgresql_describe(pgconn, n, decoys, rnd):
    """$n in strings (every spelling), quoted identifiers and comments are no parameters."""
    from psycopg import pq

    items = [f"${i}::int" for i in range(1, n + 1)] + [text.replace("$a$", "$b$") for text, _ in decoys]
    items += ['1 AS "$9"', "2 /* $8 */", "3 -- $7\n"]
    rnd.shuffle(items)
    sql = "SELECT " + ", ".join(items)
    r = pgconn.prepare(b"", sql.encode())
    assert r.status == pq.ExecStatus.COMMAND_OK, (sql, r.error_message)
    d = pgconn.describe_prepared(b"")
    assert d.nparams == n == count_params(sql), sql
    assert len(split_statements(sql)) == 1


@pytest.mark.realpg
@pytest.mark.parametrize("text, results", [
    ("CREATE OR REPLACE FUNCTION pg_temp.f17() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
     "SELECT CASE WHEN true THEN 2 END; END; SELECT pg_temp.f17()", [None, "2"]),
    ("CREATE TEMP TABLE IF NOT EXISTS r17a (a int); CREATE TEMP TABLE IF NOT EXISTS r17b (a int); "
     "CREATE OR REPLACE RULE r17 AS ON INSERT TO r17a DO ALSO (INSERT INTO r17b VALUES (1); "
     "INSERT INTO r17b VALUES (2)); INSERT INTO r17a VALUES (0); SELECT count(*) >= 2 FROM r17b",
     [None, None, None, None, "t"]),
    ("SELECT 1;;; -- x\n;/* y */", ["1"]),
    (" -- only a comment", ["<empty>"]),
])
def test_routine_bodies_rules_and_empty_statements_split_as_in_postgresql(pgconn, text, results):
    from psycopg import pq

    pgconn.send_query(text.encode())
    got = []
    while (r := pgconn.get_result()) is not None:
        assert r.status != pq.ExecStatus.FATAL_ERROR, r.error_message
        got.append("<empty>" if r.status == pq.ExecStatus.EMPTY_QUERY else
                   r.get_value(0, 0).decode() if r.status == pq.ExecStatus.TUPLES_OK else None)
    assert got == results
    assert len(split_statements(text)) == len([x for x in results if x != "<empty>"])
