"""answers/selectlist.py: the columns a SELECT asks for (count, PostgreSQL's names) and the
shape guard every built-in answer passes (conform). Expected names are PostgreSQL 15's; the
realpg tests at the bottom compare generated select lists with a live server."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fakepm.answers.result import Column, Result
from fakepm.answers.selectlist import column_names, conform, normalize, quote_ident, select_items
from fakepm.protocol.types import REGISTRY

# select list -> the column names PostgreSQL 15 reports (checked against a live server)
NAMES = [
    ("1", ("?column?",)), ("true", ("?column?",)), ("null", ("?column?",)), ("-1::int", ("?column?",)),
    ("'x'::text", ("text",)), ("'{1}'::int[]", ("int4",)), ("now()::date", ("now",)), ("(1)", ("?column?",)),
    ("(1,2)", ("row",)), ("row(1)", ("row",)), ("array[1]", ("array",)), ("array(select 1)", ("array",)),
    ("exists(select 1)", ("exists",)), ("(select 1)", ("?column?",)), ("(select 1 as q)", ("q",)),
    ("case when true then 1 end::text", ("text",)), ("case when true then 'a' else now()::text end", ("now",)),
    ("date '2020-01-01'", ("date",)), ("interval '1' day", ("interval",)),
    ("now() at time zone 'utc'", ("timezone",)), ("current_date", ("current_date",)), ("user", ("user",)),
    ("localtimestamp(2)", ("localtimestamp",)), ("coalesce(1,2)", ("coalesce",)),
    ("trim(' x ')", ("btrim",)), ("trim(leading 'x' from 'xy')", ("ltrim",)),
    ("substring('abc' for 2)", ("substring",)), ("extract(year from now())", ("extract",)),
    ("1::double precision", ("float8",)), ("'1'::character varying", ("varchar",)),
    ("'1 day'::interval day to second(3)", ("interval",)), ("cast(1 as bigint)", ("int8",)),
    ("cast(now() as date)", ("now",)), ("(array[1,2])[1]", ("array",)), ("1 one", ("one",)),
    ('1 AS "Q"', ("Q",)), ("'a' collate \"C\"", ("?column?",)), ("pg_catalog.now()", ("now",)),
    ("count(*) filter (where true) from (select 1) s", ("count",)), ("1 is null", ("?column?",)),
    ("1 not between 0 and 2", ("?column?",)), ("'x'::\"char\"", ("char",)), ("collation for ('a')", ("pg_collation_for",)),
    ("'x'::text::varchar", ("varchar",)), ("1.5::float(10)", ("float4",)), ("1.5::float", ("float8",)),
    ("'x'::national character varying(3)", ("varchar",)), ("'x'::char(2)", ("bpchar",)),
    ("timestamp with time zone '2020-01-01'", ("timestamptz",)), ("'2020-01-01'::timestamp(3) with time zone",
                                                                    ("timestamptz",)),
    ("'a' is normalized", ("is_normalized",)), ("'a' is not normalized", ("?column?",)),
    ("row_number() over (), rank() over w from (select 1) s window w as ()", ("row_number", "rank")),
    ("'{\"a\":1}'::jsonb ->> 'a'", ("?column?",)), ("1 OPERATOR(pg_catalog.+) 2", ("?column?",)),
    ("x.y, x.\"Z\" from (select 1 as y, 2 as \"Z\") x", ("y", "Z")), ("(select x from (select 1 x) s)", ("x",)),
    ("(values (1))", ("column1",)), ("percentile_cont(0.5) within group (order by x) from (select 1 x) s",
                                       ("percentile_cont",)),
    ("1 as " + "a" * 70, ("a" * 63,)), ("1 \"from\"", ("from",)), ("", ()),
    ("distinct on (1) 1 as a, 2", ("a", "?column?")),
]


@pytest.mark.parametrize("select_list,names", NAMES)
def test_names_as_postgresql_gives_them(select_list, names):
    assert column_names("SELECT " + select_list) == names


def test_statement_forms():
    assert column_names("WITH RECURSIVE t(a, b) AS (SELECT 1, 2) SELECT DISTINCT *, a + b AS s FROM t ORDER BY 1") \
        == ("a", "b", "s")  # asyncpg's typeinfo query: * over a CTE with a column list
    assert column_names("(SELECT a FROM t) UNION (SELECT b FROM u)") == ("a",)
    assert column_names("select pubname, null, null from p union select x, y, z from q order by 1;") == \
        ("pubname", "?column?", "?column?")
    assert column_names("SELECT a -- comment, b\n, /* c, */ d FROM t") == ("a", "d")
    assert column_names("SELECT a FROM t WHERE x IS DISTINCT FROM y") == ("a",)
    assert column_names("SELECT a IS DISTINCT FROM b, c FOR UPDATE") == ("?column?", "c")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM t", "SELECT t.* FROM t", "SELECT a, * FROM t", "SELECT (x).* FROM t", "SELECT 1; SELECT 2",
    "INSERT INTO t VALUES (1)", "SHOW server_version", "VALUES (1)", "SELECT 1 2", "SELECT (1", "SELECT 1,",
    "SELECT a b c", "SELECT 1 AS", "WITH t AS (SELECT 1) SELECT * FROM t", "SELECT * FROM t1, t2",
    "SELECT 1 year", "SELECT case when x then 1", "",
])
def test_unknowable_shapes_are_none(sql):
    assert select_items(sql) is None


def test_normalize_keys_ignore_layout():
    a = normalize("SELECT  pg_catalog.format_type( a.atttypid,a.atttypmod )\n-- x\n FROM T")
    assert a == normalize("select pg_catalog.format_type(a.atttypid, a.atttypmod) /* y */ from t")
    assert a == "select pg_catalog.format_type ( a.atttypid , a.atttypmod ) from t"
    assert normalize("'A' \"B\"") == "'A' \"B\""  # strings and quoted names keep their case


@pytest.mark.parametrize("name,quoted", [
    ("products", "products"), ("Products", '"Products"'), ("order", '"order"'), ("char", '"char"'),
    ("name", "name"), ("a b", '"a b"'), ('a"b', '"a""b"'), ("_x1", "_x1"), ("1x", '"1x"'), ("x$", '"x$"'),
    ("between", '"between"'), ("left", '"left"'), ("year", "year"),
])
def test_quote_ident(name, quoted):
    assert quote_ident(name) == quoted


# -- the guard ------------------------------------------------------------------------------

_idents = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8).filter(
    lambda s: s not in ("as", "from", "select", "and", "or", "not", "null", "true", "false", "case", "end", "in",
                        "is", "on", "for", "to", "where", "order", "limit", "group", "having", "union", "all",
                        "distinct", "into", "offset", "fetch", "window", "with", "except", "intersect", "user",
                        "array", "between", "like", "some", "any", "cast", "do", "only"))
_exprs = st.sampled_from(["1", "'x'", "now()", "c.relname", "a + b", "coalesce(a, b)", "(select 1)", "$1::int",
                          "case when a then b end", "x::text", "array[1]"])


@given(items=st.lists(st.tuples(_exprs, _idents), min_size=1, max_size=8), data=st.data())
def test_conform_accepts_exactly_the_asked_columns(items, data):
    """Random select lists with aliases and random answers: an answer passes iff it has the
    same number of columns with the same names; with rename, iff the count is the same."""
    sql = "SELECT " + ", ".join(f"{e} AS {a}" for e, a in items) + " FROM t"
    asked = [a for _, a in items]
    names = data.draw(st.one_of(
        st.just(list(asked)),
        st.lists(st.sampled_from(asked + ["?column?", "x"]), min_size=0, max_size=10),
    ))
    text = REGISTRY.by_name("text")
    res = Result(columns=tuple(Column(n, text) for n in names), rows=[tuple(range(len(names)))] * 2)
    fitted = conform(res, sql)
    assert (fitted is not None) == (names == asked)
    renamed = conform(res, sql, rename=True)
    assert (renamed is not None) == (len(names) == len(asked))
    if renamed is not None:
        assert [c.name for c in renamed.columns] == asked
        assert renamed.rows == res.rows


def test_conform_refuses_rows_of_another_width():
    int4 = REGISTRY.by_name("int4")
    res = Result(columns=(Column("a", int4), Column("b", int4)), rows=[(1, 2), (3,)])
    assert conform(res, "SELECT 1 AS a, 2 AS b") is None
    assert conform(Result(columns=None, tag="SET"), "SELECT 1") is None
    assert conform(Result(columns=(Column("a", int4),)), "SELECT * FROM t") is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("selct SELECT from,()'\"$1.*:;-/ abxAS\n[]")), max_size=60))
def test_select_items_never_raises(text):
    out = select_items(text)
    assert out is None or isinstance(out, tuple)


# -- against PostgreSQL 15 ------------------------------------------------------------------

_leaf = st.sampled_from(["1", "'x'", "true", "null", "1.5", "$$d$$", "now()", "current_date", "user",
                         "pg_catalog.version()", "array[1, 2]", "(select 1 as q)", "row(1, 'a')", "e'\\\\n'",
                         "interval '1 day'", "date '2020-01-02'", "current_schema()", "s.c", "s.\"Mixed\""])
_types = st.sampled_from(["text", "int", "integer", "int8", "double precision", "float(3)", "numeric(5,2)",
                          "varchar(3)", "character varying", "char", "bool", "pg_catalog.text", '"char"',
                          "timestamp(2) with time zone", "time", "interval day", "text[]", "name", "regtype",
                          "bit varying", "json"])


def _expr(children):
    return st.one_of(
        st.tuples(children, _types).map(lambda t: f"{t[0]}::{t[1]}"),
        st.tuples(children, _types).map(lambda t: f"cast({t[0]} as {t[1]})"),
        st.tuples(children, children).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} || {t[1]})"),
        st.tuples(children, children).map(lambda t: f"case when {t[0]} is null then {t[1]} else {t[0]} end"),
        st.tuples(children, children).map(lambda t: f"case when true then {t[0]} end"),
        children.map(lambda e: f"({e})"),
        children.map(lambda e: f"{e} is not null"),
        children.map(lambda e: f"{e} collate \"C\""),
        children.map(lambda e: f"(select {e})"),
        children.map(lambda e: f"(select {e} as inner_name)"),
        children.map(lambda e: f"- {e}"),
    )


_item = st.tuples(st.recursive(_leaf, _expr, max_leaves=4),
                  st.sampled_from(["", " AS a", ' AS "B c"', " z", " as from"]))


@pytest.mark.realpg
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(items=st.lists(_item, min_size=1, max_size=4))
def test_names_match_postgresql(real_pg_conn, items):
    """Generated select lists: where PostgreSQL accepts the statement, selectlist names every
    column as it does (or says None: unknown). Never a different count or name."""
    import psycopg

    sql = "SELECT " + ", ".join(e + a for e, a in items) + " FROM (SELECT 1 AS c, 2 AS \"Mixed\") s"
    try:
        cur = real_pg_conn.execute(sql)
    except psycopg.Error:
        real_pg_conn.rollback()
        assume(False)
        return
    real = tuple(d.name for d in cur.description)
    mine = column_names(sql)
    assert mine is None or mine == real, sql
    if all(a != " as from" for _, a in items):
        assert mine is not None, sql  # everything generated here is known to the parser


@pytest.fixture(scope="module")
def real_pg_conn(oracle_pg):
    """PostgreSQL 15, then 18: both name the columns."""
    import psycopg

    with psycopg.connect(oracle_pg.dsn) as c:
        yield c


def test_walsender_catalog_answers_keep_their_query_shape():
    """A subscriber catalog query whose select list differs from the one the walsender knows
    (another version's) is not answered with the known shape (the session then says FP000)."""
    from fakepm.walsender.catalog_queries import answer_catalog_query

    class _Wal:
        pg = None
        publications = None

        def _catalog(self):
            from fakepm.answers.catalog import Catalog

            return Catalog()

    # the column-list query with one more select item: the known answer has one column
    gen = answer_catalog_query(_Wal(), None, "SELECT DISTINCT (CASE WHEN (array_length(gpt.attrs, 1) = c.relnatts) "
                                                "THEN NULL ELSE gpt.attrs END), gpt.pubname FROM "
                                                "pg_publication_tables gpt, pg_class c WHERE gpt.relid = 16384 "
                                                "AND c.oid = gpt.relid")
    try:
        next(gen)
        raise AssertionError("answered with a shape the query did not ask for")
    except StopIteration as stop:
        assert stop.value is False
