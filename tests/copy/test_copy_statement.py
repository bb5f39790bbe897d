"""answers/copyspec.py: COPY statements as clients send them (captures in shared/reference)."""

import pytest

from fakepm.answers.catalog import Catalog
from fakepm.answers.copyspec import builtin_copy, copy_from_rule, describe_declared_select, parse_copy
from fakepm.answers.result import Query, Result, make_columns
from fakepm.protocol.errors import PgError


def test_psycopg2_copy_from_legacy_spelling():
    st = parse_copy("""COPY "copytest"("a","b") FROM stdin WITH DELIMITER AS '\t' NULL AS '\\N'""")
    assert (st.table, st.columns, st.direction, st.endpoint) == ("copytest", ("a", "b"), "in", "stdin")
    assert (st.options.format, st.options.delimiter, st.options.null) == ("text", "\t", "\\N")


def test_asyncpg_binary_and_csv_quoted_format():
    st = parse_copy('COPY "copytest"("a", "b") FROM STDIN (FORMAT binary) ')
    assert st.options.format == "binary" and st.columns == ("a", "b")
    st = parse_copy("COPY (SELECT '7'::int, 'q') TO STDOUT (FORMAT 'csv')")
    assert st.query == "SELECT '7'::int, 'q'" and st.direction == "out" and st.options.format == "csv"


def test_legacy_csv_options():
    st = parse_copy("COPY s.t FROM STDIN WITH DELIMITER AS ',' NULL AS 'nil' CSV HEADER QUOTE AS '''' "
                    "ESCAPE AS E'\\\\' FORCE NOT NULL a, b")
    o = st.options
    assert (st.schema, st.table) == ("s", "t")
    assert (o.format, o.delimiter, o.null, o.header, o.quote, o.escape, o.force_not_null) == (
        "csv", ",", "nil", True, "'", "\\", ("a", "b"))
    assert parse_copy("COPY t TO STDOUT CSV FORCE QUOTE *").options.force_quote == "*"
    assert parse_copy("COPY BINARY t FROM STDIN").options.format == "binary"


def test_new_style_options():
    st = parse_copy("copy t (a) from stdin with (format csv, header match, delimiter ';', force_null (a), "
                    "encoding 'latin1', freeze)")
    o = st.options
    assert (o.format, o.header, o.delimiter, o.force_null, o.encoding, o.freeze) == (
        "csv", "match", ";", ("a",), "latin1", True)
    assert parse_copy('COPY "My Table" TO STDOUT (HEADER off)').table == "My Table"


@pytest.mark.parametrize(
    "sql, code, message",
    [
        ("COPY (SELECT 1) FROM STDIN", "42601", 'syntax error at or near "FROM"'),
        ("COPY t FROM STDIN WITH (FORMAT csv, bogus 1)", "42601", 'option "bogus" not recognized'),
        ("COPY t FROM STDIN WITH (FORMAT csv, header on, header off)", "42601", "conflicting or redundant options"),
        ("COPY t FROM STDOUT", "42601", 'syntax error at or near "STDOUT"'),
        ("COPY t", "42601", "syntax error at end of input"),
        ("COPY t FROM STDIN (FORMAT xml)", "22023", 'COPY format "xml" not recognized'),
    ],
)
def test_statement_errors(sql, code, message):
    with pytest.raises(PgError) as e:
        parse_copy(sql)
    assert (e.value.code, e.value.message) == (code, message)


@pytest.fixture
def catalog():
    c = Catalog()
    c.add("t", {"a": "int4", "b": "text"}, rows=[[1, "x"], [2, None]])
    return c


def test_builtin_uses_declared_columns_and_rows(catalog):
    spec = builtin_copy(Query("COPY t (b, a) FROM STDIN"), catalog).copy
    assert spec.names == ("b", "a") and [t.name for t in spec.types] == ["text", "int4"]
    spec = builtin_copy(Query("COPY t (b) TO STDOUT"), catalog).copy
    assert list(spec.rows()) == [("x",), (None,)]


@pytest.mark.parametrize(
    "sql, code, message",
    [
        ("COPY t (a, zz) FROM STDIN", "42703", 'column "zz" of relation "t" does not exist'),
        ("COPY t (a, a) FROM STDIN", "42701", 'column "a" specified more than once'),
        ("COPY t FROM '/tmp/x'", "0A000", "fakepm: COPY FROM a server file is not supported"),
        ("COPY t (a) TO STDOUT (FORMAT csv, FORCE_QUOTE (b))", "42P10",
         'FORCE_QUOTE column "b" not referenced by COPY'),
        ("COPY t (a) FROM STDIN (FORMAT csv, FORCE_NULL (zz))", "42703", 'column "zz" of relation "t" does not exist'),
    ],
)
def test_builtin_errors(catalog, sql, code, message):
    err = builtin_copy(Query(sql), catalog).error
    assert (err.code, err.message) == (code, message)


def test_undeclared_tables(catalog):
    spec = builtin_copy(Query("COPY other FROM STDIN"), catalog).copy
    assert spec.types is None  # unknown column count: rows kept as text fields
    assert builtin_copy(Query("COPY other (x, y) FROM STDIN"), catalog).copy.types == (None, None)
    assert builtin_copy(Query("COPY other TO STDOUT"), catalog) is None  # nothing to send: unmatched


def test_rule_results_become_copies(catalog):
    cols = make_columns({"n": "int8"})
    spec = copy_from_rule("COPY other TO STDOUT", Result(columns=cols, rows=[(5,)]), catalog).copy
    assert spec.direction == "out" and spec.names == ("n",) and spec.rows == [(5,)]
    spec = copy_from_rule("COPY other FROM STDIN", Result(columns=cols), catalog).copy
    assert spec.direction == "in" and spec.types[0].name == "int8"
    err = Result(error=PgError("42501", "permission denied for table t"))
    assert copy_from_rule("COPY t FROM STDIN", err, catalog) is err


def test_asyncpg_probe_is_described_from_the_declared_table(catalog):
    cols = describe_declared_select('SELECT "a", "b" FROM "t" LIMIT 1', catalog)
    assert [(c.name, c.type.name) for c in cols] == [("a", "int4"), ("b", "text")]
    assert describe_declared_select("SELECT a FROM nosuch LIMIT 1", catalog) is None
